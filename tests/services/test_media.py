"""decode_audio: every container and rate to mono 16 kHz float32, every failure a clear error."""

from __future__ import annotations

import io
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
import soxr

from tests import bombs, speech
from tests.speech import pcm16_wav_bytes
from voxwire.engine.errors import InvalidAudio, PayloadTooLarge
from voxwire.models.interfaces import SAMPLE_RATE
from voxwire.services.media import AudioLimits, DecodeCancelled, decode_audio

TEXT = speech.SENTENCES[0]


def encode(
    path: Path,
    channels: npt.NDArray[np.float32],
    rate: int,
    *,
    container: str,
    codec: str,
) -> Path:
    """Write (channels, samples) float audio with PyAV's muxer and encoder."""
    layout = "mono" if channels.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(channels, dtype=np.float32), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def reference(rate: int) -> npt.NDArray[np.float32]:
    """The known sentence at `rate`, and (for comparison) what 16 kHz should look like."""
    return speech.synthesize(TEXT, rate)


def similarity(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    n = min(a.size, b.size)
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("n_channels", [1, 2])
def test_wav_any_rate_and_layout(tmp_path: Path, rate: int, n_channels: int) -> None:
    source = reference(rate)
    path = encode(
        tmp_path / "a.wav",
        np.tile(source, (n_channels, 1)),
        rate,
        container="wav",
        codec="pcm_s16le",
    )
    audio = decode_audio(path)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    expected_samples = source.size * SAMPLE_RATE / rate
    assert abs(audio.size - expected_samples) <= 2
    expected = soxr.resample(source, rate, SAMPLE_RATE)
    assert similarity(audio, expected) > 0.999


def test_stereo_is_mixed_down_to_the_mean(tmp_path: Path) -> None:
    source = reference(SAMPLE_RATE)
    stereo = np.stack([source, np.zeros_like(source)])
    audio = decode_audio(encode(tmp_path / "s.wav", stereo, SAMPLE_RATE, container="wav",
                                codec="pcm_f32le"))  # fmt: skip
    np.testing.assert_allclose(audio, source / 2, atol=1e-6)


@pytest.mark.parametrize(
    ("suffix", "container", "codec", "rate", "n_channels", "min_similarity"),
    [
        ("flac", "flac", "flac", 44100, 1, 0.999),
        ("ogg", "ogg", "libopus", 48000, 2, 0.9),
        ("mp3", "mp3", "libmp3lame", 44100, 2, 0.9),
        ("m4a", "mp4", "aac", 22050, 1, 0.9),
        ("f32.wav", "wav", "pcm_f32le", 22050, 1, 0.999),
        ("s24.wav", "wav", "pcm_s24le", 48000, 2, 0.999),
        ("u8.wav", "wav", "pcm_u8", 16000, 1, 0.99),
    ],
)
def test_compressed_and_sample_formats(
    tmp_path: Path,
    suffix: str,
    container: str,
    codec: str,
    rate: int,
    n_channels: int,
    min_similarity: float,
) -> None:
    source = reference(rate)
    path = encode(
        tmp_path / f"a.{suffix}", np.tile(source, (n_channels, 1)), rate,
        container=container, codec=codec,
    )  # fmt: skip
    audio = decode_audio(path)
    duration = audio.size / SAMPLE_RATE
    # Lossy codecs may pad up to one codec frame (AAC: 1024 priming samples and more).
    assert duration == pytest.approx(source.size / rate, abs=0.1)
    expected = soxr.resample(source, rate, SAMPLE_RATE)
    rms = float(np.sqrt(np.mean(audio**2)))
    assert rms == pytest.approx(float(np.sqrt(np.mean(expected**2))), rel=0.15)
    assert float(np.max(np.abs(audio))) <= 1.0
    if container != "mp4":  # AAC adds priming samples that shift the signal
        assert similarity(audio, expected) > min_similarity


def test_path_bytes_and_file_object_agree(tmp_path: Path) -> None:
    path = encode(tmp_path / "a.flac", reference(22050)[None, :], 22050,
                  container="flac", codec="flac")  # fmt: skip
    data = path.read_bytes()
    from_path = decode_audio(path)
    np.testing.assert_array_equal(from_path, decode_audio(str(path)))
    np.testing.assert_array_equal(from_path, decode_audio(data))
    np.testing.assert_array_equal(from_path, decode_audio(bytearray(data)))
    with path.open("rb") as f:
        np.testing.assert_array_equal(from_path, decode_audio(f))


def test_colon_in_a_relative_name_is_not_a_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("http:x.wav").write_bytes(pcm16_wav_bytes(np.full(100, 0.25, np.float32)))
    assert decode_audio("http:x.wav").size == 100


def test_pcm16_wav_bytes_round_trip() -> None:
    source = reference(SAMPLE_RATE)
    data = pcm16_wav_bytes(source, SAMPLE_RATE)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    np.testing.assert_allclose(decode_audio(data), np.clip(source, -1, 1), atol=1 / 16000)


def test_pcm16_wav_bytes_at_another_rate_is_resampled() -> None:
    source = reference(24000)
    audio = decode_audio(pcm16_wav_bytes(source, 24000))
    assert audio.size == pytest.approx(source.size * 2 / 3, abs=2)


def assert_invalid(source: object, *words: str, **limits: float) -> str:
    with pytest.raises(InvalidAudio) as info:
        decode_audio(source, **limits)  # type: ignore[arg-type]
    message = info.value.message
    assert "\n" not in message and message
    for word in words:
        assert word in message.lower()
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert_invalid(tmp_path / "nope.wav", "not found")


def test_directory(tmp_path: Path) -> None:
    assert_invalid(tmp_path, "directory")


def test_empty_file_and_empty_bytes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert_invalid(empty, "empty")
    assert_invalid(b"", "empty")


def test_text_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not audio\n" * 50)
    assert_invalid(text)
    assert_invalid(text.read_bytes())


def test_corrupt_bytes() -> None:
    rng = np.random.default_rng(0)
    assert_invalid(rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes())


def test_wav_header_with_garbage_body() -> None:
    header = pcm16_wav_bytes(np.zeros(16, np.float32))[:12]
    assert_invalid(header + b"\xff" * 5000)


def test_video_only_file(tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 10)
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), i * 40, dtype=np.uint8), format="rgb24"
            )
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    assert "video" in assert_invalid(path, "no audio stream")


