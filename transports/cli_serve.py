"""`voxwire serve`: load the models, then serve the network APIs with uvicorn.

The models load before the socket opens, so once the server answers, `/health`
is 200 and every route is ready.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

import typer

from transports.cli import notice

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the `serve` command to `app`."""
    app.command("serve")(serve)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="ASR model spec (default: embedded).")
    ] = None,
    max_sessions: Annotated[
        int,
        typer.Option(
            "--max-sessions",
            min=1,
            help="Realtime sessions at once; the next gets close code 1013.",
        ),
    ] = 64,
    max_message_mb: Annotated[
        float,
        typer.Option("--max-message-mb", min=0.01, help="Largest WebSocket message accepted."),
    ] = 8.0,
    ping_interval: Annotated[
        float,
        typer.Option("--ping-interval", min=0.0, help="Seconds between keepalive pings; 0: none."),
    ] = 20.0,
    ping_timeout: Annotated[
        float,
        typer.Option("--ping-timeout", min=0.1, help="Seconds to wait for a pong before closing."),
    ] = 20.0,
) -> None:
    """Serve the OpenAI Realtime API on /v1/realtime (more APIs to come) and /health."""
    import uvicorn

    from transports.app import ServerSettings, create_app
    from transports.realtime_ws import RealtimeLimits
    from transports.runtime import Runtime

    started = time.perf_counter()
    runtime = Runtime.load(model)
    notice(f"loaded {runtime.asr.name} and the Silero VAD in {time.perf_counter() - started:.1f} s")
    limits = RealtimeLimits(
        max_sessions=max_sessions, max_message_bytes=int(max_message_mb * 1024 * 1024)
    )
    settings = ServerSettings(
        realtime=limits, ping_interval_s=ping_interval or None, ping_timeout_s=ping_timeout
    )
    config = uvicorn.Config(
        create_app(runtime, settings),
        host=host,
        port=port,
        log_config=None,  # keep voxwire's logging set-up
        timeout_graceful_shutdown=5,
        **settings.uvicorn_options(),
    )
    notice(f"serving on http://{host}:{port} (realtime: ws://{host}:{port}/v1/realtime)")
    try:
        uvicorn.Server(config).run()
    finally:
        runtime.close()
