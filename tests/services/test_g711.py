"""G.711 through PyAV: a round trip keeps speech within the codec's quantisation, and
known code points decode as the standard says."""

from __future__ import annotations

import numpy as np
import pytest

from voxwire.services.g711 import decode, encode


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
def test_round_trip_within_quantisation(fmt: str) -> None:
    pcm = (np.sin(np.arange(8000) / 7) * 12000).astype("<i2")
    coded = encode(pcm.tobytes(), fmt)  # type: ignore[arg-type]
    assert len(coded) == len(pcm)  # one byte per sample
    back = np.frombuffer(decode(coded, fmt), dtype="<i2")  # type: ignore[arg-type]
    assert len(back) == len(pcm)
    # 8-bit logarithmic coding: error under ~3 % of the magnitude (plus a step near 0).
    assert np.all(np.abs(back.astype(int) - pcm) <= np.abs(pcm) * 0.035 + 40)
    # Any split decodes the same (each byte is one sample).
    halves = decode(coded[:333], fmt) + decode(coded[333:], fmt)  # type: ignore[arg-type]
    assert halves == decode(coded, fmt)  # type: ignore[arg-type]


def test_standard_code_points() -> None:
    # mu-law 0xFF and A-law 0xD5 are the codes for silence (0 / +8).
    assert np.frombuffer(decode(b"\xff", "audio/pcmu"), "<i2")[0] == 0
    assert abs(int(np.frombuffer(decode(b"\xd5", "audio/pcma"), "<i2")[0])) <= 8
    assert encode(b"", "audio/pcmu") == b"" and decode(b"", "audio/pcma") == b""
