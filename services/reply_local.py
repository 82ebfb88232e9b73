"""The `local` reply handler: spoken replies from the runtime's own chat model (the
embedded SmolLM2 by default), offline, with no server to start.

The prompt is the session's instructions (or a short default) as the system message,
the recent history, a note of what the classifiers said, and the turn's transcript.
The model generates on its worker; cancelling the reply (barge-in) stops it at its
next token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from voxwire.models.interfaces import ChatMessage, GenerateOptions
from voxwire.services import chat
from voxwire.services.reply_handlers import NOTHING_HEARD, AssistantError, Turn
from voxwire.services.reply_openai_chat import classification_note
from voxwire.services.runtime import Runtime
from voxwire.services.tools import ServerTool

DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant. Answer in one or two short spoken sentences."
)
MAX_HISTORY = 8
REPLY_TOKENS = 96


class LocalChatHandler:
    """Replies written by a chat model of the runtime's catalogue."""

    name = "local"
    tools: tuple[ServerTool, ...] = ()
    """The embedded model does not call tools; the session's are not offered to it."""

    def __init__(self, runtime: Runtime, model: str | None = None) -> None:
        self.runtime = runtime
        self.model = model

    def messages(self, turn: Turn) -> list[ChatMessage]:
        """The chat messages for one turn."""
        system = turn.instructions.strip() or DEFAULT_INSTRUCTIONS
        note = classification_note(turn.classifications)
        out = [ChatMessage("system", f"{system}\n{note}".strip())]
        for message in turn.history[-MAX_HISTORY:]:
            if message.text and message.role in ("user", "assistant"):
                out.append(ChatMessage(message.role, message.text))
        out.append(ChatMessage("user", turn.transcript.strip() or NOTHING_HEARD))
        out += [ChatMessage("assistant", m.text) for m in turn.since if m.role == "assistant"]
        return out

    async def reply(self, turn: Turn) -> AsyncIterator[str]:
        entry = self.runtime.resolve(self.model, chat.CHAT)
        try:
            answer = await chat.answer(
                self.runtime, entry, self.messages(turn), GenerateOptions(REPLY_TOKENS)
            )
        except chat.PromptTooLong as exc:
            raise AssistantError(exc.message) from exc
        async for text in answer.text():
            yield text

    async def aclose(self) -> None:
        return None
