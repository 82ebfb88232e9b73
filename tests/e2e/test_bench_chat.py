"""`voxwire bench chat`, run as the installed console script (figures are not judged)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.console import run

pytestmark = pytest.mark.slow


def test_bench_chat_measures_the_embedded_chat_model(tmp_path: Path) -> None:
    out = tmp_path / "chat.json"
    result = run("bench", "chat", "--repeats", "1", "--max-tokens", "8", "-o", out, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "voxwire bench chat" in result.stdout
    data = json.loads(out.read_text())
    assert data["repeats"] == 1 and data["machine"]["cpu_count"] >= 1
    (row,) = data["results"]
    assert row["model"] == "smollm2-135m-instruct" and row["backend"] == "gguf"
    assert row["prompt_tokens"] > 30 and 0 < row["tokens"] <= 8
    assert row["ttft_s"] > 0 and row["tokens_per_s"] > 0
