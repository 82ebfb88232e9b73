"""G.711 telephony audio (8 kHz mu-law `audio/pcmu` and A-law `audio/pcma`) to and from
PCM16, with PyAV's `pcm_mulaw` / `pcm_alaw` codecs. Each sample is one byte and coded on
its own, so any chunking gives the same result."""

from __future__ import annotations

from typing import Final, Literal

import av
import numpy as np

G711Format = Literal["audio/pcmu", "audio/pcma"]
G711_RATE: Final = 8_000
_CODECS: Final[dict[str, str]] = {"audio/pcmu": "pcm_mulaw", "audio/pcma": "pcm_alaw"}


def _context(fmt: G711Format, mode: Literal["r", "w"]) -> av.AudioCodecContext:
    context = av.CodecContext.create(_CODECS[fmt], mode)
    assert isinstance(context, av.AudioCodecContext)
    context.sample_rate = G711_RATE
    context.layout = "mono"
    if mode == "w":
        context.format = "s16"
    return context


def encode(pcm16: bytes, fmt: G711Format) -> bytes:
    """PCM16 LE mono at 8 kHz -> G.711 bytes (one per sample)."""
    if not pcm16:
        return b""
    context = _context(fmt, "w")
    frame = av.AudioFrame.from_ndarray(
        np.frombuffer(pcm16, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = G711_RATE
    return b"".join(bytes(p) for p in [*context.encode(frame), *context.encode(None)])


def decode(data: bytes, fmt: G711Format) -> bytes:
    """G.711 bytes -> PCM16 LE mono at 8 kHz."""
    if not data:
        return b""
    frames = _context(fmt, "r").decode(av.Packet(data))
    return b"".join(f.to_ndarray().astype("<i2").tobytes() for f in frames)
