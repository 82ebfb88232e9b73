"""`transcribe` then audio-start/chunk/stop: the engine's streaming session on the shared
ASR worker. Committed text goes out as transcript-chunk while audio still arrives; at
audio-stop the last utterance is decoded, then `transcript` (all utterances joined) and
transcript-stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from wyoming.asr import (
    Transcribe,
    Transcript,
    TranscriptChunk,
    TranscriptStart,
    TranscriptStop,
    VadSensitivity,
)
from wyoming.event import Event

from voxwire.engine.driver import SessionDriver
from voxwire.engine.errors import ModelNotFound, Overloaded, VoxwireError
from voxwire.engine.events import (
    Event as EngineEvent,
)
from voxwire.engine.events import (
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
)
from voxwire.engine.segmenter import SegmenterOptions
from voxwire.engine.session import SessionOptions
from voxwire.services.runtime import OPENAI_ALIASES
from voxwire.transports.wyoming.audio_input import AudioInput
from voxwire.transports.wyoming.context import ContextClassifiers
from voxwire.transports.wyoming.service import ASR, WyomingService

log = logging.getLogger(__name__)

Send = Callable[[Event], Awaitable[None]]

SILENCE_MS = {"default": 500, "relaxed": 1000, "aggressive": 300}
"""`vad_sensitivity`: the silence that ends an utterance inside the stream."""


class TranscriptionFailedError(VoxwireError, code="transcription_failed"):
    """A decode of the stream failed (overload, worker stopped); the peer is told so."""


def check_request(service: WyomingService, request: Transcribe) -> None:
    """Refuse a model name the streaming recogniser does not answer to."""
    runtime = service.runtime
    names = {runtime.defaults[ASR], runtime.asr_name, *OPENAI_ALIASES[ASR]}
    if request.name is not None and request.name not in names:
        raise ModelNotFound(
            f"unknown ASR model {request.name!r}; this server streams with {runtime.defaults[ASR]}",
            param="name",
        )


class TranscriptionStream:
    """One transcribe request from audio-start to transcript-stop."""

    def __init__(
        self, service: WyomingService, request: Transcribe, start: Event, send: Send, name: str
    ) -> None:
        check_request(service, request)
        self.service = service
        self.request = request
        self.audio = AudioInput(start, service.limits.max_audio_s)
        self._send = send
        sensitivity = request.vad_sensitivity
        key = sensitivity.value if isinstance(sensitivity, VadSensitivity) else sensitivity
        silence = SILENCE_MS.get(str(key), SILENCE_MS["default"])
        options = SessionOptions(
            segmenter=replace(SegmenterOptions(), silence_duration_ms=silence),
            language=request.language,
        )
        runtime = service.runtime
        self.session = runtime.new_session(options, session_id=name)
        self.driver: SessionDriver = runtime.driver(self.session, self._on_events)
        self._chunks: list[str] = []
        """Committed text not yet sent."""
        self._finals: dict[str, str] = {}
        self._failure: str | None = None
        self._items: dict[str, list[str]] = {}
        """Committed text of each utterance not yet queued for sending."""
        self._sent_any = False
        self._last_item: str | None = None
        self._sending = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._started = False
        self.classifiers = ContextClassifiers.from_request(service, request.context)

    def _on_events(self, events: Sequence[EngineEvent], _facts: dict[str, float]) -> None:
        for event in events:
            item = getattr(event, "item_id", None)
            if item is not None and item not in self._items:
                self._items[item] = []  # utterances in the order they were spoken
            if isinstance(event, TranscriptionDelta) and event.delta:
                self._items[event.item_id].append(event.delta)
            elif isinstance(event, TranscriptionCompleted):
                self._finals[event.item_id] = event.transcript.strip()
            elif isinstance(event, TranscriptionFailed):
                self._finals[event.item_id] = ""
                self._failure = event.error.get("message", "transcription failed")
        self._release()

    def _release(self) -> None:
        """Queue the committed text for sending in the order it was spoken: an
        utterance's words wait until every earlier utterance is final."""
        released = False
        for item, deltas in self._items.items():
            if deltas:
                text = "".join(deltas)
                if self._sent_any and item != self._last_item:
                    text = " " + text.lstrip()  # utterances are joined by a space
                self._chunks.append(text)
                self._sent_any, self._last_item = True, item
                deltas.clear()
                released = True
            if item not in self._finals:
                break
        if released:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Send committed text now, from a task: a decode finishes while the handler may
        be waiting for the next audio-chunk."""
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_in_background(), name=f"{self.session.session_id}:transcript-chunks"
            )

    async def _flush_in_background(self) -> None:
        try:
            await self._flush()
        except Exception as exc:  # the handler meets the same broken connection itself
            log.info("%s: sending transcript chunks failed: %r", self.session.session_id, exc)

    async def chunk(self, event: Event) -> None:
        """Feed one audio-chunk (its committed text goes out as it is decoded)."""
        samples = self.audio.chunk(event)
        self.classifiers.hear(samples)
        if len(samples):
            await self.driver.feed(samples)

    async def stop(self) -> None:
        """audio-stop: decode what is left, then send the transcript."""
        tail = self.audio.finish()
        if len(tail):
            await self.driver.feed(tail)
        await self.driver.finish()
        await self._flush()
        if self._failure is not None:
            raise TranscriptionFailedError(self._failure)
        text = " ".join(t for item in self._items if (t := self._finals.get(item, "")))
        language = self.request.language or "en"
        context = await self.classifiers.context(text, self.request.context)
        if not self._started:
            await self._send(TranscriptStart(language=language, context=context).event())
        await self._send(Transcript(text=text, language=language, context=context).event())
        await self._send(TranscriptStop().event())
        self.service.stats.transcripts += 1
        log.info(
            "%s: transcribed %.1f s of %d Hz audio: %d chars",
            self.session.session_id,
            self.audio.seconds,
            self.audio.rate,
            len(text),
        )

    async def close(self) -> None:
        """Cancel queued decodes and unsent text (the stream ended or the client left)."""
        await self.driver.close()
        self._chunks.clear()
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flusher

    async def _flush(self) -> None:
        """Send the committed text not sent yet, in order (one sender at a time)."""
        async with self._sending:
            while self._chunks:
                text = "".join(self._chunks)
                self._chunks.clear()
                if not self._started:
                    self._started = True
                    language = self.request.language or "en"
                    await self._send(TranscriptStart(language=language).event())
                    text = text.lstrip()
                if text:
                    await self._send(TranscriptChunk(text=text).event())


def transcribe_request(event: Event | None) -> Transcribe:
    """The pending transcribe request (audio-start without one: the defaults)."""
    return Transcribe.from_event(event) if event is not None else Transcribe()


def overloaded() -> Overloaded:
    return Overloaded("too many audio streams at once; try again later")
