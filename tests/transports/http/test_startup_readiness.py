"""A server that answers while its models load: /health reports each model's state,
a request that needs the loading recogniser gets 503 with Retry-After in OpenAI's
error shape, a Realtime session is refused with 1013, and once the model is in
everything works.

The slow model is real: a registered ASR whose factory waits on an Event, then loads
the embedded Whisper, through the same Runtime loading code `voxwire serve` uses."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from websockets.asyncio.client import connect

from tests import speech
from tests.e2e.console import wer
from tests.live_server import LiveServer, live_server
from voxwire.models.interfaces import AsrModel
from voxwire.models.registry import DEFAULT_ASR, EMBEDDED_MODELS, load_asr, register_asr
from voxwire.services.runtime import Runtime

BLOCKED = "blocked-whisper"
RELEASE = threading.Event()


def _blocked_whisper(device: str) -> AsrModel:
    """The embedded Whisper, once the test releases it."""
    if not RELEASE.wait(60):
        raise TimeoutError("the test never released the model")
    return load_asr(DEFAULT_ASR, device=device)


def _block() -> None:
    """Hold the next load of BLOCKED until RELEASE (registering again drops its cache)."""
    RELEASE.clear()
    register_asr(
        BLOCKED, _blocked_whisper, backend="faster-whisper", description="test", licence="MIT"
    )


@pytest.fixture
def loading() -> Iterator[LiveServer]:
    """A live server whose streaming recogniser is still loading (until RELEASE)."""
    _block()
    runtime = Runtime.start(BLOCKED, specs=EMBEDDED_MODELS, model_wait_s=0.3)
    runtime.start_loading()
    try:
        with live_server(runtime) as live:
            yield live
    finally:
        RELEASE.set()
        runtime.close()


def _health(live: LiveServer) -> dict:  # type: ignore[type-arg]
    response = httpx.get(live.http_url + "/health", timeout=10)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _wait_status(live: LiveServer, status: str, within: float = 60) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        health = _health(live)
        if health["status"] == status:
            return health
        time.sleep(0.05)
    raise AssertionError(f"/health never said {status}: {health}")


def test_health_reports_each_model_while_the_recogniser_loads(loading: LiveServer) -> None:
    health = _health(loading)
    assert health["status"] == "loading"
    assert health["models"]["asr"] == BLOCKED
    assert health["models"]["streaming"] == "loading"
    assert health["models"]["states"][BLOCKED] == "loading"
    assert health["models"]["states"]["vader"] == "idle"  # loads on first use
    assert "asr_worker" not in health  # no streaming worker yet
    RELEASE.set()
    ready = _wait_status(loading, "ok")
    assert ready["models"]["states"][BLOCKED] == "ready"
    assert ready["models"]["streaming"] == "ready"
    assert ready["models"]["load_seconds"][BLOCKED] >= 0
    assert ready["asr_worker"]["queue_depth"] == 0


def test_a_request_for_the_loading_model_gets_503_with_retry_after_then_works(
    loading: LiveServer, one_sentence_wav: Path
) -> None:
    files = {"file": ("one.wav", one_sentence_wav.read_bytes(), "audio/wav")}
    url = loading.http_url + "/v1/audio/transcriptions"
    refused = httpx.post(url, files=files, timeout=30)
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "model_loading" and error["type"] == "invalid_request_error"
    assert BLOCKED in error["message"] and set(error) == {"message", "type", "param", "code"}

    RELEASE.set()
    _wait_status(loading, "ok")
    answered = httpx.post(url, files=files, timeout=60)
    assert answered.status_code == 200, answered.text
    assert wer(speech.SENTENCES[0], answered.json()["text"]) <= 0.1


def test_a_realtime_session_opened_while_loading_is_refused_with_1013(
    loading: LiveServer,
) -> None:
    async def main() -> tuple[dict, int | None]:  # type: ignore[type-arg]
        async with connect(loading.ws_url) as ws:
            event = json.loads(await ws.recv())
            await ws.wait_closed()
            return event, ws.close_code

    event, code = asyncio.run(main())
    assert event["type"] == "error" and event["error"]["code"] == "model_loading"
    assert code == 1013
    RELEASE.set()
    _wait_status(loading, "ok")

    async def opened() -> str:
        async with connect(loading.ws_url) as ws:
            return str(json.loads(await ws.recv())["type"])

    assert asyncio.run(opened()) == "session.created"


def test_a_session_that_starts_within_the_wait_waits_for_the_model() -> None:
    _block()
    runtime = Runtime.start(BLOCKED, specs=EMBEDDED_MODELS, model_wait_s=30)
    runtime.start_loading()
    try:
        with live_server(runtime) as live:
            threading.Timer(0.5, RELEASE.set).start()

            async def opened() -> str:
                async with connect(live.ws_url) as ws:
                    return str(json.loads(await ws.recv())["type"])

            assert asyncio.run(opened()) == "session.created"
            assert runtime.streaming_ready
    finally:
        RELEASE.set()
        runtime.close()
