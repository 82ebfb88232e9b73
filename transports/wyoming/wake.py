"""`detect {names}` then audio-start/chunk/stop: openWakeWord on its worker, scored as the
audio arrives (the next chunk is read only once the last was scored, so a connection
never queues more than one chunk). Each wake word heard sends `detection {name,
timestamp}` (milliseconds into the stream; the same word is not reported again within
2 s); audio-stop without any sends `not-detected`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from wyoming.event import Event
from wyoming.wake import Detect, Detection, NotDetected

from voxwire.engine.audio import MODEL_RATE
from voxwire.engine.errors import InvalidValue
from voxwire.models.interfaces import WakeWordModel
from voxwire.transports.realtime.classifiers import Detection as Heard
from voxwire.transports.realtime.classifiers import WakeWordScorer
from voxwire.transports.realtime.protocol import WakeWordConfig
from voxwire.transports.wyoming.audio_input import AudioInput, Float32Array
from voxwire.transports.wyoming.service import WyomingService

log = logging.getLogger(__name__)

Send = Callable[[Event], Awaitable[None]]

THRESHOLD = 0.5


class UnknownWakeWord(InvalidValue):
    """UnknownWakeWord."""


class DetectionStream:
    """One detect request from audio-start to detection(s) or not-detected."""

    def __init__(self, service: WyomingService, request: Detect, start: Event, send: Send) -> None:
        words = service.wake_words()
        if not words:
            raise UnknownWakeWord("this server has no wake-word model")
        names = request.names or None
        unknown = [n for n in names or () if n not in words]
        if unknown:
            raise UnknownWakeWord(
                f"unknown wake word {unknown[0]!r}; this server knows {', '.join(words)}"
            )
        entries = {words[n].spec.id: words[n] for n in names or words}
        if len(entries) > 1:
            raise UnknownWakeWord("the wake words of one detect must come from one model")
        self.entry = next(iter(entries.values()))
        self.config = WakeWordConfig(threshold=THRESHOLD, names=tuple(names) if names else None)
        self.request = request
        self.service = service
        self.audio = AudioInput(start, service.limits.max_audio_s)
        self._send = send
        self._scorer: WakeWordScorer | None = None
        self.detections = 0

    async def chunk(self, event: Event) -> None:
        samples = self.audio.chunk(event)
        await self._score(samples)

    async def stop(self) -> None:
        await self._score(self.audio.finish())
        if not self.detections:
            await self._send(NotDetected(context=self.request.context).event())
            self.service.stats.not_detected += 1
        log.info("wake-word stream of %.1f s: %d detection(s)", self.audio.seconds, self.detections)

    async def _score(self, samples: Float32Array) -> None:
        if not len(samples):
            return

        def work(model: Any) -> tuple[list[Heard], int]:
            if self._scorer is None:
                self._scorer = WakeWordScorer(cast(WakeWordModel, model))
            return self._scorer.process([(MODEL_RATE, samples)], 0, self.config)

        heard, _scored = await self.service.runtime.call(self.entry, work)
        for detection in heard:
            self.detections += 1
            self.service.stats.detections += 1
            timestamp = detection.position * 1000 // MODEL_RATE
            log.info(
                "wake word %s at %d ms (score %.2f)", detection.name, timestamp, detection.score
            )
            await self._send(
                Detection(
                    name=detection.name, timestamp=timestamp, context=self.request.context
                ).event()
            )
