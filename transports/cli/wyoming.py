"""`voxwire wyoming`: a Wyoming-only process (Home Assistant's protocol on TCP, a unix
socket or stdio). `voxwire serve --wyoming URI` runs the same listeners beside uvicorn
(see :mod:`voxwire.transports.cli.serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voxwire.transports.cli.main import notice
from voxwire.transports.cli.options import ConfigOption

if TYPE_CHECKING:
    from voxwire.transports.wyoming.service import WyomingService

DEFAULT_URI = "tcp://127.0.0.1:10300"


def register(app: typer.Typer) -> None:
    """Add the `wyoming` command to `app`."""
    app.command("wyoming")(wyoming)


def wyoming(
    uri: Annotated[
        list[str] | None,
        typer.Option(
            "--uri",
            help="Where to listen: tcp://HOST:PORT, unix:///PATH or stdio:// (repeatable; "
            f"stdio alone). (default: {DEFAULT_URI})",
        ),
    ] = None,
    config: ConfigOption = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Streaming ASR model (as `voxwire serve --model`)."),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option("--max-connections", min=1, help="Connections at once. (default: 32)"),
    ] = None,
    max_sessions: Annotated[
        int | None,
        typer.Option("--max-sessions", min=1, help="Audio streams at once. (default: 64)"),
    ] = None,
) -> None:
    """Serve only Home Assistant's Wyoming protocol: asr, tts and wake."""
    from voxwire.transports.cli import config as configuration
    from voxwire.transports.cli.allocator import tune_server_allocator
    from voxwire.transports.cli.serve import load_reporter, preload_ids, start_runtime
    from voxwire.transports.wyoming.server import check_uri

    tune_server_allocator()  # before any model worker thread exists
    uris = list(uri or [DEFAULT_URI])
    for one in uris:
        try:
            check_uri(one)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--uri") from None
    stdio = [u for u in uris if u.startswith("stdio:")]
    if stdio and len(uris) > 1:
        raise typer.BadParameter("stdio:// is served alone", param_hint="--uri")
    overrides: dict[str, Any] = {
        "max_sessions": max_sessions,
        "wyoming_max_connections": max_connections,
    }
    plan = configuration.resolve(
        None if config is None else configuration.read_config(config),
        {k: v for k, v in overrides.items() if v is not None},
        source=None if config is None else str(config),
    )
    runtime = start_runtime(plan, model)
    load = functools.partial(
        runtime.start_loading, preload_ids(runtime, plan.preload), on_loaded=load_reporter(runtime)
    )
    try:
        from voxwire.transports.wyoming.server import build_service
        from voxwire.transports.wyoming.service import LocalSlots

        settings = plan.settings
        service = build_service(
            runtime,
            LocalSlots(settings.realtime.max_sessions),
            max_connections=settings.wyoming_max_connections,
            data_dir=settings.data_dir,
        )
        if stdio:
            from voxwire.transports.wyoming.server import serve_stdio

            load()
            asyncio.run(serve_stdio(service))
        else:
            asyncio.run(_serve_until_signal(service, uris, load))
    finally:
        runtime.close()


async def _serve_until_signal(
    service: WyomingService, uris: list[str], load: Callable[[], None]
) -> None:
    """Listen on `uris`, then `load` the models (in the background) until a signal."""
    from voxwire.transports.wyoming.server import WyomingServers

    servers = WyomingServers(service, uris)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await servers.start()
    notice(f"serving Wyoming on {', '.join(uris)}")
    load()
    try:
        await stop.wait()
    finally:
        notice("stopping")
        await servers.stop()
