"""Running one model on its worker and shaping the answer: the calls the HTTP APIs, the
workflows and live classification share (no web framework here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from voxwire.models.interfaces import (
    AudioArray,
    AudioClassifier,
    TextClassifier,
    TranscribeOptions,
)
from voxwire.services.classification import FunctionToApply
from voxwire.services.runtime import CatalogEntry, Runtime
from voxwire.services.transcription import WindowedTranscription

Logits = tuple[tuple[str, ...], list[float]]


async def classify_audio(runtime: Runtime, entry: CatalogEntry, audio: AudioArray) -> Logits:
    """(labels, logits) of an audio classifier, computed on its worker."""

    def work(model: Any) -> Logits:
        classifier = cast(AudioClassifier, model)
        return tuple(classifier.labels), [float(x) for x in classifier.logits(audio)]

    return await runtime.call(entry, work)


async def classify_text(runtime: Runtime, entry: CatalogEntry, text: str) -> Logits:
    """(labels, logits) of a text classifier, computed on its worker."""

    def work(model: Any) -> Logits:
        classifier = cast(TextClassifier, model)
        return tuple(classifier.labels), [float(x) for x in classifier.logits(text)]

    return await runtime.call(entry, work)


async def transcribe(
    runtime: Runtime, entry: CatalogEntry, audio: AudioArray, *, timestamps: bool = False
) -> dict[str, Any]:
    """``{"text"}`` (plus ``chunks`` with timestamps) from a recogniser, on its worker
    window by window (stopped when the caller is cancelled)."""
    result = await WindowedTranscription(runtime, entry, audio, TranscribeOptions()).result()
    answer: dict[str, Any] = {"text": result.text.strip()}
    if timestamps:
        answer["chunks"] = [
            {"text": s.text.strip(), "timestamp": [round(s.start, 3), round(s.end, 3)]}
            for s in result.segments
        ]
    return answer


@dataclass(frozen=True)
class ReservedClassifier:
    """An audio classifier served under a reserved model id instead of a catalogue entry.

    `logits(audio, wait_for_model)` gives (labels, scores); `default_function` is applied
    when the request names none. Its answers are never cached.
    """

    logits: Callable[[AudioArray, bool], Awaitable[Logits]]
    default_function: FunctionToApply = "none"
