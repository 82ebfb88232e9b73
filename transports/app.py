"""The ASGI application: one app for every network API, on one Runtime.

Later transports add their routes here; each route module only translates
between its protocol and the engine.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, WebSocket

from transports.realtime_ws import RealtimeLimits, SessionSlots, serve_realtime
from transports.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    """What `voxwire serve` is told on its command line."""

    realtime: RealtimeLimits = field(default_factory=RealtimeLimits)
    ping_interval_s: float | None = 20.0
    """Keepalive pings on every WebSocket; None sends none."""
    ping_timeout_s: float = 20.0
    """A peer that does not answer a ping within this is disconnected (half-open TCP)."""

    def uvicorn_options(self) -> dict[str, Any]:
        """The uvicorn.Config keywords that carry these settings."""
        return {
            "ws": "websockets-sansio",
            "ws_max_size": self.realtime.max_message_bytes,
            "ws_ping_interval": self.ping_interval_s,
            "ws_ping_timeout": self.ping_timeout_s,
        }


def create_app(runtime: Runtime, settings: ServerSettings | None = None) -> FastAPI:
    """Build the app on loaded models; the caller owns (and closes) the runtime."""
    settings = settings or ServerSettings()
    from importlib.metadata import version

    app = FastAPI(title="voxwire", version=version("voxwire"))
    slots = SessionSlots(settings.realtime.max_sessions)
    app.state.runtime = runtime
    app.state.realtime_slots = slots

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
        await serve_realtime(websocket, runtime, slots, settings.realtime)

    return app
