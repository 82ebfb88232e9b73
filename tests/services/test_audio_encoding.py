"""StreamingEncoder: every speech format, fed in chunks, decodes back at 24 kHz with the
input's duration; bytes come out chunk by chunk, not only at the end."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import numpy.typing as npt
import pytest

from tests import speech
from voxwire.services import g711
from voxwire.services.audio_encoding import (
    G711,
    OUTPUT_RATE,
    PRIMING_SAMPLES,
    AudioFormat,
    StreamingEncoder,
    streaming_wav_header,
)

PIPER_RATE = 22_050
TOLERANCE_S = 0.05


def tone(seconds: float, rate: int, hz: float = 440.0) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


FILE_FORMATS = [f for f in AudioFormat if f not in G711]
"""OpenAI's formats, at 24 kHz."""


def encode(fmt: AudioFormat, chunks: list[npt.NDArray[np.float32]], rate: int) -> list[bytes]:
    """The bytes each feed returned, then those of finish()."""
    encoder = StreamingEncoder(fmt, input_rate=rate)
    return [encoder.feed(c) for c in chunks] + [encoder.finish()]


def decode(data: bytes, fmt: AudioFormat) -> tuple[int, npt.NDArray[np.float32]]:
    """(rate, mono float32 samples) as PyAV decodes the file."""
    options = {"sample_rate": str(OUTPUT_RATE), "ch_layout": "mono"}
    kwargs = {"format": "s16le", "options": options} if fmt is AudioFormat.PCM else {}
    with av.open(io.BytesIO(data), **kwargs) as container:  # type: ignore[call-overload]
        stream = container.streams.audio[0]
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        rate = int(stream.codec_context.sample_rate)
    return rate, np.concatenate(frames).astype(np.float32)


def expected_seconds(fmt: AudioFormat, input_seconds: float) -> float:
    return input_seconds + PRIMING_SAMPLES.get(fmt, 0) / OUTPUT_RATE


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_tone_in_chunks_decodes_at_24k_with_its_duration(fmt: AudioFormat) -> None:
    chunks = [tone(s, PIPER_RATE) for s in (0.8, 1.3, 0.45)]
    pieces = encode(fmt, chunks, PIPER_RATE)
    rate, audio = decode(b"".join(pieces), fmt)

    # Opus always decodes at 48 kHz; its header records the 24 kHz input rate.
    assert rate == (48_000 if fmt is AudioFormat.OPUS else OUTPUT_RATE)
    assert abs(len(audio) / rate - expected_seconds(fmt, 2.55)) <= TOLERANCE_S
    assert sum(1 for p in pieces[:-1] if p) >= 2, "bytes should leave chunk by chunk"
    # The tone survives: its dominant frequency is still 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * rate / len(audio) - 440) < 5


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_speech_round_trip(fmt: AudioFormat) -> None:
    chunks = [speech.synthesize(text, PIPER_RATE) for text in speech.SENTENCES[:2]]
    seconds = sum(len(c) for c in chunks) / PIPER_RATE
    rate, audio = decode(b"".join(encode(fmt, chunks, PIPER_RATE)), fmt)
    assert abs(len(audio) / rate - expected_seconds(fmt, seconds)) <= TOLERANCE_S
    assert float(np.sqrt(np.mean(audio**2))) > 0.05, "speech should not decode to silence"


def test_opus_header_records_24k() -> None:
    data = b"".join(encode(AudioFormat.OPUS, [tone(0.5, PIPER_RATE)], PIPER_RATE))
    head = data.index(b"OpusHead")
    assert struct.unpack("<I", data[head + 12 : head + 16])[0] == OUTPUT_RATE


def test_wav_and_pcm_are_exact_pcm16() -> None:
    audio = tone(0.3, OUTPUT_RATE)
    pcm = b"".join(encode(AudioFormat.PCM, [audio], OUTPUT_RATE))
    wav = b"".join(encode(AudioFormat.WAV, [audio], OUTPUT_RATE))
    assert len(pcm) == 2 * audio.size
    assert wav == streaming_wav_header() + pcm
    assert wav[4:8] == b"\xff\xff\xff\xff" and wav[40:44] == b"\xff\xff\xff\xff"
    decoded = np.frombuffer(pcm, "<i2") / 32767.0
    assert np.max(np.abs(decoded - audio)) < 1e-4


def test_empty_stream_is_a_valid_header_only_file() -> None:
    assert encode(AudioFormat.WAV, [], OUTPUT_RATE) == [streaming_wav_header()]
    assert encode(AudioFormat.PCM, [], OUTPUT_RATE) == [b""]
    flac = b"".join(encode(AudioFormat.FLAC, [], OUTPUT_RATE))
    assert flac.startswith(b"fLaC")


def test_feed_after_finish_is_refused() -> None:
    encoder = StreamingEncoder(AudioFormat.MP3, input_rate=OUTPUT_RATE)
    encoder.finish()
    assert encoder.finish() == b""
    with pytest.raises(RuntimeError):
        encoder.feed(tone(0.1, OUTPUT_RATE))


@pytest.mark.parametrize("fmt", list(G711))
def test_g711_speech_is_one_byte_per_8k_sample_and_decodes(fmt: AudioFormat) -> None:
    chunks = [speech.synthesize(text, PIPER_RATE) for text in speech.SENTENCES[:2]]
    seconds = sum(len(c) for c in chunks) / PIPER_RATE
    encoder = StreamingEncoder(fmt, input_rate=PIPER_RATE)
    assert encoder.output_rate == 8000
    data = b"".join([encoder.feed(c) for c in chunks] + [encoder.finish()])
    assert abs(len(data) / 8000 - seconds) <= TOLERANCE_S
    audio = np.frombuffer(g711.decode(data, G711[fmt]), "<i2") / 32768.0
    assert float(np.sqrt(np.mean(audio**2))) > 0.05, "speech should not decode to silence"
