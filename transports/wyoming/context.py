"""Live classifiers asked for in a transcribe's `context`, answered in the transcript's.

A request's ``context`` may hold ``{"voxwire": {"classifiers": ["sentiment", "intent",
"speaker"]}}``; the transcript's context is the request's with ``voxwire.sentiment`` and
``voxwire.intent`` (``[{label, score}]``, best first) and ``voxwire.speaker``
(``{name, score}``, the enrolled speaker of ``/v1/speakers``, ``unknown`` under the
threshold). A classifier that fails answers ``{"error": {code, message}}`` instead; the
transcript is sent all the same. Unknown classifier names are refused at `transcribe`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from voxwire.engine.audio import MODEL_RATE
from voxwire.engine.errors import AudioEvicted, InvalidValue, describe
from voxwire.services.classification import label_scores
from voxwire.services.inference import classify_text
from voxwire.services.speakers import UNKNOWN, embed, encoder_entry
from voxwire.transports.wyoming.service import WyomingService

log = logging.getLogger(__name__)

TEXT_CLASSIFIERS = {"sentiment": "vader", "intent": "intent"}
CLASSIFIERS = (*TEXT_CLASSIFIERS, "speaker")
MAX_SPEAKER_AUDIO_S = 10.0
SPEAKER_THRESHOLD = 0.75


class UnknownClassifier(InvalidValue):
    """UnknownClassifier."""


class ContextClassifiers:
    """The classifiers one transcription asked for, and the speaker audio they need."""

    def __init__(self, service: WyomingService, names: tuple[str, ...]) -> None:
        self.service = service
        self.names = names
        self._audio: list[npt.NDArray[np.float32]] = []
        self._samples = 0

    @classmethod
    def from_request(
        cls, service: WyomingService, context: dict[str, Any] | None
    ) -> ContextClassifiers:
        ours = (context or {}).get("voxwire")
        wanted = ours.get("classifiers", []) if isinstance(ours, dict) else []
        if not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted):
            raise UnknownClassifier("context.voxwire.classifiers must be a list of names")
        unknown = [n for n in wanted if n not in CLASSIFIERS]
        if unknown:
            raise UnknownClassifier(
                f"unknown classifier {unknown[0]!r}; use any of {', '.join(CLASSIFIERS)}"
            )
        return cls(service, tuple(dict.fromkeys(wanted)))

    def hear(self, samples: npt.NDArray[np.float32]) -> None:
        """Keep the first seconds of 16 kHz audio when speaker identification is on."""
        limit = int(MAX_SPEAKER_AUDIO_S * MODEL_RATE)
        if "speaker" in self.names and self._samples < limit:
            part = samples[: limit - self._samples]
            self._audio.append(part)
            self._samples += len(part)

    async def context(
        self, transcript: str, request_context: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The transcript's context: the request's, with the classifications added."""
        if not self.names:
            return request_context
        results: dict[str, Any] = {}
        for name in self.names:
            try:
                results[name] = await self._classify(name, transcript)
            except Exception as exc:
                desc = describe(exc)
                log.info("wyoming %s classification failed: %r", name, exc)
                message = desc.message if desc.is_peer_error else f"{name} classification failed"
                results[name] = {"error": {"code": desc.code, "message": message}}
        context = dict(request_context or {})
        ours = dict(context.get("voxwire") or {})
        ours.update(results)
        context["voxwire"] = ours
        return context

    async def _classify(self, name: str, transcript: str) -> Any:
        runtime = self.service.runtime
        if name == "speaker":
            if not self._samples:
                raise AudioEvicted("no audio to identify a speaker in")
            entry = encoder_entry(runtime)
            vector = await embed(runtime, entry, np.concatenate(self._audio))
            store = self.service.speakers
            if store is None:
                return {"name": UNKNOWN, "score": 0.0}
            found = (await store.snapshot(entry.spec.id)).identify(vector, SPEAKER_THRESHOLD)
            return {"name": found.speaker, "score": round(found.score, 4)}
        if not transcript:
            return []
        entry = runtime.resolve(TEXT_CLASSIFIERS[name], "text-classification")
        labels, logits = await classify_text(runtime, entry, transcript)
        return label_scores(labels, logits, top_k=None)
