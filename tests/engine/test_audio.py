import numpy as np
import pytest

from voxwire.engine.audio import (
    SUPPORTED_INPUT_RATES,
    StreamResampler,
    as_mono_float32,
    float32_to_pcm16,
    pcm16_to_float32,
)
from voxwire.engine.errors import InvalidAudio, UnsupportedSampleRate


def test_pcm16_round_trip_is_exact_for_pcm16_values() -> None:
    pcm = np.array([-32768, -1, 0, 1, 12345, 32767], dtype="<i2").tobytes()
    assert float32_to_pcm16(pcm16_to_float32(pcm)) == pcm


def test_float32_to_pcm16_clips_out_of_range() -> None:
    out = np.frombuffer(float32_to_pcm16(np.array([2.0, -2.0], dtype=np.float32)), dtype="<i2")
    assert out.tolist() == [32767, -32768]


def test_odd_byte_count_is_a_clear_error() -> None:
    with pytest.raises(InvalidAudio, match="even number of bytes"):
        pcm16_to_float32(b"\x00\x01\x02")


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 10), dtype=np.float32), np.array([np.nan], dtype=np.float32)]
)
def test_bad_sample_arrays_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(InvalidAudio):
        as_mono_float32(bad)


@pytest.mark.parametrize("rate", SUPPORTED_INPUT_RATES)
def test_resampler_gives_16k_with_same_duration_and_pitch(rate: int) -> None:
    seconds = 1.0
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    resampler = StreamResampler(rate)
    chunks = [resampler.process(tone[i : i + 777]) for i in range(0, len(tone), 777)]
    out = np.concatenate([*chunks, resampler.flush()])
    assert abs(len(out) - 16_000) <= 2
    spectrum = np.abs(np.fft.rfft(out[2000:14000]))
    peak_hz = np.argmax(spectrum) * 16_000 / len(out[2000:14000])
    assert abs(peak_hz - 440.0) < 3.0


def test_resampler_is_stateful_across_chunks() -> None:
    rate = 48_000
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 300.0 * t)).astype(np.float32)
    whole = StreamResampler(rate)
    one = np.concatenate([whole.process(tone), whole.flush()])
    split = StreamResampler(rate)
    parts = np.concatenate(
        [split.process(tone[i : i + 480]) for i in range(0, len(tone), 480)] + [split.flush()]
    )
    assert len(one) == len(parts)
    # No clicks at chunk borders: chunked output matches one-shot output.
    np.testing.assert_allclose(one, parts, atol=1e-4)


def test_unsupported_rate_is_named() -> None:
    with pytest.raises(UnsupportedSampleRate, match="11025"):
        StreamResampler(11_025)
