"""`voxwire bench turns FILE...`: when turns end, semantic_vad against server_vad.

Each file runs through the engine's segmenter (Silero VAD) frame by frame, once with
server_vad's silence hangover and once per semantic_vad eagerness (Smart Turn). No
recogniser runs: the figures are about the turn decision alone.

- latency: stream time from the end of the last speech frame to the frame on which
  the turn was declared over (audio time, so it does not depend on machine load);
- false ends per minute of speech: turn ends followed by more speech within
  `resume_s` (the speaker only paused), per minute of audio in utterances; on a
  dialogue the other speaker's quick answers count too, so use monologues for it;
- model ms per check: Smart Turn compute per call (this one does depend on load).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voxwire.engine.audio import MODEL_RATE
from voxwire.engine.segmenter import (
    Segmenter,
    SegmenterOptions,
    UtteranceEnded,
    UtteranceStarted,
)
from voxwire.engine.turns import EAGERNESS, Eagerness, SemanticTurn, SemanticTurnOptions
from voxwire.models.interfaces import AudioArray, SpeechProbability, TurnCompletion

Audio = npt.NDArray[np.float32]


class _Recording:
    """A VAD that remembers where the last speech frame ended."""

    def __init__(self, vad: SpeechProbability, threshold: float = 0.5) -> None:
        self.vad = vad
        self.frame_samples = vad.frame_samples
        self.threshold = threshold
        self.position = 0
        self.last_speech_end = 0

    def reset(self) -> None:
        self.vad.reset()

    def probability(self, frame: AudioArray) -> float:
        p = self.vad.probability(frame)
        self.position += len(frame)
        if p >= self.threshold:
            self.last_speech_end = self.position
        return p


class _TimedModel:
    def __init__(self, model: TurnCompletion) -> None:
        self.name = model.name
        self.window_samples = model.window_samples
        self._model = model
        self.seconds: list[float] = []

    def probability(self, audio: AudioArray) -> float:
        started = time.perf_counter()
        try:
            return self._model.probability(audio)
        finally:
            self.seconds.append(time.perf_counter() - started)


@dataclass
class TurnFigures:
    """One detector's figures over all files."""

    mode: str
    turn_ends: int = 0
    false_ends: int = 0
    speech_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    model_checks: int = 0
    model_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        minutes = self.speech_seconds / 60 or 1.0
        return {
            "mode": self.mode,
            "turn_ends": self.turn_ends,
            "latency_ms_median": statistics.median(lat) if lat else None,
            "latency_ms_max": lat[-1] if lat else None,
            "false_ends": self.false_ends,
            "false_ends_per_minute": round(self.false_ends / minutes, 2),
            "model_checks": self.model_checks,
            "model_ms_median": statistics.median(self.model_ms) if self.model_ms else None,
        }


def measure(
    audio: Audio,
    vad: SpeechProbability,
    figures: TurnFigures,
    *,
    model: TurnCompletion | None = None,
    eagerness: Eagerness = "auto",
    silence_duration_ms: int = 500,
    resume_s: float = 1.0,
) -> None:
    """Run `audio` (16 kHz) through a segmenter and add what happened to `figures`.

    The audio is followed by 9 s of silence, so its last turn ends by itself."""
    audio = np.concatenate([audio, np.zeros(9 * MODEL_RATE, dtype=np.float32)])
    recorder = _Recording(vad)
    segmenter = Segmenter(recorder, SegmenterOptions(silence_duration_ms=silence_duration_ms))
    timed = _TimedModel(model) if model is not None else None
    if timed is not None:
        options = SemanticTurnOptions.for_eagerness(eagerness)
        segmenter.judge = SemanticTurn(timed, options, lambda s, e: audio[s:e])
    frame = recorder.frame_samples
    ends: list[int] = []
    starts: list[int] = []
    for i in range(0, len(audio) - frame + 1, frame):
        for event in segmenter.feed(audio[i : i + frame]):
            if isinstance(event, UtteranceEnded):
                figures.turn_ends += 1
                figures.latencies_ms.append(
                    (recorder.position - recorder.last_speech_end) * 1000 / MODEL_RATE
                )
                figures.speech_seconds += (event.end - event.start) / MODEL_RATE
                ends.append(recorder.last_speech_end)
            elif isinstance(event, UtteranceStarted):
                starts.append(event.start)
    # An utterance's start includes prefix padding: its speech begins that much later.
    resume = int(resume_s * MODEL_RATE) + segmenter.options.prefix_padding_ms * MODEL_RATE // 1000
    figures.false_ends += sum(any(end < s <= end + resume for s in starts) for end in ends)
    if timed is not None:
        figures.model_checks += len(timed.seconds)
        figures.model_ms.extend(s * 1000 for s in timed.seconds)


def run(
    recordings: Sequence[tuple[str, Audio]],
    vad_factory: Any,
    model: TurnCompletion,
    *,
    eagerness: Sequence[Eagerness] = ("auto",),
    silence_duration_ms: int = 500,
) -> list[dict[str, Any]]:
    """Figures for server_vad and each semantic_vad eagerness over `recordings`."""
    results = []
    server = TurnFigures(f"server_vad {silence_duration_ms} ms")
    for _, audio in recordings:
        measure(audio, vad_factory(), server, silence_duration_ms=silence_duration_ms)
    results.append(server.summary())
    for level in eagerness:
        if level not in EAGERNESS:
            raise ValueError(f"eagerness must be one of {', '.join(EAGERNESS)}")
        semantic = TurnFigures(f"semantic_vad {level}")
        for _, audio in recordings:
            measure(audio, vad_factory(), semantic, model=model, eagerness=level)
        results.append(semantic.summary())
    return results


def files_audio(paths: Sequence[Path]) -> list[tuple[str, Audio]]:
    """Decode each file to 16 kHz mono."""
    from voxwire.services.media import decode_audio

    return [(p.name, decode_audio(p.read_bytes())) for p in paths]
