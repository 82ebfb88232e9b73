"""`synthesize` (one request) and synthesize-start/chunk/stop (text streamed in):
Piper on its worker, a sentence at a time, sent as audio-start/chunk/stop in 16-bit mono
at the voice's rate. Streamed text is cut into sentences as it arrives and each sentence
is spoken as soon as it is complete (one audio-start/stop per sentence), then
synthesize-stopped."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.tts import SynthesizeStopped, SynthesizeVoice

from voxwire.engine.audio import float32_to_pcm16
from voxwire.engine.errors import InvalidValue, PayloadTooLarge, PeerError
from voxwire.engine.sentences import SentenceSplitter
from voxwire.models.interfaces import AudioArray, SpeechSynthesizer
from voxwire.services.runtime import CatalogEntry
from voxwire.services.speech import speech_chunks
from voxwire.transports.wyoming.service import WyomingService

log = logging.getLogger(__name__)

Send = Callable[[Event], Awaitable[None]]

CHUNK_SAMPLES = 2048
"""Samples per audio-chunk (about 93 ms at 22 050 Hz)."""


class UnknownSpeaker(InvalidValue):
    """A speaker the voice does not have (the embedded Piper voices have one each)."""


class Speaker:
    """One voice of one speech model, sending each text's audio to the client."""

    def __init__(self, service: WyomingService, voice: SynthesizeVoice | None, send: Send):
        self.service = service
        name = voice.name if voice is not None else None
        self.entry, self.voice = service.voice(name)
        if voice is not None and voice.speaker is not None:
            raise UnknownSpeaker(
                f"voice {name or self.entry.spec.id!r} has no speaker {voice.speaker!r}"
            )
        self._send = send
        self.samples = 0

    async def speak(self, text: str) -> None:
        """audio-start, the chunks of every sentence of `text` as each is made, audio-stop."""
        runtime = self.service.runtime
        await runtime.ensure_loaded(self.entry)
        model = cast(SpeechSynthesizer, self.entry.model)
        rate = int(model.sample_rate)
        await self._send(AudioStart(rate=rate, width=2, channels=1).event())
        sentences: Iterator[AudioArray] | None = None

        def next_sentence(model: Any) -> AudioArray | None:
            nonlocal sentences
            if sentences is None:
                sentences = speech_chunks(model, text, voice=self.voice, speed=1.0)
            return next(sentences, None)

        while (audio := await runtime.call(self.entry, next_sentence)) is not None:
            pcm = float32_to_pcm16(audio)
            step = CHUNK_SAMPLES * 2
            for offset in range(0, len(pcm), step):
                chunk = AudioChunk(
                    rate=rate, width=2, channels=1, audio=pcm[offset : offset + step]
                )
                await self._send(chunk.event())
            self.samples += len(audio)
            self.service.stats.audio_samples_sent += len(audio)
        await self._send(AudioStop().event())


def _check_text(text: object, limit: int) -> str:
    if not isinstance(text, str):
        raise PeerError("'text' must be a string", param="text")
    if len(text) > limit:
        raise PayloadTooLarge(f"text longer than {limit} characters")
    return text


async def synthesize(service: WyomingService, event: Event, send: Send) -> None:
    """One `synthesize`: the whole text's audio."""
    from wyoming.tts import Synthesize

    request = Synthesize.from_event(event)
    text = _check_text(request.text, service.limits.max_text_chars)
    speaker = Speaker(service, request.voice, send)
    await speaker.speak(text)
    service.stats.syntheses += 1
    log.info("synthesized %d chars: %d samples", len(text), speaker.samples)


class StreamedSynthesis:
    """synthesize-start .. synthesize-stop: text chunks in, audio per sentence out."""

    def __init__(self, service: WyomingService, voice: SynthesizeVoice | None, send: Send):
        self.service = service
        self.speaker = Speaker(service, voice, send)
        self._splitter = SentenceSplitter()
        self._chars = 0
        self._send = send

    @property
    def entry(self) -> CatalogEntry:
        return self.speaker.entry

    async def chunk(self, event: Event) -> None:
        text = _check_text(event.data.get("text"), self.service.limits.max_text_chars)
        self._chars += len(text)
        if self._chars > self.service.limits.max_text_chars:
            raise PayloadTooLarge(
                f"streamed text longer than {self.service.limits.max_text_chars} characters"
            )
        for sentence in self._splitter.feed(text):
            await self.speaker.speak(sentence)

    async def stop(self) -> None:
        for sentence in self._splitter.flush():
            await self.speaker.speak(sentence)
        await self._send(SynthesizeStopped().event())
        self.service.stats.syntheses += 1
        log.info("streamed synthesis of %d chars: %d samples", self._chars, self.speaker.samples)
