"""`GET /metrics` on a live server: HTTP requests by route template, realtime sessions,
model workers and the per-session audio counters (live and finished)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import speech
from tests.live_server import LiveServer, live_server
from tests.realtime_client import pcm16, realtime
from voxwire.services.runtime import Runtime
from voxwire.transports.http.app import create_app
from voxwire.transports.http.metrics import UNMATCHED, route_template
from voxwire.transports.http.settings import ServerSettings
from voxwire.transports.realtime.websocket import RealtimeLimits

ASR = {"model": "whisper-tiny.en", "task": "automatic-speech-recognition"}


@pytest.fixture(scope="module")
def live(runtime: Runtime) -> Iterator[LiveServer]:
    settings = ServerSettings(realtime=RealtimeLimits(max_sessions=1))
    with live_server(runtime, settings) as server:
        yield server


def scrape(server: LiveServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(server.http_url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_each_app_has_its_own_registry(runtime: Runtime) -> None:
    first, second = create_app(runtime), create_app(runtime)
    assert first.state.metrics.registry is not second.state.metrics.registry
    first.state.metrics.requests.labels("GET", "/health", "200").inc()
    assert b'route="/health"' in first.state.metrics.exposition()
    assert b'route="/health"' not in second.state.metrics.exposition()


def test_http_requests_are_labelled_by_route_template(live: LiveServer) -> None:
    paths = live.server.config.app.openapi()["paths"]  # type: ignore[attr-defined]
    with httpx.Client(base_url=live.http_url, timeout=10) as client:
        assert client.get("/health").status_code == 200
        assert client.post("/health").status_code == 405
        for i in range(3):
            assert client.get(f"/no/such/{i}").status_code == 404
        if "/models/{model_id}" in paths:
            client.post("/models/vader", json={"inputs": "I love it"})
    samples = scrape(live)
    assert (
        value(samples, "voxwire_http_requests_total", method="GET", route="/health", status="200")
        >= 1
    )
    assert (
        value(samples, "voxwire_http_requests_total", method="POST", route="/health", status="405")
        == 1
    )
    assert (
        value(samples, "voxwire_http_requests_total", method="GET", route=UNMATCHED, status="404")
        == 3
    )
    assert (
        value(samples, "voxwire_http_request_duration_seconds_count", method="GET", route="/health")
        >= 1
    )
    routes = {
        dict(labels).get("route")
        for name, labels in samples
        if name == "voxwire_http_requests_total"
    }
    assert not any(route and route.startswith("/no/such") for route in routes)
    if "/models/{model_id}" in paths:
        assert "/models/{model_id}" in routes, routes


def test_requests_refused_before_routing_still_get_their_template(runtime: Runtime) -> None:
    """A 401 is answered before routing; its label is the template, never the raw path."""
    settings = ServerSettings(api_keys=("k",), public_metrics=True)
    with live_server(runtime, settings) as server:
        paths = server.server.config.app.openapi()["paths"]  # type: ignore[attr-defined]
        with httpx.Client(base_url=server.http_url, timeout=10) as client:
            assert client.get("/openapi.json").status_code == 401
            if "/v1/models/{model_id}" in paths:
                assert client.get("/v1/models/some-model").status_code == 401
        samples = scrape(server)
    assert (
        value(
            samples,
            "voxwire_http_requests_total",
            method="GET",
            route="/openapi.json",
            status="401",
        )
        == 1
    )
    if "/v1/models/{model_id}" in paths:
        labelled = value(
            samples,
            "voxwire_http_requests_total",
            method="GET",
            route="/v1/models/{model_id}",
            status="401",
        )
        assert labelled == 1


def test_route_template_of_nothing_is_unmatched() -> None:
    scope = {"type": "http", "path": "/x", "method": "GET", "root_path": ""}
    assert route_template(scope, []) == UNMATCHED


def test_realtime_sessions_workers_and_audio_counters(live: LiveServer) -> None:
    audio = speech.utterances([speech.SENTENCES[0]], lead_s=0.3, tail_s=1.0)
    before = scrape(live)

    async def session() -> tuple[
        dict[str, int], dict[tuple[str, frozenset[tuple[str, str]]], float], int | None
    ]:
        async with realtime(live.ws_url) as client:
            await client.update(format={"type": "audio/pcm", "rate": 16000})
            await client.stream(pcm16(audio), rate=16000)
            await client.transcripts(1)
            counters = await client.stats()
            during = await asyncio.to_thread(scrape, live)
            # the limit is 1 session: a second connection is refused with 1013
            from websockets.asyncio.client import connect
            from websockets.exceptions import ConnectionClosed

            async with connect(live.ws_url) as extra:
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(extra.recv(), 10)
            return counters, during, closed.value.rcvd.code if closed.value.rcvd else None

    counters, during, code = asyncio.run(session())
    assert code == 1013
    live.wait_until_idle()
    after = scrape(live)

    assert value(during, "voxwire_realtime_sessions_active") == 1
    assert value(after, "voxwire_realtime_sessions_active") == 0
    assert value(after, "voxwire_realtime_sessions_limit") == 1
    assert (
        value(after, "voxwire_realtime_sessions_opened_total")
        == value(before, "voxwire_realtime_sessions_opened_total") + 1
    )
    assert (
        value(after, "voxwire_realtime_sessions_refused_total")
        == value(before, "voxwire_realtime_sessions_refused_total") + 1
    )

    # the live session's counters are visible while it runs, and kept once it ends
    for name in (
        "samples_in",
        "samples_resampled",
        "samples_segmented",
        "samples_transcribed",
        "final_decodes",
    ):
        metric = f"voxwire_session_{name}_total"
        assert counters[name] > 0, name
        assert value(during, metric) - value(before, metric) == counters[name], name
        assert value(after, metric) - value(before, metric) >= counters[name], name
    for name in ("jobs_dropped", "evicted_samples", "transcriptions_failed"):
        assert value(after, f"voxwire_session_{name}_total") == 0

    streaming = {**ASR, "pool": "streaming"}
    completed = "voxwire_model_requests_completed_total"
    assert value(after, completed, **streaming) > value(before, completed, **streaming)
    assert value(after, "voxwire_model_busy_seconds_total", **streaming) > 0
    assert (("voxwire_model_queue_depth", frozenset(streaming.items()))) in after
    assert value(after, "voxwire_model_loaded", **ASR) == 1
    assert (
        "voxwire_model_loaded",
        frozenset({"model": "vader", "task": "text-classification"}.items()),
    ) in after
