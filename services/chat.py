"""Questions about audio, answered by a chat model: the one brain behind every route.

Two kinds of chat model sit behind :class:`~voxwire.models.interfaces.ChatModel`:

* a text model (task ``text-generation``, the embedded SmolLM2): the cascade. Each
  audio part of the messages is transcribed by the engine's recogniser (with word
  timings) on its worker, and the transcript goes into the prompt as context the model
  is told to answer from (and quote);
* a native audio LLM (task ``audio-text-to-text``: Qwen2-Audio, Voxtral): the audio
  itself goes into the model, no transcription.

The chat model then generates on its own worker and the text streams back chunk by
chunk; cancelling the consumer stops the model at its next token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, cast

from voxwire.engine.audio import MODEL_RATE as SAMPLE_RATE
from voxwire.engine.errors import ModelNotFound, PeerError
from voxwire.models.interfaces import (
    AsrModel,
    AudioArray,
    ChatMessage,
    ChatModel,
    GenerateOptions,
    Generation,
    TranscribeOptions,
    Transcription,
)
from voxwire.services.runtime import CatalogEntry, Runtime, WrongTask

CHAT: Final = "text-generation"
AUDIO_CHAT: Final = "audio-text-to-text"
CHAT_TASKS: Final = (CHAT, AUDIO_CHAT)
"""Tasks whose models answer chats: a text model (the cascade) or a native audio LLM."""
ASR: Final = "automatic-speech-recognition"

ANSWER_FROM_TRANSCRIPT: Final = (
    "You answer questions about an audio recording. You cannot hear it; you are given "
    "its transcript. When asked what was said, quote the transcript word for word."
)
"""The system message of a cascade prompt (the tiny model quotes reliably with it)."""


class PromptTooLong(PeerError, code="context_length_exceeded"):
    """The messages (with their transcripts) are more tokens than the model takes."""


class AudioTooLong(PeerError, code="audio_too_long"):
    """An audio part longer than the native audio model hears at once."""


def resolve_chat(runtime: Runtime, model_id: str | None) -> CatalogEntry:
    """The chat model `model_id` names (None: the server's default chat model), of
    either chat task."""
    wanted = model_id if model_id is not None else runtime.defaults.get(CHAT)
    entry = runtime.catalog.get(wanted or "")
    if entry is not None and entry.spec.task in CHAT_TASKS:
        return entry
    if entry is not None:
        raise WrongTask(
            f"model {entry.spec.id!r} does {entry.spec.task}, not chat ({' or '.join(CHAT_TASKS)})",
            param="model",
        )
    offered = ", ".join(e.spec.id for e in runtime.catalog.values() if e.spec.task in CHAT_TASKS)
    raise ModelNotFound(
        f"unknown chat model {wanted!r}; this server offers: {offered or 'none'}", param="model"
    )


@dataclass(frozen=True)
class ChatLimits:
    """Bounds of one chat request."""

    max_tokens: int = 1024
    """Most tokens one answer may ask for."""
    default_max_tokens: int = 256
    max_audio_seconds: float = 600.0
    """Longest audio part, decoded."""
    max_audio_parts: int = 8


@dataclass
class ChatReply:
    """One answer being generated: iterate :meth:`text`; the counts are final after it."""

    model: str
    transcripts: tuple[Transcription, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    _chunks: AsyncIterator[str] | None = field(default=None, repr=False)

    def text(self) -> AsyncIterator[str]:
        assert self._chunks is not None
        return self._chunks


async def transcribe_audio(runtime: Runtime, audio: AudioArray) -> Transcription:
    """The default recogniser's transcription of `audio`, word-timed, on its worker."""
    entry = runtime.resolve(None, ASR)
    options = TranscribeOptions(word_timestamps=True)
    return await runtime.call(entry, lambda model: cast(AsrModel, model).transcribe(audio, options))


def transcript_prompt(transcripts: Sequence[Transcription], question: str) -> str:
    """The user turn of a cascade: each transcript as context, then the question."""
    blocks = [f'Transcript of the audio:\n"{t.text.strip()}"' for t in transcripts]
    return "\n\n".join([*blocks, f"Question: {question.strip() or 'What was said?'}"])


async def cascade_messages(
    runtime: Runtime, messages: Sequence[ChatMessage]
) -> tuple[list[ChatMessage], tuple[Transcription, ...]]:
    """The messages with every audio part replaced by its transcript (text only)."""
    out: list[ChatMessage] = []
    heard: list[Transcription] = []
    for message in messages:
        if not message.audio:
            out.append(message)
            continue
        transcripts = [await transcribe_audio(runtime, audio) for audio in message.audio]
        heard.extend(transcripts)
        out.append(replace(message, text=transcript_prompt(transcripts, message.text), audio=()))
    if heard and not any(m.role == "system" for m in out):
        out.insert(0, ChatMessage("system", ANSWER_FROM_TRANSCRIPT))
    return out, tuple(heard)


async def answer(
    runtime: Runtime,
    entry: CatalogEntry,
    messages: Sequence[ChatMessage],
    options: GenerateOptions,
) -> ChatReply:
    """Transcribe the audio (a text model's cascade), check the prompt's length, and
    start generating; the returned reply streams the text."""
    await runtime.ensure_loaded(entry)
    model = cast(ChatModel, entry.model)
    transcripts: tuple[Transcription, ...] = ()
    if not model.accepts_audio:
        messages, transcripts = await cascade_messages(runtime, messages)
    else:
        check_audio_length(model, messages)
    prompt_tokens = await runtime.call(entry, lambda m: cast(ChatModel, m).count_tokens(messages))
    if prompt_tokens > model.max_prompt_tokens:
        raise PromptTooLong(
            f"the prompt is {prompt_tokens} tokens (transcripts included); "
            f"model {entry.spec.id} takes at most {model.max_prompt_tokens}",
            param="messages",
        )
    reply = ChatReply(entry.spec.id, transcripts, prompt_tokens)
    reply._chunks = _stream(runtime, entry, messages, options, reply)
    return reply


def check_audio_length(model: ChatModel, messages: Sequence[ChatMessage]) -> None:
    """Refuse an audio part longer than a native audio model hears at once."""
    limit = getattr(model, "max_audio_seconds", None)
    if limit is None:
        return
    for i, message in enumerate(messages):
        for audio in message.audio:
            seconds = len(audio) / SAMPLE_RATE
            if seconds > limit:
                raise AudioTooLong(
                    f"an audio part is {seconds:.1f} s; model {model.name} hears at most "
                    f"{limit:g} s per part",
                    param=f"messages.{i}",
                )


async def _stream(
    runtime: Runtime,
    entry: CatalogEntry,
    messages: Sequence[ChatMessage],
    options: GenerateOptions,
    reply: ChatReply,
) -> AsyncIterator[str]:
    """Run the generation on the model's worker; hand its chunks to the event loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    started: list[Generation] = []

    def work(model: Any) -> Generation:
        generation = cast(ChatModel, model).generate(messages, options)
        started.append(generation)
        try:
            for chunk in generation:
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        return generation

    task = asyncio.create_task(runtime.call(entry, work))
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
        generation = await task
        reply.prompt_tokens = generation.prompt_tokens
        reply.completion_tokens = generation.completion_tokens
        reply.finish_reason = generation.finish_reason
    finally:
        for generation in started:
            generation.cancelled.set()  # nobody reads on: the model stops at its next token
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def generate_text(
    runtime: Runtime,
    entry: CatalogEntry,
    messages: Sequence[ChatMessage],
    options: GenerateOptions,
) -> str:
    """The whole answer as one string (Hugging Face's audio-text-to-text, workflow nodes)."""
    reply = await answer(runtime, entry, messages, options)
    return "".join([chunk async for chunk in reply.text()])
