"""The reply handler that ``voxwire serve --assistant`` names: the one place that knows
every kind (:mod:`voxwire.services.reply_handlers` holds the turn, the protocol, echo and
Python callables; :mod:`voxwire.services.reply_openai_chat` the chat endpoint client)."""

from __future__ import annotations

from voxwire.services.reply_handlers import (
    AssistantNotFound,
    EchoHandler,
    ReplyHandler,
    load_callable,
)
from voxwire.services.reply_local import local_handler
from voxwire.services.reply_openai_chat import ChatSettings, OpenAIChatHandler
from voxwire.services.runtime import Runtime


def build_handler(
    spec: str, chat: ChatSettings | None = None, runtime: Runtime | None = None
) -> ReplyHandler:
    """The handler `--assistant spec` names: echo, local (the runtime's chat model,
    offline; a native audio LLM hears the user's audio itself), openai-chat or
    module:function."""
    if spec == "echo":
        return EchoHandler()
    if spec == "local":
        if runtime is None:
            raise AssistantNotFound("--assistant local needs the server's models")
        return local_handler(runtime)
    if spec == "openai-chat":
        return OpenAIChatHandler(chat or ChatSettings())
    return load_callable(spec)
