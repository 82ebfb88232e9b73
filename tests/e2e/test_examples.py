"""The clients in examples/ run as a user runs them: `python examples/X.py FILE --url URL`
in a subprocess (from another directory, so they depend on nothing in the checkout),
against one `voxwire serve` subprocess that also serves the example reply handler.
The input is known Piper speech written at rates the server never uses inside (44.1 kHz
stereo, 22.05 kHz mono), so the examples' decoding and resampling is exercised too."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soxr
from openai import OpenAI

from tests import speech
from tests.e2e.console import VOXWIRE, normalise, wer
from voxwire.services.reply_handlers import Turn
from voxwire.transports.bench.stream import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TRANSCRIBERS = {
    # script: options that keep the run short (a WebRTC track plays in real time)
    "realtime_websockets.py": ["--pace", "fast"],
    "realtime_binary_pcm.py": ["--pace", "fast"],
    "realtime_openai_sdk.py": ["--pace", "fast"],
    "webrtc_aiortc.py": [],
}
ASSISTANT = "assistant.py"
SHARED = "common.py"  # what the examples import from beside them; not an example itself
SAID = list(speech.SENTENCES[:2])
QUESTION = speech.SENTENCES[2]  # "What time does the train leave tomorrow morning?"
pytestmark = pytest.mark.slow


def write_wav(path: Path, audio: npt.NDArray[np.float32], rate: int, channels: int) -> Path:
    """`audio` (16 kHz mono) resampled to `rate` and written as PCM16 with `channels`."""
    resampled = soxr.resample(audio, speech.SAMPLE_RATE, rate)
    # The channels differ a little in level, as a real stereo recording would.
    frames = np.stack([resampled * (1.0 - 0.2 * c) for c in range(channels)], axis=1)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.clip(frames, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def two_sentences_44k_stereo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    audio = speech.utterances(SAID, lead_s=0.5, tail_s=0.3)
    return write_wav(tmp_path_factory.mktemp("examples") / "two.wav", audio, 44_100, 2)


@pytest.fixture(scope="module")
def question_22k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    audio = speech.utterances([QUESTION], lead_s=0.5, tail_s=0.3)
    return write_wav(tmp_path_factory.mktemp("examples") / "question.wav", audio, 22_050, 1)


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """`voxwire serve` on a free port with the example's reply handler, as the example's
    docstring says: `PYTHONPATH=examples voxwire serve --assistant assistant:reply`."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXAMPLES), env.get("PYTHONPATH")]))
    command = [str(VOXWIRE), "serve", "--port", str(port), "--assistant", "assistant:reply"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as response:
                    if json.loads(response.read()).get("status") == "ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "voxwire serve did not become healthy"
            time.sleep(0.3)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def run_example(script: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_every_example_is_run_here() -> None:
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py") if p.name != SHARED)
    assert scripts == sorted([*TRANSCRIBERS, ASSISTANT])


@pytest.mark.parametrize("script", list(TRANSCRIBERS))
def test_example_streams_a_44k_stereo_wav_and_prints_the_transcript(
    script: str, served: str, two_sentences_44k_stereo: Path, tmp_path: Path
) -> None:
    result = run_example(
        script, two_sentences_44k_stereo, "--url", served, *TRANSCRIBERS[script], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    # One line per utterance, in the order spoken, each close to what was said.
    assert len(lines) == len(SAID), result.stdout
    for said, heard in zip(SAID, lines, strict=True):
        assert wer(said, heard) <= 0.15, (said, heard)


def test_real_time_pace_takes_as_long_as_the_audio(
    served: str, two_sentences_44k_stereo: Path, tmp_path: Path
) -> None:
    with wave.open(str(two_sentences_44k_stereo)) as f:
        seconds = f.getnframes() / f.getframerate()
    started = time.monotonic()
    result = run_example(
        "realtime_binary_pcm.py", two_sentences_44k_stereo, "--url", served, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= seconds
    assert wer(" ".join(SAID), result.stdout) <= 0.15


def test_assistant_example_speaks_its_handlers_reply(
    served: str, question_22k: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "reply.wav"
    result = run_example(
        ASSISTANT,
        question_22k,
        "--url",
        served,
        "--pace",
        "fast",
        "--save-reply",
        saved,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    heard = re.search(r"^you: (.*)$", out, re.MULTILINE)
    assert heard and wer(QUESTION, heard[1]) <= 0.15, out
    # The reply is the example handler's (not the default echo), its text streamed...
    reply = re.search(r"^assistant: You said (\d+) words\. It is (\d\d:\d\d) here\.$", out, re.M)
    assert reply, out
    assert int(reply[1]) == len(heard[1].split())
    # ...and spoken: the audio counted, saved, and it says what the text says.
    done = re.search(r"^\[reply completed: (\d+) bytes, ([\d.]+) s of audio\]$", out, re.M)
    assert done and int(done[1]) > 24_000 * 2, out
    with wave.open(str(saved)) as f:
        assert f.getframerate() == 24_000 and f.getnframes() * 2 == int(done[1])
    client = OpenAI(api_key="unused", base_url=served + "/v1")
    with saved.open("rb") as f:
        spoken = client.audio.transcriptions.create(file=f, model="whisper-1").text
    # Whisper writes the numbers its own way ("eight", "1406"): compare the words around them.
    assert {"you", "words", "it", "is", "here"} <= set(normalise(spoken).split()), spoken


def test_the_example_handler_answers_without_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(EXAMPLES)  # as PYTHONPATH=examples does for the server
    spec = importlib.util.spec_from_file_location("assistant_example", EXAMPLES / ASSISTANT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    async def collect(text: str) -> str:
        return "".join([chunk async for chunk in module.reply(Turn(text, item_id="item_1"))])

    assert re.fullmatch(
        r"You said 3 words\. It is \d\d:\d\d here\.", asyncio.run(collect("What time now"))
    )
    assert asyncio.run(collect("hello there")) == "You said 2 words. Ask me what time it is."
    assert asyncio.run(collect("  ")) == "Sorry, I did not catch that."


@pytest.mark.parametrize("script", [*TRANSCRIBERS, ASSISTANT])
def test_example_fails_in_one_line_without_a_server_or_a_file(
    script: str, question_22k: Path, tmp_path: Path
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    for args, says in [
        ((question_22k, "--url", unreachable), "127.0.0.1"),
        ((tmp_path / "missing.wav", "--url", unreachable), "missing.wav"),
    ]:
        result = run_example(script, *args, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("error: ") and says in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
