"""`voxwire bench soak`, a short run against the shared live server: the mixed load runs,
every abusive client is refused the documented way, nothing fails, the books balance."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests import speech
from tests.e2e.console import run
from tests.live_server import LiveServer
from voxwire.transports.bench.soak_load import bomb_wav, wav_bytes
from voxwire.transports.bench.soak_watch import MetricsBooks

ABUSES = ("vanish", "malformed", "stall", "oversized_upload", "bomb", "oversized_frame")


def test_a_short_soak_has_no_errors_and_balanced_books(server: LiveServer, tmp_path: Path) -> None:
    wav = speech.write_wav(
        tmp_path / "speech.wav", speech.utterances(speech.SENTENCES[:3], gap_s=0.8)
    )
    out = tmp_path / "soak.json"
    result = run(
        "bench", "soak", "--minutes", "0.3", "--file", wav, "--url", server.http_url,
        "--pid", str(os.getpid()), "--http-every-s", "3", "--abuse-every-s", "2.5",
        "--sample-every-s", "1", "-o", out,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "counters balanced" in result.stdout and "verdict" in result.stdout
    data = json.loads(out.read_text())
    assert data["complete"] is True and data["bench"] == "soak"
    assert data["errors"] == {"count": 0, "first": []}
    assert data["books"]["balanced"] is True, data["books"]["problems"]
    ops = data["operations"]
    for abuse in ABUSES:
        assert ops.get(f"abuse.{abuse}", 0) >= 1, ops
    # HTTP requests run one after another (transcription, classification, speech, ...).
    assert ops["http.transcriptions"] >= 1 and ops["http.classify"] >= 1, ops
    assert ops["transcription.sessions"] >= 2 and ops["replies.sessions"] >= 1, ops
    heard = ops.get("transcription.utterances", 0) + ops.get("replies.utterances", 0)
    assert heard >= 2, ops
    books = data["books"]
    assert books["sessions"]["opened"] >= ops["transcription.sessions"] + ops["replies.sessions"]
    assert books["sessions"]["ended"].get("internal_error", 0) == 0
    assert books["items"]["items_started"] >= heard
    rss = data["rss_mb"]
    assert rss["samples"] >= 10 and rss["baseline_mb"] > 0 and rss["end_mb"] > 0
    assert rss["by_minute"][0]["minute"] == 0
    assert isinstance(data["verdict"]["passed"], bool) and data["verdict"]["errors_ok"] is True


def test_metrics_books_catch_what_does_not_balance() -> None:
    text = "\n".join(
        [
            "voxwire_realtime_sessions_active 0.0",
            "voxwire_realtime_sessions_opened_total 3.0",
            'voxwire_realtime_sessions_ended_total{reason="client_closed"} 2.0',
            "voxwire_session_items_started_total 5.0",
            "voxwire_session_items_completed_total 4.0",
            "voxwire_session_transcriptions_failed_total 0.0",
            "voxwire_session_items_cleared_total 0.0",
            "voxwire_session_items_abandoned_total 1.0",
            "voxwire_session_samples_lost_total 0.0",
            "voxwire_reply_responses_total 1.0",
            "voxwire_reply_completed_total 1.0",
            "voxwire_reply_cancelled_total 0.0",
            "voxwire_reply_failed_total 0.0",
            "voxwire_reply_samples_synthesized_total 10.0",
            "voxwire_reply_samples_sent_total 10.0",
            "voxwire_reply_samples_cancelled_total 0.0",
            'voxwire_http_requests_total{method="POST",route="/x",status="500"} 1.0',
        ]
    )
    problems = MetricsBooks.parse(text + "\n").problems()
    assert len(problems) == 2, problems
    assert problems[0].startswith("sessions: 3.0 opened") and "5xx" in problems[1]


def test_wav_headers() -> None:
    assert wav_bytes(b"\x00\x00" * 16_000)[40:44] == (32_000).to_bytes(4, "little")
    bomb = bomb_wav()
    assert len(bomb) < 32 * 1024 and int.from_bytes(bomb[24:28], "little") == 1
