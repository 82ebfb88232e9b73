"""`voxwire bench chat`, run as the installed console script (figures are not judged):
the embedded cascade and a native audio LLM given with `--chat-model` (a tiny random
Qwen2-Audio built here: its figures say nothing about a real model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.console import run
from tests.tiny_audio_llms import build_qwen2_audio

pytestmark = pytest.mark.slow


def test_bench_chat_measures_the_cascade_and_a_native_model(tmp_path: Path) -> None:
    tiny = build_qwen2_audio(tmp_path / "tiny-qwen2-audio")
    out = tmp_path / "chat.json"
    result = run(
        "bench", "chat", "--repeats", "1", "--max-tokens", "8", "--chat-model", tiny, "-o", out,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "voxwire bench chat" in result.stdout
    data = json.loads(out.read_text())
    assert data["repeats"] == 1 and data["machine"]["cpu_count"] >= 1
    assert data["audio_seconds"] > 1
    rows = {row["model"]: row for row in data["results"]}
    cascade, native = rows["smollm2-135m-instruct"], rows["tiny-qwen2-audio"]
    assert cascade["backend"] == "cascade (gguf)" and native["backend"] == "native audio"
    assert cascade["prompt_tokens"] > 30 and 0 < cascade["tokens"] <= 8
    assert cascade["asr_s"] > 0 and cascade["ttft_s"] > cascade["asr_s"]
    assert native["asr_s"] == 0 and native["tokens"] == 8  # no end token: runs to max
    assert native["prompt_tokens"] > 50  # the speech's audio tokens
    for row in (cascade, native):
        assert row["ttft_s"] > 0 and row["tokens_per_s"] > 0
