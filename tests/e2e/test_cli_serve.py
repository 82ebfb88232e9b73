"""`voxwire serve` as a user runs it: a subprocess on a free port, driven over HTTP and
the Realtime WebSocket, then stopped with Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests import speech
from tests.e2e.console import VOXWIRE, run, wer
from tests.realtime_client import pcm16, realtime
from voxwire.transports.bench.stream import free_port


def wait_for_health(url: str, process: subprocess.Popen[str], within: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]
        except OSError:
            time.sleep(0.2)
    raise AssertionError("voxwire serve did not become healthy")


def test_serve_answers_health_and_realtime_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(VOXWIRE), "--log-level", "info", "serve", "--port", str(port), "--max-sessions", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = wait_for_health(f"http://127.0.0.1:{port}", process)
        assert health["status"] == "ok"
        assert health["realtime_sessions"] == {"active": 0, "max": 4}

        audio = speech.utterances([speech.SENTENCES[1]], lead_s=0.3, tail_s=1.0)

        async def transcribe() -> str:
            async with realtime(f"ws://127.0.0.1:{port}/v1/realtime") as client:
                await client.stream(pcm16(audio, 24000), rate=24000)
                (text,) = await client.transcripts(1)
                return text

        assert wer(speech.SENTENCES[1], asyncio.run(transcribe())) <= 0.1
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err  # the shell convention for a Ctrl-C exit
    assert "Traceback" not in err
    assert f"serving on http://127.0.0.1:{port}" in err
    assert "session opened" in err and "closed after" in err


def test_serve_with_a_missing_model_fails_in_one_line() -> None:
    result = run("serve", "--model", "/no/such/model")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_refuses_an_assistant_it_cannot_load_before_loading_models() -> None:
    result = run("serve", "--port", str(free_port()), "--assistant", "no_such_module_xyz:reply")
    assert result.returncode == 1
    assert "cannot import no_such_module_xyz" in result.stderr
    assert "loaded" not in result.stderr and "Traceback" not in result.stderr