def test_audio_stream_without_samples(tmp_path: Path) -> None:
    data = pcm16_wav_bytes(np.zeros(0, np.float32))
    assert_invalid(data, "zero samples")


def test_too_many_bytes() -> None:
    data = pcm16_wav_bytes(reference(SAMPLE_RATE))
    with pytest.raises(PayloadTooLarge, match="bytes"):
        decode_audio(data, max_bytes=len(data) - 1)
    assert decode_audio(data, max_bytes=len(data)).size > 0


def test_too_many_seconds(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    path.write_bytes(pcm16_wav_bytes(np.zeros(SAMPLE_RATE * 3, np.float32)))
    with pytest.raises(PayloadTooLarge, match="longer"):
        decode_audio(path, max_seconds=2.0)
    assert decode_audio(path, max_seconds=3.0).size == SAMPLE_RATE * 3


def test_file_object_too_large() -> None:
    data = pcm16_wav_bytes(np.zeros(1000, np.float32))
    with pytest.raises(PayloadTooLarge):
        decode_audio(io.BytesIO(data), max_bytes=100)


# -- decompression bombs: limits on what decoding may produce ----------------------------

BOMB_LIMITS = AudioLimits(max_seconds=25 * 60.0)


def test_a_few_kib_declaring_hours_is_refused_from_the_header() -> None:
    bomb = bombs.low_rate()  # 27 KiB at 1 Hz: 3.8 hours
    with pytest.raises(PayloadTooLarge, match=r"declares 3\.84 h of audio, longer than"):
        decode_audio(bomb, limits=BOMB_LIMITS)


@pytest.mark.parametrize(
    ("bomb", "message"),
    [
        (bombs.high_rate, "sample rate 100000000 Hz is outside"),
        (lambda: bombs.wav(channels=64), "64 channels, more than the limit of 32"),
        (bombs.many_channels, "corrupt or undecodable"),  # FFmpeg refuses 4096 channels
    ],
)
def test_rates_and_channels_out_of_bounds_are_invalid(bomb: Any, message: str) -> None:
    with pytest.raises(InvalidAudio, match=message):
        decode_audio(bomb(), limits=BOMB_LIMITS)


def test_a_flac_of_silence_is_refused_by_its_header_or_while_decoding() -> None:
    declared = bombs.flac_of_silence(30 * 60)
    with pytest.raises(PayloadTooLarge, match="declares 30 min"):
        decode_audio(declared, limits=BOMB_LIMITS)
    hidden = bombs.flac_of_silence(30 * 60, hide_length=True)
    with pytest.raises(PayloadTooLarge, match="longer than the limit of 25 min"):
        decode_audio(hidden, limits=BOMB_LIMITS)


def test_decoding_stops_at_its_deadline_and_when_cancelled() -> None:
    audio = bombs.flac_of_silence(60, hide_length=True)
    slow = AudioLimits(max_decode_seconds=1e-9)
    with pytest.raises(PayloadTooLarge, match="decoding the audio took longer"):
        decode_audio(audio, limits=slow)
    stop = threading.Event()
    stop.set()
    with pytest.raises(DecodeCancelled):
        decode_audio(audio, cancelled=stop)
    assert decode_audio(audio).size == 60 * SAMPLE_RATE
