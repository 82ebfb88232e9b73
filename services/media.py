"""Decode any audio file or upload to mono float32 at 16 kHz.

PyAV demuxes and decodes (any container and codec the bundled FFmpeg knows);
channels are mixed down and samples converted to float here; soxr resamples.
Decoding streams frame by frame, so a large file is never held twice: only the
resampled 16 kHz output accumulates. Every failure becomes
:class:`~voxwire.engine.errors.InvalidAudio` (or :class:`~voxwire.engine.errors.PayloadTooLarge`)
with a one-line message that is safe to show to whoever sent the audio.
"""

from __future__ import annotations

import io
import os
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

AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
"""A path, the encoded bytes themselves, or a seekable binary file object."""

Float32Array = npt.NDArray[np.float32]


def decode_audio(
    source: AudioSource,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> Float32Array:
    """Decode the first audio stream of `source` to mono float32 in [-1, 1] at 16 kHz.

    Raises InvalidAudio for a missing, empty, corrupt or audio-less input and
    PayloadTooLarge when it is larger than `max_bytes` or longer than `max_seconds`.
    """
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
    return _decode(opened, max_seconds)


def _check_size(size: int, max_bytes: int) -> None:
    if size == 0:
        raise InvalidAudio("empty file (0 bytes)")
    if size > max_bytes:
        raise PayloadTooLarge(f"audio is {size} bytes, more than the limit of {max_bytes} bytes")


def _decode(opened: str | IO[bytes], max_seconds: float) -> Float32Array:
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
        return _decode_stream(container, container.streams.audio[0], max_seconds)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidAudio(f"corrupt or undecodable audio ({_reason(exc)})") from None
    finally:
        container.close()


def _decode_stream(
    container: av.container.InputContainer, stream: av.AudioStream, max_seconds: float
) -> Float32Array:
    out: list[Float32Array] = []
    resampler: StreamResampler | None = None
    in_rate = 0
    seconds = 0.0
    for frame in container.decode(stream):
        samples = _frame_to_mono(frame)
        if samples.size == 0:
            continue
        rate = int(frame.sample_rate)
        if rate <= 0:
            raise InvalidAudio("audio stream has no sample rate")
        seconds += samples.size / rate
        if seconds > max_seconds + 1e-9:
            raise PayloadTooLarge(
                f"audio is longer than the limit of {_format_seconds(max_seconds)}"
            )
        if rate != in_rate:
            if resampler is not None:
                out.append(resampler.flush())
            resampler = StreamResampler(rate, MODEL_RATE, any_rate=True)
            in_rate = rate
        assert resampler is not None
        out.append(resampler.process(samples))
    if resampler is not None:
        out.append(resampler.flush())
    audio = np.concatenate(out) if out else np.zeros(0, np.float32)
    if audio.size == 0:
        raise InvalidAudio("the audio stream decoded to zero samples")
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio


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
