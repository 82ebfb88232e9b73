"""Decode any audio file or upload to mono float32 at 16 kHz.

PyAV demuxes and decodes (any container and codec the bundled FFmpeg knows);
channels are mixed down and samples converted to float here; soxr resamples.
Decoding streams frame by frame, so a large file is never held twice: only the
resampled 16 kHz output accumulates. A few bytes can declare hours of audio (a low
sample rate, a huge data size, a FLAC of silence), so :class:`AudioLimits` bounds what
decoding may produce, not only the bytes: the container's header is checked before the
first frame (declared duration, sample rate, channels) and the same limits, plus a
decode-time deadline and a cancellation flag, are checked after every frame.
Every failure becomes
:class:`~voxwire.engine.errors.InvalidAudio` (or :class:`~voxwire.engine.errors.PayloadTooLarge`)
with a one-line message that is safe to show to whoever sent the audio.
"""

from __future__ import annotations

import io
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import av
import av.error
import numpy as np
import numpy.typing as npt

from voxwire.engine.audio import MODEL_RATE, StreamResampler
from voxwire.engine.errors import InvalidAudio, PayloadTooLarge

DEFAULT_MAX_BYTES = 1 << 30
"""Default limit on the encoded size of one input (1 GiB)."""

DEFAULT_MAX_SECONDS = 4 * 3600.0
"""Default limit on the decoded duration of one input (4 hours)."""


@dataclass(frozen=True)
class AudioLimits:
    """What one decoded input may amount to, whatever its encoded size."""

    max_seconds: float = DEFAULT_MAX_SECONDS
    """Longest decoded duration; longer audio gets PayloadTooLarge (HTTP 413)."""
    max_sample_rate: int = 384_000
    """Highest input sample rate accepted (InvalidAudio, HTTP 400, above it)."""
    min_sample_rate: int = 1_000
    """Lowest input sample rate accepted: below it a few bytes are hours of audio."""
    max_channels: int = 32
    """Most channels accepted (each is decoded before the mix-down)."""
    max_decode_seconds: float | None = 60.0
    """Wall-clock time decoding may take; None: unbounded."""

    def __post_init__(self) -> None:
        if self.max_seconds <= 0 or self.max_channels < 1:
            raise ValueError("max_seconds and max_channels must be positive")
        if not 0 < self.min_sample_rate <= self.max_sample_rate:
            raise ValueError("need 0 < min_sample_rate <= max_sample_rate")
        if self.max_decode_seconds is not None and self.max_decode_seconds <= 0:
            raise ValueError("max_decode_seconds must be positive (or None)")


class DecodeCancelled(Exception):
    """Decoding stopped because its caller set the cancellation flag (nobody waits)."""


AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
"""A path, the encoded bytes themselves, or a seekable binary file object."""

Float32Array = npt.NDArray[np.float32]


def decode_audio(
    source: AudioSource,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float | None = None,
    limits: AudioLimits | None = None,
    cancelled: threading.Event | None = None,
) -> Float32Array:
    """Decode the first audio stream of `source` to mono float32 in [-1, 1] at 16 kHz.

    Raises InvalidAudio for a missing, empty, corrupt or audio-less input, or one
    whose rate or channels are outside `limits`; PayloadTooLarge when it is larger
    than `max_bytes`, longer than the limit (`max_seconds` overrides
    ``limits.max_seconds``) or slower to decode than ``limits.max_decode_seconds``;
    DecodeCancelled once `cancelled` is set.
    """
    limits = limits or AudioLimits()
    if max_seconds is not None:
        limits = AudioLimits(
            max_seconds=max_seconds,
            max_sample_rate=limits.max_sample_rate,
            min_sample_rate=limits.min_sample_rate,
            max_channels=limits.max_channels,
            max_decode_seconds=limits.max_decode_seconds,
        )
    opened: str | IO[bytes]
    if isinstance(source, bytes | bytearray | memoryview):
        _check_size(memoryview(source).nbytes, max_bytes)
        opened = io.BytesIO(source)  # shares a bytes object's buffer rather than copying it
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise InvalidAudio("file not found") from None
        except OSError as exc:
            raise InvalidAudio(f"cannot read file: {exc.strerror or exc}") from None
        if path.is_dir():
            raise InvalidAudio("is a directory, not an audio file")
        _check_size(size, max_bytes)
        # "file:" stops FFmpeg reading "name:rest" as a protocol (http:, concat:, ...).
        opened = f"file:{path}"
    else:
        opened = source
        try:
            start = source.tell()
            size = source.seek(0, io.SEEK_END) - start
            source.seek(start)
        except (OSError, ValueError, AttributeError) as exc:
            raise InvalidAudio(f"audio input is not a seekable file: {exc}") from None
        _check_size(size, max_bytes)
    return _decode(opened, limits, cancelled)


