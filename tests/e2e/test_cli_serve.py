"""`voxwire serve` as a user runs it: a subprocess on a free port, driven over HTTP and
the Realtime WebSocket, then stopped with Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests import speech
from tests.e2e.console import VOXWIRE, run, wer
from tests.realtime_client import pcm16, realtime
from voxwire.transports.bench.stream import free_port


def wait_for_health(
    url: str, process: subprocess.Popen[str], within: float = 120
) -> dict[str, Any]:
    """/health once the models have loaded (it answers "loading" before)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                health: dict[str, Any] = json.loads(response.read())
            if health["status"] != "loading":
                return health
        except OSError:
            pass
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


def test_serve_binds_and_answers_health_before_the_models_have_loaded() -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(VOXWIRE), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first: dict[str, Any] | None = None
        deadline = time.monotonic() + 60
        while first is None and time.monotonic() < deadline:
            assert process.poll() is None
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    first = json.loads(r.read())
            except OSError:
                time.sleep(0.05)
        assert first is not None
        assert first["status"] in ("loading", "ok")
        assert set(first["models"]["states"]) >= {"whisper-tiny.en", "piper-joe", "resemblyzer"}
        ready = wait_for_health(f"http://127.0.0.1:{port}", process)
        assert ready["status"] == "ok", ready
        assert set(ready["models"]["states"].values()) == {"ready"}
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    lines = err.splitlines()
    serving = next(i for i, line in enumerate(lines) if "serving on" in line)
    loaded = [i for i, line in enumerate(lines) if line.startswith("voxwire: loaded ")]
    assert loaded and min(loaded) > serving, err  # bound first, then loaded
    assert "Traceback" not in err


def test_a_taken_port_is_one_line_naming_the_address_before_any_model_loads() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("--log-level", "info", "serve", "--port", str(port), timeout=60)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("voxwire: error: cannot listen on ")
    assert f"127.0.0.1:{port}" in lines[0] and "address already in use" in lines[0]
    assert "loaded" not in result.stderr and "serving on" not in result.stderr


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
