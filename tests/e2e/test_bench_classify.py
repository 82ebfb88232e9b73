"""`voxwire bench classify`, run as the installed console script on a short file."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.console import bench, run


def test_bench_classify_measures_every_classifier(one_sentence_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "classify.json"
    stdout, data = bench(
        "classify",
        "--file",
        one_sentence_wav,
        "--repeats",
        "1",
        output=out,
    )
    assert "voxwire bench classify" in stdout and "wake-words" in stdout
    assert data["machine"]["cpu_count"] >= 1 and data["repeats"] == 1
    assert data["audio"]["seconds"] > 2
    rows = {(r["model"], r["mode"]): r for r in data["results"]}
    assert set(rows) == {
        ("silero-speech", "clip"),
        ("vader", "text"),
        ("wake-words", "stream"),
        ("wake-words", "clip"),
        ("intent", "text"),
        ("resemblyzer", "embed"),
    }
    stream = rows[("wake-words", "stream")]
    assert stream["frames"] > 20 and 0 < stream["ms_per_audio_second"] < 500
    assert stream["frame_ms_p50"] <= stream["frame_ms_p95"]
    for key in (("silero-speech", "clip"), ("resemblyzer", "embed"), ("wake-words", "clip")):
        assert 0 < rows[key]["rtf"] < 1
    for key in (("vader", "text"), ("intent", "text")):
        assert rows[key]["ms_per_transcript"] > 0 and rows[key]["transcripts"] == 8
    assert all(r["load_seconds"] >= 0 for r in data["results"])


def test_bench_classify_refuses_an_unknown_model(tmp_path: Path) -> None:
    result = run("bench", "classify", "--models", "whisper-tiny.en", "-o", tmp_path / "x.json")
    assert result.returncode == 1
    assert "not a classifier or speaker encoder on offer: whisper-tiny.en" in result.stderr
    assert "Traceback" not in result.stderr
