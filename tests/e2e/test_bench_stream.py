"""`voxwire bench stream`, run as the installed console script against the server it spawns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import speech
from tests.e2e.console import run, wer
from voxwire.transports.bench.stream import default_levels, parse_levels, percentiles


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.mark.slow
def test_bench_stream_two_levels(three_sentences_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "stream.json"
    result = run(
        "bench",
        "stream",
        "--file",
        three_sentences_wav,
        "--streams",
        "2",
        "--levels",
        "1,2",
        "--output",
        out,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "voxwire bench stream" in result.stdout
    assert "final p50/p90/p95/p99 ms" in result.stdout
    assert "max streams with p95 final latency" in result.stdout
    assert "stream 0 transcript:" in result.stdout

    data = json.loads(out.read_text())
    assert data["machine"]["cpu_count"] >= 1
    assert data["machine"]["platform"]
    assert data["audio_seconds"] > 5
    assert data["server"]["spawned"] is True
    assert [level["streams"] for level in data["levels"]] == [1, 2]
    for level in data["levels"]:
        n = level["streams"]
        assert level["utterances_per_stream"] == [3] * n, level
        assert level["utterances"] == 3 * n
        assert level["completed"] == 3 * n
        assert level["failed"] == 0
        for key in ("p50", "p90", "p95", "p99"):
            assert _is_number(level["final_latency_ms"][key]), level
            assert _is_number(level["first_delta_latency_ms"][key]), level
        assert level["audio_dropped_ms"] == 0
        assert level["transcriptions_failed"] == 0
        assert level["stats_missing"] == 0
        assert _is_number(level["rtf"]["mean"]) and _is_number(level["max_send_lag_ms"])
    assert "max_streams_p95_final_under_500ms" in data["summary"]
    assert wer(" ".join(speech.SENTENCES), data["transcript"]) <= 0.15, data["transcript"]


def test_default_levels_ladder() -> None:
    assert default_levels(1) == [1]
    assert default_levels(8) == [1, 2, 4, 8]
    assert default_levels(10) == [1, 2, 4, 8, 10]
    assert default_levels(16) == [1, 2, 4, 8, 12, 16]
    assert parse_levels(None, 4) == [1, 2, 4]
    assert parse_levels("4, 1,2,2", 16) == [1, 2, 4]
    with pytest.raises(ValueError):
        parse_levels("1,x", 4)
    with pytest.raises(ValueError):
        parse_levels("0", 4)


def test_percentiles_of_nothing_are_none() -> None:
    assert percentiles([]) == {"p50": None, "p90": None, "p95": None, "p99": None, "max": None}
    figures = percentiles([10.0])
    assert figures["p50"] == figures["p99"] == figures["max"] == 10.0
