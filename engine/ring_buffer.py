"""A bounded audio ring buffer indexed by absolute sample position.

An utterance is a ``[start, end)`` range of the stream. What falls off the old
end is counted in :attr:`RingBuffer.evicted_samples`, and reading an evicted
range raises :class:`AudioEvicted` instead of returning wrong audio.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voxwire.engine.errors import AudioEvicted

Float32Array = npt.NDArray[np.float32]


class RingBuffer:
    """Fixed-capacity float32 sample store addressed by absolute stream position."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._data = np.zeros(capacity, dtype=np.float32)
        self._end = 0

    @property
    def end(self) -> int:
        """Absolute position one past the newest sample (samples written so far)."""
        return self._end

    @property
    def start(self) -> int:
        """Absolute position of the oldest sample still held."""
        return max(0, self._end - self.capacity)

    @property
    def evicted_samples(self) -> int:
        """Samples that have fallen off the old end."""
        return self.start

    def __len__(self) -> int:
        return self._end - self.start

    def append(self, samples: Float32Array) -> None:
        """Append samples; the oldest ones are overwritten when full."""
        n = len(samples)
        if n == 0:
            return
        if n >= self.capacity:
            samples = samples[-self.capacity :]
            self._end += n - self.capacity
            n = self.capacity
        offset = self._end % self.capacity
        first = min(n, self.capacity - offset)
        self._data[offset : offset + first] = samples[:first]
        if first < n:
            self._data[: n - first] = samples[first:]
        self._end += n

    def read(self, start: int, end: int) -> Float32Array:
        """Copy of samples ``[start, end)``; raises AudioEvicted if any were overwritten."""
        if start < 0 or end < start:
            raise ValueError(f"invalid range [{start}, {end})")
        if end > self._end:
            raise ValueError(f"range [{start}, {end}) extends past the buffer end {self._end}")
        if start < self.start:
            raise AudioEvicted(
                f"samples [{start}, {self.start}) were evicted from a {self.capacity}-sample buffer"
            )
        n = end - start
        out = np.empty(n, dtype=np.float32)
        offset = start % self.capacity
        first = min(n, self.capacity - offset)
        out[:first] = self._data[offset : offset + first]
        if first < n:
            out[first:] = self._data[: n - first]
        return out
