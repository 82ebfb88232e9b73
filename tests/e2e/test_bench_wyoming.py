"""`voxwire bench wyoming`, run as the installed console script: it starts `voxwire
wyoming`, streams real speech (LibriVox, from the test corpus) at the pace of speech
with the `wyoming` package's client, and writes its figures. Behaviour only: the JSON
has its fields and the words come back right; no speed is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import corpus
from tests.e2e.console import run

pytestmark = pytest.mark.slow

CLIPS = ("0880", "0930")
"""The two shortest LibriVox clips (3.0 s and 3.3 s)."""


@pytest.fixture(scope="module")
def librivox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = corpus.ensure(corpus.LIBRIVOX_SOURCES)
    out = tmp_path_factory.mktemp("librivox")
    for clip in CLIPS:
        for suffix in ("wav", "txt"):
            (out / f"librivox-{clip}.{suffix}").symlink_to(files[f"librivox-{clip}.{suffix}"])
    (out / "no-transcript.wav").symlink_to(files[f"librivox-{CLIPS[0]}.wav"])  # skipped
    return out


def test_bench_wyoming_against_a_spawned_voxwire(librivox_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "wyoming.json"
    result = run(
        "bench",
        "wyoming",
        "--corpus",
        librivox_dir,
        "--rounds",
        "2",
        "--output",
        out,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "speech to text" in result.stdout and "text to speech" in result.stdout

    data = json.loads(out.read_text())
    assert [c["name"] for c in data["corpus"]] == [f"librivox-{c}" for c in CLIPS]
    assert all(c["audio_seconds"] > 2 for c in data["corpus"])
    assert [entry["round"] for entry in data["load_average"]] == [1, 2]
    assert all(len(entry["load_after"]) == 3 for entry in data["load_average"])
    (target,) = data["targets"]
    assert target["name"] == "voxwire" and target["uri"].startswith("tcp://127.0.0.1:")
    programs = target["programs"]
    assert programs["asr"]["streaming"] is True and programs["tts"]["streaming"] is True

    stt = target["stt"]
    assert stt["utterances"] == 4 and stt["failed"] == 0
    for key in ("first_text_ms", "final_after_stop_ms", "total_ms"):
        assert stt[key]["p50"] is not None and stt[key]["p50"] >= 0, (key, stt)
    assert 0 <= stt["first_text_before_stop"] <= 4
    # Real speech read aloud, Whisper tiny.en: "ill disposed" comes back as
    # "old-sposed" (2 of the 16 words), and a word more may be misheard.
    assert len(stt["wer_per_round"]) == 2 and stt["wer"] <= 0.25, stt
    runs = [one for rounds in target["stt_runs"] for one in rounds]
    assert len(runs) == 4
    for one in runs:
        assert one["error"] is None and one["transcript"]
        # The audio was streamed at the pace of speech: audio-stop went after its length.
        assert one["stop_ms"] >= one["audio_ms"] * 0.95
        assert one["final_ms"] >= one["first_text_ms"] > 0
        assert one["final_after_stop_ms"] == pytest.approx(
            one["final_ms"] - one["stop_ms"], abs=0.2
        )
        # voxwire streams: the committed words come as transcript chunks.
        assert one["chunks"] >= 1

    tts = target["tts"]
    assert set(tts) == {"synthesize", "stream"}
    for mode in tts.values():
        assert mode["requests"] == 4 and mode["failed"] == 0
        assert mode["first_audio_ms"]["p50"] <= mode["total_ms"]["p50"]
        # "He might even have been made amiable himself" and its like last seconds.
        assert mode["audio_seconds_mean"] > 1.0
