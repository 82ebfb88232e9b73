"""Decompression bombs sent to the live server: a few KiB that declare (or decode to)
hours of audio end within seconds with a 4xx in OpenAI's error shape, and the server's
resident memory barely moves (the server runs in this process: its RSS is ours)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx2 as httpx
import pytest

from tests import bombs
from tests.live_server import LiveServer

MiB = 1024 * 1024
RSS_BOUND = 150 * MiB
"""Resident memory one bomb may add; unbounded, the low-rate bomb alone adds ~1 GB."""
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


@contextmanager
def peak_rss_delta() -> Iterator[Callable[[], int]]:
    """Sample resident memory every 10 ms; yields a function giving the peak's rise."""
    start = rss()
    peak = start
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss())
            time.sleep(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak - start
    finally:
        stop.set()
        thread.join()


SHAPES: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "declares_hours": (bombs.low_rate, 413, "declares 3.84 h of audio, longer than"),
    "high_rate": (bombs.high_rate, 400, "sample rate 100000000 Hz is outside"),
    "many_channels": (lambda: bombs.wav(channels=64), 400, "64 channels, more than"),
    "flac_of_silence": (lambda: bombs.flac_of_silence(40 * 60), 413, "declares 40 min"),
    "flac_hiding_its_length": (
        lambda: bombs.flac_of_silence(40 * 60, hide_length=True),
        413,
        "longer than the limit of 25 min",
    ),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_bomb_gets_a_4xx_within_seconds_and_bounded_memory(
    server: LiveServer, shape: str
) -> None:
    make, status, message = SHAPES[shape]
    bomb = make()
    assert len(bomb) < 2 * MiB
    with peak_rss_delta() as rise, httpx.Client(base_url=server.http_url, timeout=20) as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("bomb.audio", bomb)},
            data={"model": "whisper-1"},
        )
        grew = rise()
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "file"
    assert message in error["message"]
    assert grew < RSS_BOUND, f"resident memory rose by {grew / MiB:.0f} MiB"


def test_hugging_face_and_translation_inputs_have_the_same_limits(server: LiveServer) -> None:
    bomb = bombs.flac_of_silence(40 * 60, hide_length=True)
    with httpx.Client(base_url=server.http_url, timeout=20) as client:
        hf = client.post(
            "/models/whisper-tiny.en", content=bomb, headers={"Content-Type": "audio/flac"}
        )
        translation = client.post(
            "/v1/audio/translations",
            files={"file": ("bomb.flac", bomb)},
            data={"model": "whisper-1"},
        )
    assert hf.status_code == 413, hf.text
    assert "longer than the limit of 25 min" in hf.text
    assert translation.status_code == 413, translation.text
