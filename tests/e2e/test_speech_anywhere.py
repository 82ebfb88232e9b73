"""`python -m tests.speech` and `python -m tests.corpus` run from any directory, not only
the repository root (make setup maps the name `tests` to this checkout's folder)."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import tests


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_tests_speech_writes_a_wav_from_another_directory(tmp_path: Path) -> None:
    result = _run(tmp_path, "-m", "tests.speech", "hello.wav", "Hello there.")
    assert result.returncode == 0, result.stderr
    with wave.open(str(tmp_path / "hello.wav")) as wav:
        assert wav.getframerate() == 16_000 and wav.getnframes() > 16_000 // 2


def test_the_tests_package_is_this_checkouts_from_anywhere(tmp_path: Path) -> None:
    result = _run(tmp_path, "-c", "import tests; print(tests.__file__)")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == Path(tests.__file__).resolve()
    assert _run(tmp_path, "-m", "tests.corpus", "--help").returncode == 0
