"""`voxwire bench voice` against the shared live server (echo replies)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.console import bench, run, wer
from tests.live_server import LiveServer
from voxwire.transports.bench.voice import DEFAULT_QUESTION


def test_bench_voice_measures_voice_to_voice_latency(server: LiveServer, tmp_path: Path) -> None:
    out = tmp_path / "voice.json"
    stdout, data = bench("voice", "--turns", "2", "--url", server.ws_url, output=out)
    assert "end of speech -> first reply audio" in stdout
    assert data["turns"] == 2 and data["completed"] == 2
    voice = data["voice_to_voice_ms"]
    assert 0 < voice["p50"] <= voice["max"]
    assert data["goal_p50_ms"] == 800 and isinstance(data["goal_met"], bool)
    assert data["tts_first_audio_ms"] > 0
    # The echo handler said the question back.
    assert wer(DEFAULT_QUESTION, data["reply"]) <= 0.10


def test_bench_voice_refuses_a_non_websocket_url(tmp_path: Path) -> None:
    result = run("bench", "voice", "--url", "http://127.0.0.1:1", "-o", tmp_path / "x.json")
    assert result.returncode == 1
    assert "ws://" in result.stderr and "Traceback" not in result.stderr
