"""`voxwire mic`, run as the installed console script against a live server: a file
stands in for the microphone (no sound device is needed), the transcript and the
spoken replies come back as lines, and every way to fail is one error line."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests import speech
from tests.e2e.console import VOXWIRE, run, wer
from tests.live_server import LiveServer, live_server
from voxwire.services.runtime import Runtime
from voxwire.transports.bench.stream import free_port
from voxwire.transports.http.settings import ServerSettings
from voxwire.transports.realtime.websocket import RealtimeLimits

pytestmark = pytest.mark.slow

KEY = "mic-test-key"


def lines(stdout: str, prefix: str) -> list[str]:
    return [line[len(prefix) :] for line in stdout.splitlines() if line.startswith(prefix)]


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    errors = result.stderr.splitlines()
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("voxwire: error: ")
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def two_turns_wav(speech_dir: Path) -> Path:
    """Two sentences 3 s apart: each reply starts before the next sentence does (speech
    before a reply's first audio would barge in and cancel it)."""
    audio = speech.utterances(speech.SENTENCES[1:3], gap_s=3.0, lead_s=0.3, tail_s=0.5)
    return speech.write_wav(speech_dir / "two_turns.wav", audio)


@pytest.fixture(scope="module")
def guarded_server(
    runtime: Runtime, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server that wants an API key and takes one Realtime session at a time."""
    settings = ServerSettings(
        realtime=RealtimeLimits(max_sessions=1),
        api_keys=(KEY,),
        data_dir=tmp_path_factory.mktemp("mic-data"),
    )
    with live_server(runtime, settings) as live:
        yield live


def test_mic_streams_a_file_and_prints_its_transcript(
    server: LiveServer, one_sentence_wav: Path
) -> None:
    url = server.ws_url + "?intent=transcription"
    result = run("mic", "--url", url, "--input-file", one_sentence_wav, "--no-playback")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (heard,) = lines(result.stdout, "you: ")
    assert wer(speech.SENTENCES[0], heard) <= 0.1
    assert lines(result.stdout, "voxwire:") == []  # a transcription session does not reply
    assert "1 turn(s), 0 replies" in result.stderr
    server.wait_until_idle()


def test_mic_realtime_session_prints_each_reply_after_its_turn(
    server: LiveServer, two_turns_wav: Path
) -> None:
    """The default assistant (echo) says back each turn; half duplex pauses the file
    while a reply 'plays' (on the clock, --no-playback), and the classifiers report."""
    # The voice loads on first use; loaded now, the first reply is not late.
    tts = server.runtime.resolve(None, "text-to-speech")
    server.call(server.runtime.ensure_loaded(tts), timeout=60)
    url = server.ws_url + "?model=voxwire"
    result = run(
        "mic",
        "--url",
        url,
        "-i",
        two_turns_wav,
        "--no-playback",
        "--rate",
        "16000",
        "--classifiers",
        "sentiment,intent",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout.splitlines()
    turns = [i for i, line in enumerate(out) if line.startswith("you: ")]
    replies = [i for i, line in enumerate(out) if line.startswith("voxwire: ")]
    assert len(turns) == 2 and len(replies) == 2, result.stdout
    assert turns[0] < replies[0] < turns[1] < replies[1], result.stdout
    for sentence, turn, reply in zip(speech.SENTENCES[1:3], turns, replies, strict=True):
        heard = out[turn].removeprefix("you: ")
        said = out[reply].removeprefix("voxwire: ")
        assert wer(sentence, heard) <= 0.1
        assert wer(sentence, said) <= 0.1  # echo: the reply is what it heard
    intents = lines(result.stdout, "  intent: ")
    assert intents[0].startswith("lights ")
    assert intents[1].startswith("time ")
    assert len(lines(result.stdout, "  sentiment: ")) == 2
    assert "2 turn(s), 2 replies" in result.stderr
    assert "paused" in result.stderr  # the file waited while the replies played
    server.wait_until_idle()


def test_mic_unreachable_server_is_one_error_line(one_sentence_wav: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}/v1/realtime"
    result = run("mic", "--url", url, "-i", one_sentence_wav, "--no-playback", timeout=60)
    assert_one_error_line(result, "cannot connect", "connection refused", url)
    assert result.stdout == ""


def test_mic_refuses_what_is_not_a_realtime_endpoint(
    server: LiveServer, one_sentence_wav: Path
) -> None:
    result = run("mic", "--url", "http://127.0.0.1:1/x", "-i", one_sentence_wav, "--no-playback")
    assert_one_error_line(result, "not a WebSocket URL")
    wrong_path = f"ws://127.0.0.1:{server.port}/v1/nothing"
    result = run("mic", "--url", wrong_path, "-i", one_sentence_wav, "--no-playback")
    assert_one_error_line(result, "refused the WebSocket", "/v1/realtime")


def test_mic_api_key(guarded_server: LiveServer, one_sentence_wav: Path) -> None:
    url = guarded_server.ws_url + "?intent=transcription"
    result = run("mic", "--url", url, "-i", one_sentence_wav, "--no-playback")
    assert_one_error_line(result, "API key", "--api-key")
    result = run("mic", "--url", url, "-i", one_sentence_wav, "--no-playback", "--api-key", KEY)
    assert result.returncode == 0, result.stderr
    (heard,) = lines(result.stdout, "you: ")
    assert wer(speech.SENTENCES[0], heard) <= 0.1
    guarded_server.wait_until_idle()


def test_mic_server_that_closes_the_connection_is_one_error_line(
    guarded_server: LiveServer, one_sentence_wav: Path
) -> None:
    """The only session slot is taken: the server closes with 1013 at once."""
    url = guarded_server.ws_url + "?intent=transcription"

    async def while_the_slot_is_taken() -> tuple[int, str, str]:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with connect(url, additional_headers=headers) as holder:
            await holder.recv()  # session.created: the slot is ours
            process = await asyncio.create_subprocess_exec(
                str(VOXWIRE),
                *("mic", "--url", url, "-i", str(one_sentence_wav)),
                *("--no-playback", "--api-key", KEY),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "NO_COLOR": "1"},
            )
            stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
            assert process.returncode is not None
            return process.returncode, stdout.decode(), stderr.decode()

    code, stdout, stderr = asyncio.run(while_the_slot_is_taken())
    result = subprocess.CompletedProcess[str]([], code, stdout, stderr)
    assert_one_error_line(result, "closed the connection", "1013")
    guarded_server.wait_until_idle()


def test_mic_option_and_file_mistakes_are_one_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not audio\n" * 50)
    assert_one_error_line(run("mic", "-i", bad, "--no-playback"), str(bad), "audio")
    assert_one_error_line(
        run("mic", "--classifiers", "sentiment,mood", "--no-playback"),
        "unknown classifier 'mood'",
        "wake_word, speaker, sentiment, intent",
    )
    assert_one_error_line(run("mic", "--rate", "22050"), "--rate 22050", "16000")


def test_mic_without_sound_devices_suggests_a_file_or_no_playback(
    one_sentence_wav: Path,
) -> None:
    # Device 9999 exists nowhere, so this holds on machines with sound cards too.
    result = run("mic", "--device", "9999", "--no-playback")
    assert_one_error_line(result, "no microphone", "--input-file")
    result = run("mic", "--device", "9999", "-i", one_sentence_wav)
    assert_one_error_line(result, "no sound output device", "--no-playback")
