"""`voxwire ask FILE "question"`, run as the installed console script on real speech."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import corpus
from tests.e2e.console import run

pytestmark = pytest.mark.slow


def test_ask_answers_from_what_was_said() -> None:
    jfk = corpus.ensure(corpus.JFK_SOURCES)["jfk.wav"]
    result = run("ask", jfk, "What did the speaker say?", "--max-tokens", "40", timeout=300)
    assert result.returncode == 0, result.stderr
    answer = result.stdout.lower().replace(",", "")
    assert "what your country can do for you" in answer, result.stdout


def test_ask_refuses_a_file_that_is_not_audio(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    result = run("ask", bad, "What was said?")
    assert result.returncode == 1 and "voxwire: error:" in result.stderr
    assert "Traceback" not in result.stderr