def _check_size(size: int, max_bytes: int) -> None:
    if size == 0:
        raise InvalidAudio("empty file (0 bytes)")
    if size > max_bytes:
        raise PayloadTooLarge(f"audio is {size} bytes, more than the limit of {max_bytes} bytes")


def _decode(
    opened: str | IO[bytes], limits: AudioLimits, cancelled: threading.Event | None
) -> Float32Array:
    try:
        container = av.open(opened, mode="r")
    except av.error.FileNotFoundError:
        raise InvalidAudio("file not found") from None
    except av.error.PermissionError:
        raise InvalidAudio("permission denied") from None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidAudio(f"not a readable audio or media file ({_reason(exc)})") from None
    try:
        if not container.streams.audio:
            kinds = sorted({s.type for s in container.streams})
            what = f" (it has only {', '.join(kinds)})" if kinds else ""
            raise InvalidAudio(f"no audio stream in the file{what}")
        stream = container.streams.audio[0]
        _check_header(container, stream, limits)
        return _decode_stream(container, stream, _Guard(limits, cancelled))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidAudio(f"corrupt or undecodable audio ({_reason(exc)})") from None
    finally:
        container.close()


def _check_header(
    container: av.container.InputContainer, stream: av.AudioStream, limits: AudioLimits
) -> None:
    """Refuse what the header already shows to be out of bounds, before decoding."""
    declared = _declared_seconds(container, stream)
    if declared is not None and declared > limits.max_seconds + 1e-9:
        raise PayloadTooLarge(
            f"the file declares {_format_seconds(declared)} of audio, longer than the limit "
            f"of {_format_seconds(limits.max_seconds)}"
        )
    context = stream.codec_context
    _check_format(int(context.sample_rate or 0), int(context.channels or 0), limits)


def _declared_seconds(
    container: av.container.InputContainer, stream: av.AudioStream
) -> float | None:
    """The duration the container or stream header states, if any."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _check_format(rate: int, channels: int, limits: AudioLimits) -> None:
    if rate and not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        raise InvalidAudio(
            f"sample rate {rate} Hz is outside the accepted "
            f"{limits.min_sample_rate}-{limits.max_sample_rate} Hz"
        )
    if channels > limits.max_channels:
        raise InvalidAudio(
            f"audio has {channels} channels, more than the limit of {limits.max_channels}"
        )


class _Guard:
    """The limits checked after every decoded frame: duration, format, time, cancel."""

    def __init__(self, limits: AudioLimits, cancelled: threading.Event | None) -> None:
        self.limits = limits
        self.cancelled = cancelled
        self.seconds = 0.0
        budget = limits.max_decode_seconds
        self.deadline = None if budget is None else time.monotonic() + budget

    def frame(self, frame: av.AudioFrame) -> None:
        """Count one frame's samples (per channel) or raise what stops the decode."""
        if self.cancelled is not None and self.cancelled.is_set():
            raise DecodeCancelled("decoding cancelled")
        limits = self.limits
        rate = int(frame.sample_rate)
        if rate <= 0:
            raise InvalidAudio("audio stream has no sample rate")
        _check_format(rate, len(frame.layout.channels), limits)
        self.seconds += frame.samples / rate
        if self.seconds > limits.max_seconds + 1e-9:
            raise PayloadTooLarge(
                f"audio is longer than the limit of {_format_seconds(limits.max_seconds)}"
            )
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise PayloadTooLarge(
                "decoding the audio took longer than the limit of "
                f"{_format_seconds(limits.max_decode_seconds or 0.0)}"
            )


