"""`voxwire ask FILE "question"`: ask the embedded chat model about a recording.

The file is decoded, transcribed by the engine's recogniser (word-timed) and the
question answered by the chat model from the transcript (the cascade of
:mod:`voxwire.services.chat`); the answer streams to stdout token by token.
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
) -> None:
    """Answer QUESTION about the speech in FILE, streaming the answer."""
    audio = decode_audio(file, max_seconds=max_seconds)
    runtime = Runtime.load()
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
