"""The `local` reply handlers: spoken replies from the runtime's own chat model (the
embedded SmolLM2 by default), offline, with no server to start.

The prompt is the session's instructions (or a short default) as the system message,
the recent history, a note of what the classifiers said, and the turn: its transcript
(:class:`LocalChatHandler`), or, when the chat model is a native audio LLM, the user's
audio itself with no transcription step (:class:`NativeAudioHandler`). The model
generates on its worker; cancelling the reply (barge-in) stops it at its next token.
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
        user = ChatMessage("user", turn.transcript.strip() or NOTHING_HEARD)
        return [*self.context(turn), user, *self.since(turn)]

    def context(self, turn: Turn) -> list[ChatMessage]:
        """The system message and the recent history, before the turn itself."""
        system = turn.instructions.strip() or DEFAULT_INSTRUCTIONS
        note = classification_note(turn.classifications)
        out = [ChatMessage("system", f"{system}\n{note}".strip())]
        for message in turn.history[-MAX_HISTORY:]:
            if message.text and message.role in ("user", "assistant"):
                out.append(ChatMessage(message.role, message.text))
        return out

    def since(self, turn: Turn) -> list[ChatMessage]:
        """What the assistant already said after the turn (a response created again)."""
        return [ChatMessage("assistant", m.text) for m in turn.since if m.role == "assistant"]

    async def reply(self, turn: Turn) -> AsyncIterator[str]:
        entry = chat.resolve_chat(self.runtime, self.model)
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


class NativeAudioHandler(LocalChatHandler):
    """Replies from a native audio LLM that hears the user's turn: its audio goes into
    the model as it is (no transcription step), as soon as the turn is committed."""

    name = "local-audio"
    hears_audio = True

    def messages(self, turn: Turn) -> list[ChatMessage]:
        if turn.audio is None:  # a text item: answer its text
            return super().messages(turn)
        return [*self.context(turn), ChatMessage("user", "", (turn.audio,)), *self.since(turn)]


def local_handler(runtime: Runtime, model: str | None = None) -> LocalChatHandler:
    """The `local` handler for the runtime's chat model: one that hears the audio when
    the model is a native audio LLM, else the transcript's."""
    entry = chat.resolve_chat(runtime, model)
    if entry.spec.task == chat.AUDIO_CHAT:
        return NativeAudioHandler(runtime, model)
    return LocalChatHandler(runtime, model)
