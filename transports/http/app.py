"""The ASGI application: one app for every network API, on one Runtime.

Each API lives in its own module that exports ``router(runtime, settings)``;
this module mounts them, maps voxwire errors to HTTP answers in one place,
serves /health and /metrics, and wraps every route in the metrics, API-key and
body-limit middleware.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse

from voxwire.engine.errors import describe
from voxwire.services import speakers
from voxwire.services.inference import ReservedClassifier
from voxwire.services.replies import build_handler
from voxwire.services.runtime import Runtime
from voxwire.transports.http import chat as http_chat
from voxwire.transports.http import errors as http_errors
from voxwire.transports.http import hf as http_hf
from voxwire.transports.http import openai as http_openai
from voxwire.transports.http import speakers as speaker_routes
from voxwire.transports.http import workflows
from voxwire.transports.http.auth import ApiKeyMiddleware
from voxwire.transports.http.disconnect import CancelOnDisconnect
from voxwire.transports.http.limits import BodyLimitMiddleware
from voxwire.transports.http.metrics import AppMetrics, HttpMetricsMiddleware
from voxwire.transports.http.pages import page_files, page_router
from voxwire.transports.http.settings import ServerSettings
from voxwire.transports.http.transport_scope import ExposeTransport
from voxwire.transports.realtime.websocket import SessionSlots, serve_realtime
from voxwire.transports.webrtc import calls as webrtc
from voxwire.transports.wyoming.limits import WyomingStats

log = logging.getLogger(__name__)


def health_report(runtime: Runtime, slots: SessionSlots) -> dict[str, Any]:
    """The body of /health: readiness per model, sessions, the streaming worker."""
    states = runtime.model_states()
    report: dict[str, Any] = {
        "status": runtime.status(),
        "models": {
            "asr": runtime.asr_name,
            "vad": "silero",
            "streaming": runtime.streaming_state,
            "states": states,
            "load_seconds": {
                entry.spec.id: round(entry.load_seconds, 2)
                for entry in runtime.entries()
                if entry.loaded and entry.load_seconds is not None
            },
            "failed": {
                model_id: describe(error).code
                for model_id, error in runtime.load_errors().items()
                if states.get(model_id) == "failed"
            },
        },
        "realtime_sessions": {"active": slots.in_use, "max": slots.limit},
    }
    if runtime.streaming_ready:
        worker = runtime.asr_worker
        report["asr_worker"] = {
            "queue_depth": worker.queue_depth,
            "load": round(worker.load, 3),
            **dataclasses.asdict(worker.stats),
        }
    return report


def create_app(
    runtime: Runtime,
    settings: ServerSettings | None = None,
    *,
    slots: SessionSlots | None = None,
    wyoming: WyomingStats | None = None,
) -> FastAPI:
    """Build the app on loaded models; the caller owns (and closes) the runtime.

    `slots`: the session limit, when the caller shares it with another transport
    (Wyoming); `wyoming`: that transport's counters, shown in /metrics."""
    settings = settings or ServerSettings()
    from importlib.metadata import version

    reply_handler = build_handler(settings.assistant, settings.chat, runtime)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await reply_handler.aclose()

    app = FastAPI(title="voxwire", version=version("voxwire"), lifespan=lifespan)
    # What the routes share, made once here and handed to each route explicitly; app.state
    # only shows them to diagnostics and tests (no handler reads it).
    slots = slots or SessionSlots(settings.realtime.max_sessions)
    calls = webrtc.CallRegistry()
    speaker_store = speakers.store_for(settings.data_dir)
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.realtime_slots = slots
    app.state.reply_handler = reply_handler
    app.state.webrtc_calls = calls

    http_errors.install(app)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Always 200 while the process serves; `status` says whether the models are
        ready (ok), still loading (loading), partly failed (degraded) or whether the
        streaming recogniser failed (failed); `models.states` has each model's state."""
        return health_report(runtime, slots)

    @app.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket) -> None:
        await serve_realtime(
            websocket, runtime, slots, settings.realtime, reply_handler, speaker_store
        )

    pages = page_files()  # the browser demo's files, listed once (public: see below)
    _add_metrics_auth_and_limits(app, runtime, slots, settings, tuple(pages), wyoming)

    # -- routers of the other APIs, each given what it needs --------------------------------
    # speaker-id: the enrolled speakers as an audio classifier (see voxwire.services.speakers)
    reserved: dict[str, ReservedClassifier] = {}
    cards: list[Callable[[int], http_openai.ModelCard]] = []
    if speakers.has_encoder(runtime):
        classifier = speakers.SpeakerClassifier(runtime, speaker_store)
        reserved[speakers.SPEAKER_ID] = classifier.reserved()
        cards.append(functools.partial(speaker_routes.speaker_id_card, runtime))
    app.include_router(http_openai.router(runtime, settings, extra_models=cards))
    app.include_router(http_chat.router(runtime, settings, settings.chat_limits))
    app.include_router(http_hf.router(runtime, settings, reserved=reserved))
    app.include_router(workflows.router(runtime, settings))
    app.include_router(
        speaker_routes.router(
            runtime,
            speaker_store,
            max_upload_bytes=settings.max_upload_bytes,
            audio_limits=settings.audio_limits,
        )
    )
    app.include_router(
        webrtc.router(  # POST /v1/realtime/calls
            runtime,
            limits=settings.realtime,
            slots=slots,
            registry=calls,
            reply_handler=reply_handler,
            speakers=speaker_store,
            ice_servers=settings.ice_servers,
            media_timeout_s=settings.webrtc_media_timeout_s,
        )
    )
    app.include_router(page_router(pages))  # the browser demo at / (its files only)

    return app


def _add_metrics_auth_and_limits(
    app: FastAPI,
    runtime: Runtime,
    slots: SessionSlots,
    settings: ServerSettings,
    page_paths: tuple[str, ...],
    wyoming: WyomingStats | None = None,
) -> None:
    """/metrics, and the pure ASGI middleware that wraps every route (outermost first):
    HTTP metrics, then API keys (before routing), then the request body limit, then the
    cancellation of requests whose client hung up. The page's
    paths stay public even when API keys are set (the page asks for a key)."""
    metrics = AppMetrics(runtime, slots, wyoming)
    app.state.metrics = metrics
    app.add_api_route(
        "/metrics",
        metrics.endpoint,
        methods=["GET"],
        response_class=PlainTextResponse,
        summary="Prometheus metrics (text format)",
    )
    metrics.watch_routes(lambda: app.router.routes)
    app.add_middleware(CancelOnDisconnect, on_cancel=metrics.on_cancelled)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    public = ["/health", *page_paths, *(["/metrics"] if settings.public_metrics else [])]
    app.add_middleware(
        ApiKeyMiddleware,
        keys=settings.api_keys,
        public_paths=public,
        on_reject=metrics.on_auth_rejected,
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics, routes=lambda: app.router.routes)
    app.add_middleware(ExposeTransport)  # outermost: it needs the server's own `send`
