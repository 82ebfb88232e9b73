"""The installed `voxwire` console script, run as a user would, on known Piper speech."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np
import pytest

from tests import speech
from tests.e2e.console import normalise, run, wer
from tests.speech import pcm16_wav_bytes

pytestmark = pytest.mark.slow


def assert_one_error_line(
    result: subprocess.CompletedProcess[str], path: Path | str, code: int = 1
) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("voxwire: error: ")
    assert str(path) in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good, bad and silent inputs."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(1)
    (root / "corrupt.wav").write_bytes(rng.integers(0, 256, 30_000, dtype=np.uint8).tobytes())
    (root / "empty.wav").write_bytes(b"")
    (root / "notes.txt").write_text("shopping list: eggs, milk\n" * 40)
    (root / "silence.wav").write_bytes(pcm16_wav_bytes(np.zeros(3 * 16_000, np.float32)))
    # The second sentence as 44.1 kHz stereo MP3, to go through the whole decoder.
    second = speech.utterances(speech.SENTENCES[1:2], lead_s=0.3, tail_s=0.5, rate=44_100)
    with av.open(str(root / "second.mp3"), "w") as out:
        stream = out.add_stream("libmp3lame", rate=44_100, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            np.stack([second, second]).astype(np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate = 44_100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return {p.stem: p for p in root.iterdir()} | {"missing": root / "missing.wav"}


def test_text_is_accurate(three_sentences_wav: Path) -> None:
    result = run("transcribe", three_sentences_wav)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert wer(" ".join(speech.SENTENCES), result.stdout) <= 0.10, result.stdout
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1


def test_json(one_sentence_wav: Path) -> None:
    result = run("transcribe", "--format", "json", one_sentence_wav)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert set(body) == {"text"}
    assert wer(speech.SENTENCES[0], body["text"]) <= 0.10


def test_verbose_json_with_words(three_sentences_wav: Path) -> None:
    result = run(
        "transcribe", "-f", "verbose_json", "--word-timestamps", "--language", "en",
        "--beam-size", "1", three_sentences_wav,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    duration = len(speech.utterances(speech.SENTENCES)) / speech.SAMPLE_RATE
    assert body["task"] == "transcribe"
    assert body["language"] == "english"
    assert body["duration"] == pytest.approx(duration, abs=0.01)
    assert wer(" ".join(speech.SENTENCES), body["text"]) <= 0.10
    segments = body["segments"]
    assert segments and [s["id"] for s in segments] == list(range(len(segments)))
    for s in segments:
        assert 0 <= s["start"] <= s["end"] <= duration + 0.01
        assert s["tokens"] and isinstance(s["avg_logprob"], float)
    words = body["words"]
    assert len(words) >= 20
    assert wer(" ".join(speech.SENTENCES), " ".join(w["word"] for w in words)) <= 0.10
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    assert all(w["start"] <= w["end"] for w in words)
    # "quick" is said in the first sentence, "kitchen" in the second after a 1 s gap.
    by_word = {normalise(w["word"]): w for w in words}
    assert by_word["quick"]["end"] < by_word["kitchen"]["start"]


SRT_TIME = r"\d{2}:\d{2}:\d{2},\d{3}"
VTT_TIME = r"\d{2}:\d{2}:\d{2}\.\d{3}"


def _cue_times(cues: list[str], stamp: str, sep: str) -> list[tuple[float, float]]:
    times = []
    for index, cue in enumerate(cues, start=1):
        lines = cue.split("\n")
        assert lines[0] == str(index)
        assert re.fullmatch(f"({stamp}) --> ({stamp})", lines[1]), cue
        assert len(lines) == 3 and lines[2].strip()
        start, end = (_seconds(t, sep) for t in lines[1].split(" --> "))
        assert start <= end
        times.append((start, end))
    return times


def _seconds(stamp: str, sep: str) -> float:
    hms, ms = stamp.split(sep)
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s + int(ms) / 1000


def test_srt(three_sentences_wav: Path) -> None:
    result = run("transcribe", "--format", "srt", three_sentences_wav)
    assert result.returncode == 0, result.stderr
    cues = result.stdout.strip("\n").split("\n\n")
    times = _cue_times(cues, SRT_TIME, ",")
    assert [t[0] for t in times] == sorted(t[0] for t in times)
    text = " ".join(cue.split("\n")[2] for cue in cues)
    assert wer(" ".join(speech.SENTENCES), text) <= 0.10


def test_vtt(three_sentences_wav: Path) -> None:
    result = run("transcribe", "--format", "vtt", three_sentences_wav)
    assert result.returncode == 0, result.stderr
    header, *cues = result.stdout.strip("\n").split("\n\n")
    assert header == "WEBVTT"
    _cue_times(cues, VTT_TIME, ".")
    text = " ".join(cue.split("\n")[2] for cue in cues)
    assert wer(" ".join(speech.SENTENCES), text) <= 0.10


@pytest.mark.parametrize("name", ["corrupt", "empty", "notes"])
def test_bad_input_is_one_line(files: dict[str, Path], name: str) -> None:
    result = run("transcribe", files[name])
    assert_one_error_line(result, files[name])
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["transcribe", "stream", "classify"])
def test_a_missing_file_is_named_in_one_line_with_exit_code_2(
    files: dict[str, Path], command: str
) -> None:
    result = run(command, files["missing"], timeout=60)
    assert_one_error_line(result, files["missing"], code=2)
    assert "file not found" in result.stderr and result.stdout == ""


def test_a_missing_file_among_good_ones_stops_before_any_model_loads(
    files: dict[str, Path], one_sentence_wav: Path
) -> None:
    result = run("--log-level", "info", "transcribe", one_sentence_wav, files["missing"])
    assert result.returncode == 2 and result.stdout == ""
    assert f"{files['missing']}: file not found" in result.stderr
    assert "loaded ASR model" not in result.stderr


def test_a_url_is_fetched_and_transcribed(one_sentence_wav: Path) -> None:
    with _serving(one_sentence_wav.parent) as base:
        url = f"{base}/{one_sentence_wav.name}"
        result = run("transcribe", "--allow-private-urls", url)
        assert result.returncode == 0, result.stderr
        assert wer(speech.SENTENCES[0], result.stdout) <= 0.10
        missing = run("transcribe", "--allow-private-urls", f"{base}/missing.wav")
    assert_one_error_line(missing, f"{base}/missing.wav")
    assert "404" in missing.stderr


def test_a_url_to_a_private_address_is_refused_unless_allowed(one_sentence_wav: Path) -> None:
    with _serving(one_sentence_wav.parent) as base:
        url = f"{base}/{one_sentence_wav.name}"
        result = run("transcribe", url)
    assert_one_error_line(result, url)
    assert "loopback" in result.stderr and "--allow-private-urls" in result.stderr


@contextlib.contextmanager
def _serving(directory: Path) -> Iterator[str]:
    """A static file server for `directory` on a loopback port."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_silence_is_a_notice_not_an_error(files: dict[str, Path]) -> None:
    result = run("transcribe", files["silence"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"voxwire: {files['silence']}: no speech found\n"


def test_several_files_one_bad(files: dict[str, Path], one_sentence_wav: Path) -> None:
    result = run("transcribe", one_sentence_wav, files["corrupt"], files["second"])
    assert_one_error_line(result, files["corrupt"])
    blocks = result.stdout.split("\n\n")
    assert len(blocks) == 2, result.stdout
    first_header, first_text = blocks[0].split("\n", 1)
    second_header, second_text = blocks[1].split("\n", 1)
    assert first_header == f"==> {one_sentence_wav} <=="
    assert second_header == f"==> {files['second']} <=="
    assert wer(speech.SENTENCES[0], first_text) <= 0.10
    assert wer(speech.SENTENCES[1], second_text) <= 0.10


def test_version_and_help() -> None:
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("voxwire ")
    help_ = run("--help")
    assert help_.returncode == 0
    for command in ("transcribe", "serve"):
        assert command in help_.stdout
    serve_help = run("serve", "--help")
    assert serve_help.returncode == 0 and "/v1/realtime" in serve_help.stdout


def test_usage_error_is_not_a_traceback() -> None:
    result = run("transcribe", "--format", "docx", "x.wav")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
