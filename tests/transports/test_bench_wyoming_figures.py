"""The parts of `voxwire bench wyoming` that need no server: targets, the corpus
directory and the summary arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import speech
from voxwire.transports.bench.stream import BenchError
from voxwire.transports.bench.wyoming import (
    SttRun,
    Target,
    parse_target,
    read_corpus,
    stt_summary,
)


def test_targets_are_named_tcp_uris() -> None:
    assert parse_target("piper=tcp://127.0.0.1:10200") == Target("piper", "127.0.0.1", 10200)
    assert parse_target("tcp://localhost:10300") == Target("localhost:10300", "localhost", 10300)
    for bad in ("fw=unix:///run/x.sock", "fw=tcp://127.0.0.1", "127.0.0.1:10300"):
        with pytest.raises(ValueError, match="NAME=tcp://HOST:PORT"):
            parse_target(bad)


def test_the_corpus_is_wavs_with_their_transcripts(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="not a directory"):
        read_corpus(tmp_path / "missing")
    with pytest.raises(BenchError, match=r"no NAME\.wav"):
        read_corpus(tmp_path)
    audio = np.zeros(8_000, dtype=np.float32)
    for name in ("b", "a", "c"):
        speech.write_wav(tmp_path / f"{name}.wav", audio)
    (tmp_path / "a.txt").write_text("first words\n")
    (tmp_path / "b.txt").write_text("second")
    found = read_corpus(tmp_path)
    assert [(u.name, u.reference) for u in found] == [("a", "first words"), ("b", "second")]
    assert found[0].seconds == pytest.approx(0.5)
    assert [u.name for u in read_corpus(tmp_path, limit=1)] == ["a"]


def test_summary_counts_text_before_audio_stop_and_pools_wer_per_round() -> None:
    def one(first: float, final: float, errors: int) -> SttRun:
        return SttRun(
            "u",
            3000.0,
            stop_ms=3000.0,
            first_text_ms=first,
            final_ms=final,
            errors=errors,
            words=10,
        )

    rounds = [[one(1200, 3300, 1), one(3100, 3400, 0)], [one(1500, 3200, 2), one(3200, 3500, 0)]]
    summary = stt_summary(rounds)
    assert summary["utterances"] == 4 and summary["failed"] == 0
    assert summary["first_text_before_stop"] == 2
    assert summary["first_text_after_stop_ms"]["p50"] == pytest.approx(-700.0)
    assert summary["final_after_stop_ms"]["p50"] == pytest.approx(350.0)
    assert summary["wer_per_round"] == [0.05, 0.1]
    assert summary["wer"] == pytest.approx(0.075)
    failed = SttRun("u", 3000.0, error="the server closed the connection")
    assert stt_summary([[failed]])["failed"] == 1 and stt_summary([[failed]])["wer"] is None