def _decode_stream(
    container: av.container.InputContainer, stream: av.AudioStream, guard: _Guard
) -> Float32Array:
    # The output can never pass the duration limit, so it is written into one buffer of
    # that size (untouched pages cost no memory) instead of chunks joined at the end.
    seconds = guard.limits.max_seconds
    declared = _declared_seconds(container, stream)
    if declared is not None:  # a header may understate: the buffer then says so (413)
        seconds = min(seconds, declared + 1.0)
    limit = int(guard.limits.max_seconds * MODEL_RATE) + MODEL_RATE
    out = _Output(min(limit, int(seconds * MODEL_RATE) + MODEL_RATE), limit)
    resampler: StreamResampler | None = None
    in_rate = 0
    for frame in container.decode(stream):
        guard.frame(frame)
        samples = _frame_to_mono(frame)
        if samples.size == 0:
            continue
        rate = int(frame.sample_rate)
        if rate != in_rate:
            if resampler is not None:
                out.append(resampler.flush())
            resampler = StreamResampler(rate, MODEL_RATE, any_rate=True)
            in_rate = rate
        assert resampler is not None
        out.append(resampler.process(samples))
    if resampler is not None:
        out.append(resampler.flush())
    audio = out.samples()
    if audio.size == 0:
        raise InvalidAudio("the audio stream decoded to zero samples")
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio


class _Output:
    """A fixed-capacity float32 buffer filled in order."""

    def __init__(self, capacity: int, limit: int) -> None:
        self._buffer = np.empty(capacity, dtype=np.float32)
        self._size = 0
        self._limit = limit

    def append(self, samples: Float32Array) -> None:
        end = self._size + samples.size
        if end > self._buffer.size:  # the header understated the length: grow
            grown = np.empty(max(end, min(2 * self._buffer.size, self._limit)), np.float32)
            grown[: self._size] = self._buffer[: self._size]
            self._buffer = grown
        self._buffer[self._size : end] = samples
        self._size = end

    def samples(self) -> Float32Array:
        return self._buffer[: self._size]


_SCALES: dict[str, tuple[float, float]] = {
    # sample-format name without the planar "p": (offset, scale) to reach [-1, 1]
    "u8": (-128.0, 1.0 / 128.0),
    "s16": (0.0, 1.0 / 32768.0),
    "s32": (0.0, 1.0 / 2147483648.0),
    "s64": (0.0, 1.0 / 9223372036854775808.0),
    "flt": (0.0, 1.0),
    "dbl": (0.0, 1.0),
}


def _frame_to_mono(frame: av.AudioFrame) -> Float32Array:
    """One decoded frame as mono float32, whatever its sample format and layout."""
    name = frame.format.name
    base = name[:-1] if frame.format.is_planar else name
    if base not in _SCALES:
        raise InvalidAudio(f"unsupported sample format {name!r}")
    offset, scale = _SCALES[base]
    raw = frame.to_ndarray()
    channels = max(1, len(frame.layout.channels))
    planes = raw.reshape(channels, -1) if frame.format.is_planar else raw.reshape(-1, channels).T
    mixed = planes.astype(np.float64).mean(axis=0) if channels > 1 else planes[0]
    samples = np.asarray(mixed, dtype=np.float64)
    if offset:
        samples = samples + offset
    if scale != 1.0:
        samples = samples * scale
    return samples.astype(np.float32)


def _reason(exc: BaseException) -> str:
    """FFmpeg's short reason without the file name PyAV appends."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror).rstrip(".")
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _format_seconds(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
