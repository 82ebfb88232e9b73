"""A client that hangs up mid-transcription frees the worker: its running window is the
last one decoded, its queued windows never run, and the next request is served at once."""

from __future__ import annotations

import re
import socket
import time
import uuid
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest

from tests import corpus, speech
from tests.live_server import LiveServer
from voxwire.services.runtime import CatalogEntry

LONG_MINUTES = 5
FREED_WITHIN_S = 5.0
"""What one running 30 s window may take on a busy 2-core machine (0.3-2 s); the
whole file would keep both threads busy for minutes."""


@pytest.fixture(scope="module")
def long_wav() -> bytes:
    """LONG_MINUTES of real speech: the corpus' three recordings (66 s) over and over
    (a 30 s window of them holds little repeated text, so no temperature fallback)."""
    once = np.concatenate([corpus.recording(n) for n in ("librivox", "jfk", "pyannote")])
    repeats = int(LONG_MINUTES * 60 * speech.SAMPLE_RATE / once.size) + 1
    return speech.pcm16_wav_bytes(np.tile(once, repeats))


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    return body + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def asr_entry(server: LiveServer) -> CatalogEntry:
    return server.runtime.resolve(None, "automatic-speech-recognition")


def start_and_hang_up(server: LiveServer, data: bytes) -> None:
    """Upload `data` for transcription, wait until the worker is on it, and hang up."""
    entry = asr_entry(server)
    assert entry.worker is not None
    before = entry.worker.stats.submitted
    body, boundary = multipart(data)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(
        f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
        + body
    )
    deadline = time.monotonic() + 30
    while entry.worker.stats.submitted < before + 2:  # the segments and the first window
        assert time.monotonic() < deadline, "the transcription never reached the worker"
        time.sleep(0.02)
    sock.close()


def cancelled_count(server: LiveServer) -> float:
    text = httpx.get(server.http_url + "/metrics", timeout=10).text
    pattern = (
        r"voxwire_http_requests_cancelled_total"
        r'\{method="POST",route="/v1/audio/transcriptions"\} (\S+)'
    )
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_hung_up_transcriptions_free_the_worker_for_the_next_request(
    server: LiveServer, long_wav: bytes, one_sentence_wav: Path
) -> None:
    entry = asr_entry(server)
    assert entry.worker is not None
    cancelled_before = cancelled_count(server)
    completed_before = entry.worker.stats.completed
    for _ in range(2):  # as many as the worker has threads: unfixed, both stay busy
        start_and_hang_up(server, long_wav)

    hung_up = time.monotonic()
    deadline = hung_up + FREED_WITHIN_S
    while entry.worker.load > 0 or entry.worker.queue_depth > 0:
        assert time.monotonic() < deadline, "the worker still works for clients that left"
        time.sleep(0.02)
    windows = entry.worker.stats.completed - completed_before
    print(f"freed {time.monotonic() - hung_up:.2f} s after the hang-ups; {windows} calls ran")
    assert windows < 8, f"{windows} windows ran for nobody"  # the files have 2 x 10

    with httpx.Client(base_url=server.http_url, timeout=FREED_WITHIN_S + 5) as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("one.wav", one_sentence_wav.read_bytes())},
            data={"model": "whisper-1"},
        )
    assert response.status_code == 200, response.text
    assert "fox" in response.json()["text"].lower()
    assert cancelled_count(server) == cancelled_before + 2
