"""`voxwire bench stream`, run as the installed console script against the server it spawns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import speech
from tests.e2e.console import bench, is_number, wer
from voxwire.transports.bench.stream import percentiles


def _nonnegative(figures: dict[str, Any], keys: tuple[str, ...] = ("p50", "p95")) -> bool:
    return all(is_number(figures[key]) and figures[key] >= 0 for key in keys)


@pytest.mark.slow
def test_bench_stream_two_levels(three_sentences_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "stream.json"
    reference = tmp_path / "reference.txt"
    reference.write_text(" ".join(speech.SENTENCES) + "\n")
    stdout, data = bench(
        "stream",
        "--file",
        three_sentences_wav,
        "--reference",
        reference,
        "--levels",
        "1,2",
        output=out,
    )
    assert "voxwire bench stream" in stdout
    for column in ("WER stream/offline", "end->stable p50/p95 ms", "end->any p50/p95 ms"):
        assert column in stdout
    assert "final p50/p95/p99 ms" in stdout
    assert "WER against the --reference text" in stdout
    assert "max streams with p95 final latency" in stdout
    assert "stream 0 transcript:" in stdout
    assert "offline transcript:" in stdout

    assert data["machine"]["cpu_count"] >= 1
    assert data["machine"]["platform"]
    assert data["audio_seconds"] > 5
    assert data["server"]["spawned"] is True
    assert data["pace"] == 1.0 and data["stagger"] == "in phase"
    assert data["wer_against"] == "reference"
    offline = data["offline"]
    assert 0 <= offline["wer"] <= 0.15, offline
    assert offline["words"] > 10 and offline["wall_seconds"] > 0
    # Three sentences with a second of silence between them: three phrase ends at least,
    # each with its last word.
    ends = data["phrase_ends"]
    assert ends["with_word"] >= 3 and ends["found"] >= ends["with_word"]
    assert all(end["last_word"] for end in ends["ends"])
    assert [level["streams"] for level in data["levels"]] == [1, 2]
    for level in data["levels"]:
        n = level["streams"]
        assert level["utterances_per_stream"] == [3] * n, level
        assert level["utterances"] == 3 * n
        assert level["completed"] == 3 * n
        assert level["failed"] == 0
        for key in ("p50", "p90", "p95", "p99"):
            assert is_number(level["final_latency_ms"][key]), level
            assert is_number(level["first_delta_latency_ms"][key]), level
        assert _nonnegative(level["final_latency_ms"])
        assert level["audio_dropped_ms"] == 0
        assert level["transcriptions_failed"] == 0
        assert level["stats_missing"] == 0
        assert is_number(level["rtf"]["mean"]) and is_number(level["max_send_lag_ms"])

        wers = level["wer"]
        assert wers["against"] == "reference"
        assert len(wers["streamed_per_stream"]) == n
        assert all(0 <= value <= 1 for value in wers["streamed_per_stream"]), wers
        assert 0 <= wers["streamed_mean"] <= wers["streamed_max"] <= 1
        assert wers["offline"] == offline["wer"]

        phrases = level["phrases"]
        assert phrases["per_stream"] == ends["with_word"]
        assert phrases["measured"] == n * ends["with_word"]
        assert 0 <= phrases["missing_stable"] < phrases["measured"]
        # Any text includes stable text: never missing more often, never later.
        assert 0 <= phrases["missing_any"] <= phrases["missing_stable"]
        assert _nonnegative(phrases["stable_ms"]) and _nonnegative(phrases["any_ms"])
        assert len(phrases["stream_0"]) == ends["with_word"]
        for phrase in phrases["stream_0"]:
            if phrase["stable_ms"] is not None:
                assert 0 <= phrase["any_ms"] <= phrase["stable_ms"], phrase

        assert is_number(level["tentative"]["events"])
        decode = level["decode"]
        if "decode_seconds" in level["counters"]:
            assert decode["per_audio_second"] > 0 and decode["ratio_to_offline"] > 0
        else:
            assert decode["per_audio_second"] is None
        assert decode["offline_per_audio_second"] > 0
    assert "max_streams_p95_final_under_500ms" in data["summary"]
    assert isinstance(data["summary"]["targets"], list)
    assert wer(" ".join(speech.SENTENCES), data["transcript"]) <= 0.15, data["transcript"]


def test_percentiles_of_nothing_are_none() -> None:
    assert percentiles([]) == {"p50": None, "p90": None, "p95": None, "p99": None, "max": None}
    figures = percentiles([10.0])
    assert figures["p50"] == figures["p99"] == figures["max"] == 10.0
