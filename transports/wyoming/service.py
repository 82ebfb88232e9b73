"""What every Wyoming connection shares: the runtime (models and their workers), the
session slots it shares with the Realtime API, the limits and the counters."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

from voxwire.engine.errors import ModelNotFound
from voxwire.models.interfaces import SpeechSynthesizer, WakeWordModel
from voxwire.models.registry import Task
from voxwire.services.runtime import CatalogEntry, Runtime
from voxwire.services.slots import Slots
from voxwire.services.speakers import SpeakerStore
from voxwire.transports.wyoming.limits import WyomingLimits, WyomingStats

log = logging.getLogger(__name__)

ASR: Task = "automatic-speech-recognition"
TTS: Task = "text-to-speech"
WAKE_BACKEND = "openwakeword"


@dataclass
class WyomingService:
    """The runtime and bounds behind every connection of one process."""

    runtime: Runtime
    slots: Slots
    limits: WyomingLimits = field(default_factory=WyomingLimits)
    stats: WyomingStats = field(default_factory=WyomingStats)
    speakers: SpeakerStore | None = None
    """Enrolled voices (/v1/speakers) for the `speaker` context classifier."""

    async def prepare(self) -> None:
        """Load the speech and wake-word models now, so `info` lists their voices and
        words and no first request waits for a load."""
        for entry in self.tts_entries() + self.wake_entries():
            await self.runtime.ensure_loaded(entry)

    def tts_entries(self) -> list[CatalogEntry]:
        return self.runtime.entries(TTS)

    def wake_entries(self) -> list[CatalogEntry]:
        return [
            e
            for e in self.runtime.entries("audio-classification")
            if e.spec.backend == WAKE_BACKEND
        ]

    def voice(self, name: str | None) -> tuple[CatalogEntry, str | None]:
        """The speech model and its voice for a Wyoming voice name (None: the default)."""
        if name is None:
            return self.runtime.resolve(None, TTS), None
        for entry in self.tts_entries():
            model = cast(SpeechSynthesizer | None, entry.model)
            if model is not None and name in model.voices:
                return entry, name
            if entry.spec.id == name:
                return entry, None
        offered = ", ".join(voice_names(self))
        raise ModelNotFound(f"unknown voice {name!r}; this server has: {offered}", param="voice")

    def wake_words(self) -> dict[str, CatalogEntry]:
        """Every loaded wake word and the model that hears it."""
        words: dict[str, CatalogEntry] = {}
        for entry in self.wake_entries():
            model = cast(WakeWordModel | None, entry.model)
            for word in model.wake_words if model is not None else ():
                words.setdefault(word, entry)
        return words


def voice_names(service: WyomingService) -> list[str]:
    """The voices `info` lists: each speech model's voices, or its id before it loads."""
    names: list[str] = []
    for entry in service.tts_entries():
        model: Any = entry.model
        names.extend(model.voices if model is not None else (entry.spec.id,))
    return names
