"""Streaming audio encoders for synthesised speech: float32 chunks in, file bytes out.

A :class:`StreamingEncoder` is fed mono float32 chunks (one per synthesised
sentence) at the synthesiser's rate, resamples them with one stateful soxr
resampler to :data:`OUTPUT_RATE` (OpenAI's 24 kHz), and returns the bytes of the
output file that are ready after each chunk, so a response can stream them at
once. The formats are OpenAI's speech formats:

======  =========================================  ===========================
format  bytes                                      priming decoders play first
======  =========================================  ===========================
mp3     MPEG-2 layer III frames (libmp3lame)       about 46 ms (see below)
opus    Ogg Opus (libopus; decoders output 48 kHz)  none (pre-skip is signalled)
aac     AAC-LC in ADTS                             about 43 ms (see below)
flac    FLAC                                       none
wav     RIFF PCM16 with unknown (0xFFFFFFFF) sizes  none
pcm     raw PCM16 little-endian, no header          none
pcmu    raw 8 kHz G.711 mu-law (voxwire's own)      none
pcma    raw 8 kHz G.711 A-law (voxwire's own)       none
======  =========================================  ===========================

OpenAI's endpoint has no telephony format; ``pcmu`` and ``pcma`` are voxwire's
extension, one byte per 8 kHz sample, named after the Realtime API's
``audio/pcmu`` and ``audio/pcma``.

A streamed mp3 or ADTS file cannot carry gapless metadata (it would have to be
written before the audio whose length it describes), so decoders play the
codec's priming samples (:data:`PRIMING_SAMPLES`) before the speech and round
the end up to a whole codec frame. Pure CPU work: run it off the event loop.
"""

from __future__ import annotations

import struct
from enum import StrEnum
from typing import Final

import av
import numpy as np
import numpy.typing as npt

from voxwire.engine.audio import StreamResampler
from voxwire.services import g711
from voxwire.services.g711 import G711_RATE, G711Format

OUTPUT_RATE: Final = 24_000
"""The rate of every encoded output, as OpenAI's speech endpoint."""

Float32Array = npt.NDArray[np.float32]


class AudioFormat(StrEnum):
    """OpenAI's `response_format` values of `/v1/audio/speech`."""

    MP3 = "mp3"
    OPUS = "opus"
    AAC = "aac"
    FLAC = "flac"
    WAV = "wav"
    PCM = "pcm"
    PCMU = "pcmu"
    PCMA = "pcma"


MEDIA_TYPES: Final[dict[AudioFormat, str]] = {
    AudioFormat.MP3: "audio/mpeg",
    AudioFormat.OPUS: "audio/ogg; codecs=opus",
    AudioFormat.AAC: "audio/aac",
    AudioFormat.FLAC: "audio/flac",
    AudioFormat.WAV: "audio/wav",
    AudioFormat.PCM: "audio/pcm",
    AudioFormat.PCMU: "audio/PCMU",
    AudioFormat.PCMA: "audio/PCMA",
}
"""The Content-Type of each format."""

PRIMING_SAMPLES: Final[dict[AudioFormat, int]] = {
    AudioFormat.MP3: 576 + 529,  # LAME's encoder delay plus the decoder's
    AudioFormat.AAC: 1024,
}
"""Samples at OUTPUT_RATE a decoder plays before the first input sample (0 if absent)."""

# (container, codec, bit rate) of the formats PyAV encodes.
_PYAV: Final[dict[AudioFormat, tuple[str, str, int]]] = {
    AudioFormat.MP3: ("mp3", "libmp3lame", 64_000),
    AudioFormat.OPUS: ("ogg", "libopus", 32_000),
    AudioFormat.AAC: ("adts", "aac", 64_000),
    AudioFormat.FLAC: ("flac", "flac", 0),
}


G711: Final[dict[AudioFormat, G711Format]] = {
    AudioFormat.PCMU: "audio/pcmu",
    AudioFormat.PCMA: "audio/pcma",
}
"""The telephony formats, always at G711_RATE."""


class _Collector:
    """A write-only file for PyAV's muxer; what it wrote is taken out after each step."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def seekable(self) -> bool:
        return False

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def pcm16(samples: Float32Array) -> bytes:
    """Float samples in [-1, 1] as PCM16 little-endian bytes."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return bytes((clipped * 32767.0).round().astype("<i2").tobytes())


def streaming_wav_header(rate: int = OUTPUT_RATE) -> bytes:
    """A mono PCM16 WAV header whose RIFF and data sizes are 0xFFFFFFFF (unknown)."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


class _PyAvSink:
    """One PyAV output container with one mono audio stream."""

    def __init__(self, fmt: AudioFormat, rate: int) -> None:
        container_format, codec, bit_rate = _PYAV[fmt]
        self._file = _Collector()
        self._container = av.open(self._file, mode="w", format=container_format)
        stream = self._container.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        if bit_rate:
            stream.bit_rate = bit_rate
        self._stream = stream
        self._rate = rate
        self._pts = 0

    def write(self, samples: Float32Array) -> bytes:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += samples.size
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._file.take()

    def close(self) -> bytes:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._file.take()


class StreamingEncoder:
    """Encode a stream of float32 chunks into one file of `fmt`, chunk by chunk.

    Call :meth:`feed` with each chunk and send what it returns; call
    :meth:`finish` once at the end for the last bytes (the codec's flush).
    """

    def __init__(
        self, fmt: AudioFormat | str, *, input_rate: int, output_rate: int | None = None
    ) -> None:
        """`output_rate`: OUTPUT_RATE unless given; G.711 is always 8 kHz."""
        self.format = AudioFormat(fmt)
        self.input_rate = input_rate
        if self.format in G711:
            output_rate = G711_RATE
        self.output_rate = output_rate = output_rate or OUTPUT_RATE
        self.samples_out = 0
        """Samples at `output_rate` handed to the codec so far."""
        self._resampler = StreamResampler(input_rate, output_rate, any_rate=True)
        self._sink = _PyAvSink(self.format, output_rate) if self.format in _PYAV else None
        self._header = streaming_wav_header(output_rate) if self.format is AudioFormat.WAV else b""
        self._finished = False

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    def feed(self, samples: Float32Array) -> bytes:
        """Encode the next chunk; returns the bytes ready so far (may be empty)."""
        if self._finished:
            raise RuntimeError("the encoder is finished")
        chunk = self._resampler.process(np.asarray(samples, dtype=np.float32).reshape(-1))
        return self._header_once() + self._encode(chunk)

    def finish(self) -> bytes:
        """Flush the resampler and the codec; returns the last bytes of the file."""
        if self._finished:
            return b""
        tail = self._encode(self._resampler.flush())
        self._finished = True
        closing = self._sink.close() if self._sink is not None else b""
        return self._header_once() + tail + closing

    def _header_once(self) -> bytes:
        header, self._header = self._header, b""
        return header

    def _encode(self, chunk: Float32Array) -> bytes:
        if chunk.size == 0:
            return b""
        self.samples_out += chunk.size
        if self._sink is not None:
            return self._sink.write(np.ascontiguousarray(chunk, dtype=np.float32))
        if self.format in G711:
            return g711.encode(pcm16(chunk), G711[self.format])
        return pcm16(chunk)
