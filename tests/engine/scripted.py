"""A deterministic energy 'VAD' for unit tests of the sans-I/O cores.

Behavioural tests use the real Silero model; this one lets a test write exact
speech/silence patterns with tones and zeros and know every frame's verdict.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 16_000
FRAME = 512


class EnergyVad:
    """Probability 1.0 for a frame whose RMS exceeds 0.01, else 0.0."""

    frame_samples = FRAME

    def __init__(self) -> None:
        self.frames_seen = 0

    def reset(self) -> None:
        self.frames_seen = 0

    def probability(self, frame: npt.NDArray[np.float32]) -> float:
        assert len(frame) == FRAME
        self.frames_seen += 1
        return 1.0 if float(np.sqrt(np.mean(frame * frame))) > 0.01 else 0.0


def tone(seconds: float, amplitude: float = 0.3, freq: float = 220.0) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def quiet(seconds: float) -> npt.NDArray[np.float32]:
    return np.zeros(round(seconds * RATE), dtype=np.float32)


def pattern(*parts: tuple[str, float]) -> npt.NDArray[np.float32]:
    """('s', 1.0) for a second of 'speech', ('q', 0.5) for half a second of silence."""
    return np.concatenate([tone(d) if kind == "s" else quiet(d) for kind, d in parts])
