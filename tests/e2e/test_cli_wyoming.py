"""`voxwire serve --wyoming` and `voxwire wyoming` as a user runs them: subprocesses
driven with the `wyoming` package's clients (TCP, unix socket, stdio)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.client import AsyncTcpClient, AsyncUnixClient
from wyoming.event import Event, read_event, write_event
from wyoming.info import Describe, Info

from tests import speech
from tests.e2e.console import VOXWIRE, run, wer
from tests.e2e.test_cli_serve import wait_for_health
from tests.transports.wyoming.live import events_until, send_audio
from voxwire.transports.bench.stream import free_port

pytestmark = pytest.mark.slow


def test_serve_speaks_wyoming_beside_http_on_one_runtime(tmp_path: Path) -> None:
    port, wyoming_port = free_port(), free_port()
    socket_path = tmp_path / "wyoming.sock"
    process = subprocess.Popen(
        [
            str(VOXWIRE), "--log-level", "info", "serve", "--port", str(port),
            "--data-dir", str(tmp_path / "data"),
            "--wyoming", f"tcp://127.0.0.1:{wyoming_port}", "--wyoming", f"unix://{socket_path}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    text = speech.SENTENCES[1]
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process)

        async def talk() -> tuple[Info, str]:
            async with AsyncUnixClient(str(socket_path)) as client:
                await client.write_event(Describe().event())
                info = Info.from_event(*(await events_until(client, "info")))
            async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
                await client.write_event(Transcribe().event())
                audio = speech.utterances([text], lead_s=0.3, tail_s=0.5, rate=16_000)
                await send_audio(client, audio, 16_000)
                events = await events_until(client, "transcript-stop")
            return info, next(
                Transcript.from_event(e).text for e in events if e.type == "transcript"
            )

        info, transcript = asyncio.run(talk())
        assert info.asr[0].supports_transcript_streaming and info.tts[0].voices
        assert wer(text, transcript) <= 0.15
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert "voxwire_wyoming_transcripts_total 1.0" in metrics
        assert 'voxwire_wyoming_events_received_total{type="describe"} 1.0' in metrics
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert "Traceback" not in err
    assert f"serving Wyoming on tcp://127.0.0.1:{wyoming_port}" in err
    assert not socket_path.exists()  # removed on the way out


def test_wyoming_alone_over_stdio() -> None:
    process = subprocess.Popen(
        [str(VOXWIRE), "wyoming", "--uri", "stdio://"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        write_event(Describe().event(), process.stdin)  # type: ignore[arg-type]
        event = read_event(process.stdout)  # type: ignore[arg-type]
        assert isinstance(event, Event) and Info.is_type(event.type)
        assert [m.name for m in Info.from_event(event).wake[0].models][:2] == [
            "alexa",
            "hey_jarvis",
        ]
    finally:
        _, err = process.communicate(timeout=60)  # closes stdin: the server ends
    assert process.returncode == 0, err.decode()


def test_bad_wyoming_uris_are_refused_before_loading_models() -> None:
    for args in (
        ("serve", "--wyoming", "http://127.0.0.1:10300"),
        ("serve", "--wyoming", "tcp://127.0.0.1"),
        ("wyoming", "--uri", "stdio://", "--uri", "tcp://127.0.0.1:10300"),
    ):
        result = run(*args)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr and "loaded" not in result.stderr, args
