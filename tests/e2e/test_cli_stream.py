"""`voxwire stream` and `voxwire bench asr`, run as installed console scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import speech
from tests.e2e.console import run, wer

pytestmark = pytest.mark.slow


def events_of(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_stream_three_sentences(three_sentences_wav: Path) -> None:
    result = run("stream", three_sentences_wav, "--speed", "4")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    events = events_of(result.stdout)
    types = [e["type"] for e in events]
    started = types.index("input_audio_buffer.speech_started")
    first_delta = types.index("conversation.item.input_audio_transcription.delta")
    assert started < first_delta

    completed = [e for e in events if str(e["type"]).endswith("transcription.completed")]
    assert len(completed) == 3
    assert len([t for t in types if t == "input_audio_buffer.speech_started"]) == 3
    assert len([t for t in types if t == "input_audio_buffer.speech_stopped"]) == 3
    for event, text in zip(completed, speech.SENTENCES, strict=True):
        assert wer(text, str(event["transcript"])) <= 0.15
        deltas = "".join(
            str(e["delta"])
            for e in events
            if e.get("item_id") == event["item_id"] and str(e["type"]).endswith(".delta")
        )
        assert deltas == event["transcript"]
        assert isinstance(event["voxwire.final_latency_ms"], float)

    # Timestamps: speech_started / speech_stopped alternate and never go back.
    marks: list[int] = []
    for e in events:
        if e["type"] == "input_audio_buffer.speech_started":
            marks.append(int(e["audio_start_ms"]))  # type: ignore[call-overload]
        elif e["type"] == "input_audio_buffer.speech_stopped":
            marks.append(int(e["audio_end_ms"]))  # type: ignore[call-overload]
    assert marks == sorted(marks)
    for e in completed:
        timings = e["voxwire.timings"]
        assert isinstance(timings, dict)
        assert timings["audio_start_ms"] < timings["audio_end_ms"]


def test_stream_of_silence_says_so(tmp_path: Path) -> None:
    path = speech.write_wav(tmp_path / "quiet.wav", speech.silence(2.0))
    result = run("stream", path, "--speed", "0")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no speech found" in result.stderr


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 10])
def test_stream_bad_file_is_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    result = run("stream", path)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_stream_rejects_bad_vad_knob(three_sentences_wav: Path) -> None:
    result = run("stream", three_sentences_wav, "--threshold", "1.5")
    assert result.returncode != 0
    assert "threshold" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_asr_prints_and_writes_json(one_sentence_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = run(
        "bench", "asr", one_sentence_wav, "--speed", "4", "--repeats", "1", "--output", out
    )
    assert result.returncode == 0, result.stderr
    assert "streaming / offline compute" in result.stdout
    data = json.loads(out.read_text())
    assert data["offline"]["greedy_rtf"] > 0
    assert data["offline"]["final_decode_ms"] > 0
    assert data["streaming"]["final_decodes"] >= 1
    assert data["streaming"]["utterances"] == 1
    assert data["streaming_to_offline_compute_ratio"] > 0
    assert wer(speech.SENTENCES[0], data["streaming"]["transcript"]) <= 0.15, data
