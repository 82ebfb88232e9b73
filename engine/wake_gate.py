"""The wake-word gate: which input audio reaches the transcriber (sans-I/O).

An explicit state machine (off, listening, open) with its legal transitions in one
table; an illegal one raises :class:`~voxwire.engine.errors.IllegalTransition`. While
listening it holds the most recent audio, so that a wake word can open it with the
speech that led up to the detection. Live classification
(:mod:`voxwire.transports.realtime.classifiers`) drives it from wake-word detections
and commits.
"""

from __future__ import annotations

import enum
from collections import deque

import numpy as np
import numpy.typing as npt

from voxwire.engine.audio import MODEL_RATE
from voxwire.engine.errors import IllegalTransition

Float32Array = npt.NDArray[np.float32]

PREROLL_S = 1.5
"""Audio before a wake word's detection that the opened gate transcribes: a spoken
"Hey Jarvis" is detected 0.8-1 s after it starts, so this keeps all of it and little of
what came before."""
MAX_BACKLOG_S = 2.0
"""Audio waiting for the wake-word worker; beyond this the oldest is dropped."""


class GateState(enum.Enum):
    """Whether input audio reaches the transcriber."""

    OFF = "off"
    """No gate: all audio is transcribed."""
    LISTENING = "listening"
    """Waiting for a wake word; audio is held, not transcribed."""
    OPEN = "open"
    """A wake word was heard: audio is transcribed until the command is committed."""


_GATE_TRANSITIONS: dict[GateState, frozenset[GateState]] = {
    GateState.OFF: frozenset({GateState.LISTENING}),
    GateState.LISTENING: frozenset({GateState.OPEN, GateState.OFF}),
    GateState.OPEN: frozenset({GateState.LISTENING, GateState.OFF}),
}


class WakeWordGate:
    """Decides which input audio reaches the transcriber; holds what it keeps back.

    Positions are in 16 kHz samples of the input stream (whatever its rate), the clock
    the wake-word detector counts on.
    """

    def __init__(self, preroll_s: float = PREROLL_S, hold_s: float = PREROLL_S + MAX_BACKLOG_S):
        self.state = GateState.OFF
        self.preroll = preroll_s * MODEL_RATE
        self.hold = hold_s * MODEL_RATE
        self.position = 0.0
        """16 kHz-equivalent samples of input seen so far."""
        self.discarded = 0.0
        self._held: deque[tuple[float, int, Float32Array]] = deque()
        """(start position, input rate, samples at that rate)"""
        self._held_length = 0.0

    def _go(self, new: GateState) -> None:
        if new not in _GATE_TRANSITIONS[self.state]:
            raise IllegalTransition(f"wake-word gate: {self.state.value} -> {new.value}")
        self.state = new

    def feed(self, samples: Float32Array, rate: int) -> Float32Array | None:
        """The samples to transcribe, or None while listening (then they are held)."""
        start = self.position
        length = len(samples) * MODEL_RATE / rate
        self.position += length
        if self.state is not GateState.LISTENING:
            return samples
        self._held.append((start, rate, samples))
        self._held_length += length
        while self._held_length > self.hold and len(self._held) > 1:
            _, old_rate, old = self._held.popleft()
            dropped = len(old) * MODEL_RATE / old_rate
            self._held_length -= dropped
            self.discarded += dropped
        return None

    def enable(self) -> None:
        """Start listening for a wake word."""
        self._go(GateState.LISTENING)

    def disable(self, rate: int) -> Float32Array:
        """No more gate; returns the last `preroll` of held audio, to transcribe."""
        self._go(GateState.OFF)
        audio, _ = self._release(self.position - self.preroll, rate)
        return audio

    def wake(self, position: float, rate: int) -> tuple[Float32Array, float]:
        """A wake word ended at `position`: open, and return the held audio from `preroll`
        before it (at `rate`) with the position where that audio starts."""
        self._go(GateState.OPEN)
        return self._release(position - self.preroll, rate)

    def close(self) -> None:
        """The command was committed: listen for the next wake word."""
        self._go(GateState.LISTENING)

    def clear(self) -> None:
        """Forget held audio (input_audio_buffer.clear)."""
        self._held.clear()
        self._held_length = 0.0

    def _release(self, start: float, rate: int) -> tuple[Float32Array, float]:
        parts: list[Float32Array] = []
        first = self.position
        for chunk_start, chunk_rate, samples in self._held:
            length = len(samples) * MODEL_RATE / chunk_rate
            if chunk_rate != rate or chunk_start + length <= start:
                self.discarded += length  # older, or at a rate the session no longer has
                continue
            skip = max(0, round((start - chunk_start) * rate / MODEL_RATE))
            self.discarded += skip * MODEL_RATE / rate
            first = min(first, chunk_start + skip * MODEL_RATE / rate)
            parts.append(samples[skip:])
        self.clear()
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return audio.astype(np.float32, copy=False), first
