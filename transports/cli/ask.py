"""`voxwire ask FILE "question"`: ask the chat model about a recording.

The file is decoded and the question answered by the chat model (the embedded one, or
`--chat-model`'s): a text model from the transcript of the engine's recogniser (the
cascade of :mod:`voxwire.services.chat`), a native audio LLM from the audio itself; the
answer streams to stdout token by token.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from voxwire.models.interfaces import AudioArray, ChatMessage, GenerateOptions
from voxwire.services import chat
from voxwire.services.media import decode_audio
from voxwire.services.runtime import Runtime
from voxwire.transports.cli.options import ChatModelOption


def register(app: typer.Typer) -> None:
    """Add the `ask` command to `app`."""
    app.command("ask")(ask)


def ask(
    file: Annotated[Path, typer.Argument(help="Audio file in any format FFmpeg decodes.")],
    question: Annotated[str, typer.Argument(help="What to ask about the audio.")],
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, max=1024, help="Longest answer, in tokens.")
    ] = 256,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.0, max=2.0, help="0 decodes greedily.")
    ] = 0.0,
    max_seconds: Annotated[
        float, typer.Option("--max-seconds", min=1.0, help="Refuse longer audio.")
    ] = chat.ChatLimits().max_audio_seconds,
    chat_model: ChatModelOption = None,
) -> None:
    """Answer QUESTION about the speech in FILE, streaming the answer."""
    from voxwire.transports.cli import config as configuration

    audio = decode_audio(file, max_seconds=max_seconds)
    plan = configuration.with_chat_model(configuration.resolve(), chat_model)
    runtime = Runtime.load(specs=plan.specs, defaults=plan.defaults)
    try:
        asyncio.run(_answer(runtime, audio, question, GenerateOptions(max_tokens, temperature)))
    finally:
        runtime.close()


async def _answer(
    runtime: Runtime, audio: AudioArray, question: str, options: GenerateOptions
) -> None:
    entry = chat.resolve_chat(runtime, None)
    message = ChatMessage("user", question, (audio,))
    reply = await chat.answer(runtime, entry, [message], options)
    async for text in reply.text():
        sys.stdout.write(text)
        sys.stdout.flush()
    sys.stdout.write("\n")
