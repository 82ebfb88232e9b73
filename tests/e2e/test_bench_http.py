"""`voxwire bench http`, run as the installed console script against the server it spawns."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import speech
from tests.e2e.console import bench, is_number, run, wer
from voxwire.transports.bench.http import http_base, summarise
from voxwire.transports.bench.stream import BenchError


@pytest.mark.slow
def test_bench_http_small_run(one_sentence_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    stdout, data = bench(
        "http",
        "--file",
        one_sentence_wav,
        "--concurrency",
        "1,2",
        "--requests",
        "2",
        "--speech-requests",
        "2",
        "--text",
        "The quick brown fox jumps over the lazy dog. Please turn on the lights.",
        output=out,
    )
    assert "voxwire bench http: /v1/audio/transcriptions" in stdout
    assert "voxwire bench http: /v1/audio/speech" in stdout
    assert "best transcription throughput" in stdout

    assert data["server"]["spawned"] is True
    assert data["audio_seconds"] > 1
    assert data["machine"]["cpu_count"] >= 1
    levels = data["transcription"]["levels"]
    assert [level["concurrency"] for level in levels] == [1, 2]
    for level in levels:
        assert level["requests"] == 2 and level["ok"] == 2 and level["failed"] == 0, level
        assert level["audio_seconds_per_second"] > 0
        for key in ("p50", "p95", "max"):
            assert is_number(level["latency_ms"][key])
    assert wer(speech.SENTENCES[0], data["transcription"]["transcript"]) <= 0.15
    formats = data["speech"]["formats"]
    assert [f["format"] for f in formats] == ["pcm", "mp3"]
    for figures in formats:
        assert figures["requests"] == 2 and figures["bytes_mean"] > 0
        assert 0 < figures["ttfb_ms"]["p50"] <= figures["total_ms"]["p50"]
        assert is_number(figures["ttfb_ms"]["p95"]) and is_number(figures["total_ms"]["p95"])
    pcm = formats[0]
    assert pcm["audio_seconds"] > 2  # two sentences of 24 kHz PCM16
    assert data["summary"]["at_concurrency"] in (1, 2)


def test_bench_http_against_no_server_fails_in_one_line(one_sentence_wav: Path) -> None:
    result = run(
        "bench", "http", "--file", one_sentence_wav, "--url", "http://127.0.0.1:9", timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("voxwire: error: cannot reach http://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1


def test_urls_and_summary() -> None:
    assert http_base("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000"
    assert http_base("ws://h:1/v1/realtime?intent=transcription") == "http://h:1"
    with pytest.raises(BenchError):
        http_base("ftp://h")
    levels = [
        {"concurrency": 1, "ok": 2, "failed": 0, "audio_seconds_per_second": 5.0},
        {"concurrency": 2, "ok": 2, "failed": 0, "audio_seconds_per_second": 7.0},
        {"concurrency": 4, "ok": 1, "failed": 1, "audio_seconds_per_second": 9.0},
    ]
    assert summarise(levels) == {"best_audio_seconds_per_second": 7.0, "at_concurrency": 2}
    assert summarise([])["at_concurrency"] is None
