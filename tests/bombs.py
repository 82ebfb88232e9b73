"""Decompression bombs: a few KiB of audio file that declare, or decode to, hours.

Each shape is a small bytes object built here (nothing is fetched), for the media
decoder's tests and the HTTP endpoints' tests alike.
"""

from __future__ import annotations

import io
import struct

import av
import numpy as np

BODY_BYTES = 27 * 1024
"""The size of the probe's bomb: 27 KiB of samples."""


def wav(
    *,
    rate: int = 16_000,
    channels: int = 1,
    body: int = BODY_BYTES,
    declared_data: int | None = None,
) -> bytes:
    """A PCM16 WAV of `body` bytes of quiet noise whose header states `declared_data`
    bytes of data (default: the truth) at `rate` Hz and `channels` channels. (FFmpeg
    trusts the file's size over a larger stated data size, so that alone is no bomb.)"""
    samples = np.random.default_rng(0).integers(-64, 64, body // 2, dtype=np.int16)
    data = samples.tobytes()
    size = len(data) if declared_data is None else declared_data
    block = 2 * channels
    header = b"RIFF" + struct.pack("<I", min(0xFFFFFFFF, 36 + size)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
    header += b"data" + struct.pack("<I", min(0xFFFFFFFF, size))
    return header + data


def low_rate() -> bytes:
    """27 KiB at 1 Hz: 3.8 hours, 221 M samples once resampled to 16 kHz."""
    return wav(rate=1)


def high_rate() -> bytes:
    """27 KiB declared at 100 MHz (a resampling filter 6,250 times longer than usual)."""
    return wav(rate=100_000_000)


def many_channels() -> bytes:
    """27 KiB declared as 4,096 channels."""
    return wav(channels=4096)


def flac_of_silence(seconds: float, *, rate: int = 8_000, hide_length: bool = False) -> bytes:
    """`seconds` of digital silence as FLAC (a few KiB: silence compresses to nothing);
    `hide_length` zeroes STREAMINFO's total-samples field, so only decoding finds out."""
    out = io.BytesIO()
    with av.open(out, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        stream.codec_context.options = {"compression_level": "0"}
        block = rate * 10
        silence = np.zeros((1, block), dtype=np.int16)
        for _ in range(int(seconds * rate) // block):
            frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = bytearray(out.getvalue())
    if hide_length:
        # fLaC, a 4-byte block header, then STREAMINFO: the 36-bit total sample count
        # is the low 4 bits of byte 13 and bytes 14-17 of the block.
        start = 4 + 4
        data[start + 13] &= 0xF0
        data[start + 14 : start + 18] = b"\0\0\0\0"
    return bytes(data)
