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

from voxwire.transports.cli.main import EXIT_ERROR, notice
from voxwire.transports.cli.options import ConfigOption, ServedAsrModel

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
    model: ServedAsrModel = None,
    max_connections: Annotated[
        int | None,
        typer.Option("--max-connections", min=1, help="Connections at once. (default: 32)"),
    ] = None,
    max_sessions: Annotated[
        int | None,
        typer.Option("--max-sessions", min=1, help="Audio streams at once. (default: 64)"),
    ] = None,
) -> None:
    """Serve only Home Assistant's Wyoming protocol: asr, tts and wake.

    If the streaming recogniser (or a model the configuration marks `preload`) fails to
    load, the command stops with its error line (exit code 1)."""
    from voxwire.transports.cli import config as configuration
    from voxwire.transports.cli.allocator import tune_server_allocator
    from voxwire.transports.cli.serve import start_loading, start_runtime
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
    plan = configuration.load(config, {k: v for k, v in overrides.items() if v is not None})
    runtime = start_runtime(plan, model)
    load = functools.partial(start_loading, runtime, plan.preload)
    try:
        from voxwire.services.slots import Slots
        from voxwire.transports.wyoming.server import build_service

        settings = plan.settings
        service = build_service(
            runtime,
            Slots(settings.realtime.max_sessions),
            max_connections=settings.wyoming_max_connections,
            data_dir=settings.data_dir,
        )
        if stdio:
            failed = asyncio.run(_serve_stdio(service, load))
        else:
            failed = asyncio.run(_serve_until_signal(service, uris, load))
    finally:
        runtime.close()
    if failed:
        raise typer.Exit(EXIT_ERROR)


StartLoading = Callable[[Callable[[], object]], list[str]]
"""Starts the background loads; a model that must load and fails calls the argument
(from the loading thread). Returns the list that fills with the ids of such models."""


async def _serve_stdio(service: WyomingService, load: StartLoading) -> list[str]:
    """One client on stdin/stdout, until stdin closes or a model that must load fails."""
    from voxwire.transports.wyoming.server import serve_stdio

    serving = asyncio.ensure_future(serve_stdio(service))
    loop = asyncio.get_running_loop()
    failed = load(functools.partial(loop.call_soon_threadsafe, serving.cancel))
    try:
        await serving
    except asyncio.CancelledError:
        if not failed:
            raise
    return failed


async def _serve_until_signal(
    service: WyomingService, uris: list[str], load: StartLoading
) -> list[str]:
    """Listen on `uris`, then `load` the models (in the background) until a signal or a
    model that must load fails; the ids of those that failed."""
    from voxwire.transports.wyoming.server import WyomingServers

    servers = WyomingServers(service, uris)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await servers.start()
    notice(f"serving Wyoming on {', '.join(uris)}")
    failed = load(functools.partial(loop.call_soon_threadsafe, stop.set))
    try:
        await stop.wait()
    finally:
        notice("stopping")
        await servers.stop()
    return failed
