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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from voxwire.engine.errors import VoxwireError, describe
from voxwire.services import speakers, workflows
from voxwire.services.reply_handlers import build_handler
from voxwire.services.reply_openai_chat import ChatSettings
from voxwire.services.runtime import Runtime
from voxwire.transports.http import hf as http_hf
from voxwire.transports.http import openai as http_openai
from voxwire.transports.http.auth import ApiKeyMiddleware
from voxwire.transports.http.limits import BodyLimitMiddleware
from voxwire.transports.http.metrics import AppMetrics, HttpMetricsMiddleware
from voxwire.transports.realtime.websocket import RealtimeLimits, SessionSlots, serve_realtime
from voxwire.transports.webrtc import calls as webrtc

log = logging.getLogger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """What `voxwire serve` is told (command line or configuration file)."""

    realtime: RealtimeLimits = field(default_factory=RealtimeLimits)
    ping_interval_s: float | None = 20.0
    """Keepalive pings on every WebSocket; None sends none."""
    ping_timeout_s: float = 20.0
    """A peer that does not answer a ping within this is disconnected (half-open TCP)."""
    max_upload_bytes: int = 25 * MiB
    """Larger request bodies get 413 without being read whole."""
    max_workflow_input_bytes: int = 20 * MiB
    data_dir: Path = field(default_factory=lambda: Path("voxwire-data"))
    """Where workflows (SQLite) and other state persist."""
    allow_url_inputs: bool = False
    """Whether workflow inputs may be URLs the server fetches (never private addresses)."""
    url_fetch_timeout_s: float = 10.0
    api_keys: tuple[str, ...] = ()
    """Bearer keys; empty means no authentication."""
    public_metrics: bool = False
    """Serve /metrics without an API key even when keys are set (/health always is)."""
    result_cache_entries: int = 256
    """Hugging Face endpoint result cache (x-use-cache)."""
    assistant: str = "echo"
    """The reply handler of realtime sessions: echo, openai-chat or module:function."""
    chat: ChatSettings = field(default_factory=ChatSettings)
    """Where the openai-chat handler asks (base URL, model, key, timeout)."""
    ice_servers: tuple[webrtc.IceServer, ...] = ()
    """STUN/TURN servers for WebRTC calls; none: host candidates only (no STUN lookup)."""
    webrtc_media_timeout_s: float = 10.0
    """A WebRTC call whose microphone track sends nothing this long is ended."""

    def uvicorn_options(self) -> dict[str, Any]:
        """The uvicorn.Config keywords that carry these settings."""
        return {
            "ws": "websockets-sansio",
            "ws_max_size": self.realtime.max_message_bytes,
            "ws_ping_interval": self.ping_interval_s,
            "ws_ping_timeout": self.ping_timeout_s,
        }


def openai_error_body(error: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, body) in OpenAI's error shape for any exception."""
    desc = describe(error)
    return desc.http_status, {
        "error": {
            "message": desc.message,
            "type": "invalid_request_error" if desc.is_peer_error else "server_error",
            "param": desc.param,
            "code": desc.code,
        }
    }


def create_app(runtime: Runtime, settings: ServerSettings | None = None) -> FastAPI:
    """Build the app on loaded models; the caller owns (and closes) the runtime."""
    settings = settings or ServerSettings()
    from importlib.metadata import version

    reply_handler = build_handler(settings.assistant, settings.chat)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await reply_handler.aclose()

    app = FastAPI(title="voxwire", version=version("voxwire"), lifespan=lifespan)
    slots = SessionSlots(settings.realtime.max_sessions)
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.realtime_slots = slots
    app.state.reply_handler = reply_handler

    @app.exception_handler(VoxwireError)
    async def voxwire_error(_request: Request, exc: VoxwireError) -> JSONResponse:
        status, body = openai_error_body(exc)
        if status >= 500:
            log.warning("request failed: %s", exc)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error while answering a request", exc_info=exc)
        status, body = openai_error_body(exc)  # says only "server error"
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        return JSONResponse(
            {
                "error": {
                    "message": f"{param or 'request'}: {first.get('msg')}",
                    "type": "invalid_request_error",
                    "param": param or None,
                    "code": "invalid_value",
                }
            },
            status_code=400,
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """200 once the models are loaded (the app exists only after they are)."""
        worker = runtime.asr_worker
        return {
            "status": "ok",
            "models": {"asr": runtime.asr.name, "vad": "silero"},
            "realtime_sessions": {"active": slots.in_use, "max": slots.limit},
            "asr_worker": {
                "queue_depth": worker.queue_depth,
                "load": round(worker.load, 3),
                **dataclasses.asdict(worker.stats),
            },
        }

    @app.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket) -> None:
        await serve_realtime(websocket, runtime, slots, settings.realtime, reply_handler)

    _add_metrics_auth_and_limits(app, runtime, slots, settings)

    # -- routers of the other APIs (each module: router(runtime, settings)) ----------------
    # speaker-id: the enrolled speakers as an audio classifier (see voxwire.services.speakers)
    reserved: dict[str, http_hf.ReservedClassifier] = {}
    cards: list[Callable[[int], http_openai.ModelCard]] = []
    if speakers.has_encoder(runtime):
        reserved[speakers.SPEAKER_ID] = speakers.speaker_classifier(runtime, settings).reserved()
        cards.append(functools.partial(speakers.speaker_id_card, runtime))
    app.include_router(http_openai.router(runtime, settings, extra_models=cards))
    app.include_router(http_hf.router(runtime, settings, reserved=reserved))
    app.include_router(workflows.router(runtime, settings))
    app.include_router(speakers.router(runtime, settings))
    app.include_router(webrtc.router(runtime, settings))  # POST /v1/realtime/calls
    app.include_router(webrtc.page_router())  # the browser demo at / (its files only)

    return app


def _add_metrics_auth_and_limits(
    app: FastAPI, runtime: Runtime, slots: SessionSlots, settings: ServerSettings
) -> None:
    """/metrics, and the pure ASGI middleware that wraps every route (outermost first):
    HTTP metrics, then API keys (before routing), then the request body limit."""
    metrics = AppMetrics(runtime, slots)
    app.state.metrics = metrics
    app.add_api_route(
        "/metrics",
        metrics.endpoint,
        methods=["GET"],
        response_class=PlainTextResponse,
        summary="Prometheus metrics (text format)",
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    public = ["/health", *webrtc.PAGE_PATHS, *(["/metrics"] if settings.public_metrics else [])]
    app.add_middleware(
        ApiKeyMiddleware,
        keys=settings.api_keys,
        public_paths=public,
        on_reject=metrics.on_auth_rejected,
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics, routes=lambda: app.router.routes)
