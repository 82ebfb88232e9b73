"""PCM conversion and one stateful resampler per stream (soxr)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from voxwire.engine.errors import InvalidAudio, UnsupportedSampleRate
from voxwire.models.interfaces import SAMPLE_RATE

MODEL_RATE = SAMPLE_RATE
"""The sample rate every model consumes (the models' one constant)."""

SUPPORTED_INPUT_RATES = (8_000, 16_000, 24_000, 44_100, 48_000)

Float32Array = npt.NDArray[np.float32]


def pcm16_to_float32(data: bytes | bytearray | memoryview) -> Float32Array:
    """Little-endian signed 16-bit PCM bytes to float32 in [-1, 1)."""
    if len(data) % 2:
        raise InvalidAudio(f"PCM16 data must have an even number of bytes, got {len(data)}")
    pcm = np.frombuffer(data, dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32, copy=False)


def float32_to_pcm16(samples: npt.ArrayLike) -> bytes:
    """float32 samples to little-endian PCM16 bytes, clipping to the valid range."""
    audio = np.asarray(samples, dtype=np.float32)
    scaled = np.clip(np.round(audio * 32768.0), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def as_mono_float32(samples: npt.ArrayLike) -> Float32Array:
    """Validate and convert samples to a contiguous 1-D float32 array."""
    audio = np.asarray(samples)
    if audio.ndim != 1:
        raise InvalidAudio(f"expected mono audio (1-D), got shape {audio.shape}")
    if audio.dtype == np.int16:
        return (audio.astype(np.float32) / 32768.0).astype(np.float32, copy=False)
    if not np.issubdtype(audio.dtype, np.floating):
        raise InvalidAudio(f"expected float or int16 samples, got {audio.dtype}")
    out = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise InvalidAudio("audio contains NaN or infinite samples")
    return out


class StreamResampler:
    """Resamples one stream (to 16 kHz by default), keeping filter state across chunks.

    The one streaming resampler: session input, decoded media, speech to encode or play.
    Use one instance per stream: the filter history of one stream must never leak
    into another. Where the two rates are equal it is a pass-through. A client's input
    rate must be one of :data:`SUPPORTED_INPUT_RATES`; `any_rate` lifts that for rates
    that come from files and voices rather than from a peer.
    """

    def __init__(
        self, input_rate: int, output_rate: int = MODEL_RATE, *, any_rate: bool = False
    ) -> None:
        if not any_rate and input_rate not in SUPPORTED_INPUT_RATES:
            rates = ", ".join(str(r) for r in SUPPORTED_INPUT_RATES)
            raise UnsupportedSampleRate(
                f"unsupported input sample rate {input_rate} Hz (supported: {rates})"
            )
        if input_rate <= 0 or output_rate <= 0:
            raise UnsupportedSampleRate(f"sample rates must be positive ({input_rate} Hz)")
        self.input_rate = input_rate
        self.output_rate = output_rate
        self._stream: soxr.ResampleStream | None = (
            None
            if input_rate == output_rate
            else soxr.ResampleStream(input_rate, output_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, samples: npt.ArrayLike) -> Float32Array:
        """Resample the next chunk; output may lag input by the filter delay."""
        audio = as_mono_float32(samples)
        if self._stream is None:
            return audio
        return np.asarray(self._stream.resample_chunk(audio, last=False), dtype=np.float32)

    def flush(self) -> Float32Array:
        """Emit what the filter still holds at the end of the stream."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        return np.asarray(tail, dtype=np.float32)
