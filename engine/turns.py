"""Semantic end of turn (the Realtime API's ``semantic_vad``), sans-I/O.

The segmenter still finds the pauses; in a pause this judge asks a
:class:`~voxwire.models.interfaces.TurnCompletion` model whether the speech so far
sounds finished. A short pause plus P(complete) >= threshold ends the turn at once;
otherwise the segmenter waits, asking again now and then, until the silence reaches
the eagerness's maximum wait. A pause mid-sentence ("a table for ... four") sounds
unfinished and waits; a finished question ends sooner than server_vad's hangover.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from voxwire.engine.audio import MODEL_RATE
from voxwire.models.interfaces import TurnCompletion

Eagerness = Literal["low", "medium", "high", "auto"]
EAGERNESS: tuple[Eagerness, ...] = ("low", "medium", "high", "auto")


@dataclass(frozen=True)
class SemanticTurnOptions:
    """When a pause ends a turn."""

    eagerness: Eagerness = "auto"
    threshold: float = 0.5
    """P(complete) at or above which a pause ends the turn."""
    pause_ms: int = 100
    """Silence (after the VAD's last speech frame) before the model is asked."""
    max_wait_ms: int = 4000
    """Silence that ends the turn whatever the model says (OpenAI: 8, 4 and 2 s)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if not 0 < self.pause_ms <= self.max_wait_ms:
            raise ValueError("pause_ms must be positive and at most max_wait_ms")

    @classmethod
    def for_eagerness(cls, eagerness: Eagerness) -> SemanticTurnOptions:
        """The settings an eagerness stands for (auto is medium, as OpenAI says)."""
        threshold, pause_ms, max_wait_ms = _EAGERNESS[eagerness]
        return cls(eagerness, threshold, pause_ms, max_wait_ms=max_wait_ms)


_EAGERNESS: dict[Eagerness, tuple[float, int, int]] = {
    "low": (0.7, 150, 8000),
    "medium": (0.5, 100, 4000),
    "auto": (0.5, 100, 4000),
    "high": (0.3, 100, 2000),
}
"""eagerness -> (threshold, pause_ms, max_wait_ms)."""


AudioReader = Callable[[int, int], npt.NDArray[np.float32]]
"""Reads 16 kHz samples [start, end) of the stream."""


class SemanticTurn:
    """The segmenter's judge in a pause: ``due`` says when to ask, ``complete`` asks."""

    def __init__(
        self, model: TurnCompletion, options: SemanticTurnOptions, read: AudioReader
    ) -> None:
        self.model = model
        self.options = options
        self._read = read
        self._pause = options.pause_ms * MODEL_RATE // 1000
        self.max_wait = options.max_wait_ms * MODEL_RATE // 1000
        """Silence (samples) after which the segmenter ends the turn regardless."""
        self.checks = 0
        """Times the model was asked."""
        self.early_ends = 0
        """Turns it ended before the maximum wait."""
        self.last_probability: float | None = None

    def due(self, silent: int, asked: int) -> bool:
        """Whether to ask the model, `silent` samples into a pause where it was asked
        `asked` times already (once per pause)."""
        return asked == 0 and silent >= self._pause

    def complete(self, start: int, now: int) -> bool:
        """Whether the utterance that began at `start` is a finished turn at `now`."""
        begin = max(start, now - self.model.window_samples)
        p = self.model.probability(self._read(begin, now))
        self.checks += 1
        self.last_probability = p
        if p >= self.options.threshold:
            self.early_ends += 1
            return True
        return False
