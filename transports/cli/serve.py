"""`voxwire serve`: bind the port, then serve the network APIs with uvicorn while the
models load in the background.

The port is taken first (or the command fails in one line naming the address); the
server answers `/health` at once, and `/health` says which models are ready, loading
or failed. A request that needs a model still loading waits for it (bounded), then
gets 503 with Retry-After. If the streaming recogniser or a model the configuration
marks `preload` fails to load, the server stops with one error line (exit code 1);
another model that fails is reported in /health and the log.

Settings come from the built-in defaults, then `--config FILE` (TOML, see
transports/config.py), then the command line, each overriding the one before; API
keys from `--api-key`, else `VOXWIRE_API_KEYS`, else the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from voxwire.engine.errors import ModelLoadError, ModelNotFound, VoxwireError
from voxwire.transports.cli.main import EXIT_ERROR, describe_exception, error, fail, notice
from voxwire.transports.cli.options import ChatModelOption, ConfigOption, ServedAsrModel

if TYPE_CHECKING:
    import uvicorn

    from voxwire.services.runtime import LoadReport, Runtime
    from voxwire.transports.cli.config import ServeConfig
    from voxwire.transports.wyoming.service import WyomingService

log = logging.getLogger(__name__)

ASR_TASK: Final = "automatic-speech-recognition"


def register(app: typer.Typer) -> None:
    """Add the `serve` command to `app`."""
    app.command("serve")(serve)


def serve(
    config: ConfigOption = None,
    chat_model: ChatModelOption = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on. (default: 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="TCP port. (default: 8000)")
    ] = None,
    model: ServedAsrModel = None,
    max_sessions: Annotated[
        int | None,
        typer.Option(
            "--max-sessions",
            min=1,
            help="Realtime sessions at once; the next gets close code 1013. (default: 64)",
        ),
    ] = None,
    max_message_mb: Annotated[
        float | None,
        typer.Option(
            "--max-message-mb", min=0.01, help="Largest WebSocket message accepted. (default: 8)"
        ),
    ] = None,
    ping_interval: Annotated[
        float | None,
        typer.Option(
            "--ping-interval",
            min=0.0,
            help="Seconds between keepalive pings; 0: none. (default: 20)",
        ),
    ] = None,
    ping_timeout: Annotated[
        float | None,
        typer.Option(
            "--ping-timeout",
            min=0.1,
            help="Seconds to wait for a pong before closing. (default: 20)",
        ),
    ] = None,
    max_upload_mb: Annotated[
        float | None,
        typer.Option(
            "--max-upload-mb",
            min=0.001,
            help="Larger request bodies get 413. (default: 25)",
        ),
    ] = None,
    max_audio_minutes: Annotated[
        float | None,
        typer.Option(
            "--max-audio-minutes",
            min=0.001,
            help="Longer decoded audio in an HTTP or workflow input gets 413. (default: 25)",
        ),
    ] = None,
    model_wait: Annotated[
        float | None,
        typer.Option(
            "--model-wait",
            min=0.001,
            help="Seconds a request that needs a model still loading waits for it; then "
            "503 with Retry-After. (default: 30)",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where state persists. (default: voxwire-data)"),
    ] = None,
    allow_url_inputs: Annotated[
        bool | None,
        typer.Option(
            "--allow-url-inputs/--no-url-inputs",
            help="Let workflow inputs be URLs the server fetches. (default: no)",
        ),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            help="Require 'Authorization: Bearer KEY' (repeatable; also VOXWIRE_API_KEYS, "
            "comma-separated). /health never needs a key.",
        ),
    ] = None,
    public_metrics: Annotated[
        bool | None,
        typer.Option(
            "--public-metrics/--protected-metrics",
            help="/metrics without an API key when keys are set. (default: protected)",
        ),
    ] = None,
    ice_server: Annotated[
        list[str] | None,
        typer.Option(
            "--ice-server",
            help="STUN/TURN server for WebRTC calls, e.g. stun:stun.example.org:3478 or "
            "turn:turn.example.org:3478 (repeatable). (default: none, host candidates only)",
        ),
    ] = None,
    ice_username: Annotated[
        str | None, typer.Option("--ice-username", help="Username for the TURN servers.")
    ] = None,
    ice_credential: Annotated[
        str | None, typer.Option("--ice-credential", help="Credential for the TURN servers.")
    ] = None,
    assistant: Annotated[
        str | None,
        typer.Option(
            "--assistant",
            help="Who writes the spoken replies of realtime sessions: echo (says back what "
            "it heard), local (the chat model, offline; a native audio LLM hears the "
            "user's audio itself), openai-chat (an "
            "OpenAI-compatible /v1/chat/completions) or "
            "module:function (a Python callable). (default: echo)",
        ),
    ] = None,
    assistant_url: Annotated[
        str | None,
        typer.Option(
            "--assistant-url",
            help="openai-chat: the API's base URL. (default: http://127.0.0.1:8080/v1)",
        ),
    ] = None,
    assistant_model: Annotated[
        str | None,
        typer.Option("--assistant-model", help="openai-chat: the model to ask. (default: default)"),
    ] = None,
    assistant_api_key: Annotated[
        str | None,
        typer.Option(
            "--assistant-api-key",
            envvar="VOXWIRE_ASSISTANT_API_KEY",
            show_envvar=True,
            help="openai-chat: the API key sent as a Bearer token.",
        ),
    ] = None,
    assistant_timeout: Annotated[
        float | None,
        typer.Option(
            "--assistant-timeout",
            min=0.1,
            help="openai-chat: seconds to wait to connect and between chunks. (default: 30)",
        ),
    ] = None,
    wyoming: Annotated[
        list[str] | None,
        typer.Option(
            "--wyoming",
            help="Also serve Home Assistant's Wyoming protocol (asr, tts, wake) on "
            "tcp://HOST:PORT or unix:///PATH, on the same models and session limit "
            "(repeatable). (default: not served)",
        ),
    ] = None,
) -> None:
    """Serve the OpenAI Realtime API on /v1/realtime, the HTTP APIs, /health and /metrics."""
    import uvicorn

    from voxwire.transports.cli.allocator import tune_server_allocator
    from voxwire.transports.cli.memory_probe import start_memory_probe

    tune_server_allocator()  # before any model worker thread exists
    start_memory_probe()
    from voxwire.transports.cli import config as configuration
    from voxwire.transports.http.app import create_app
    from voxwire.transports.http.auth import api_keys_from
    from voxwire.transports.realtime.websocket import SessionSlots

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "max_sessions": max_sessions,
        "max_message_mb": max_message_mb,
        "ping_interval": ping_interval,
        "ping_timeout": ping_timeout,
        "max_upload_mb": max_upload_mb,
        "max_audio_minutes": max_audio_minutes,
        "model_wait": model_wait,
        "data_dir": None if data_dir is None else str(data_dir),
        "allow_url_inputs": allow_url_inputs,
        "public_metrics": public_metrics,
        "wyoming": wyoming or None,
    }
    file_config = None if config is None else configuration.read_config(config)
    file_keys = file_config.server.api_keys if file_config is not None else []
    keys = api_keys_from(api_key or [], config=file_keys)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if keys:
        overrides["api_keys"] = list(keys)
    if ice_server:
        from voxwire.transports.webrtc.ice import ice_servers_from

        try:
            servers = ice_servers_from(ice_server, ice_username, ice_credential)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--ice-server") from None
        overrides["ice_servers"] = [
            {"urls": list(s.urls), "username": s.username, "credential": s.credential}
            for s in servers
        ]
    replies = {
        "handler": assistant,
        "base_url": assistant_url,
        "model": assistant_model,
        "api_key": assistant_api_key,
        "timeout": assistant_timeout,
    }
    plan = configuration.resolve(
        file_config,
        overrides,
        source=None if config is None else str(config),
        assistant={k: v for k, v in replies.items() if v is not None},
    )
    plan = configuration.with_chat_model(plan, chat_model)
    from voxwire.services.replies import build_handler

    if plan.settings.assistant != "local":  # local needs the models: checked when they load
        build_handler(plan.settings.assistant, plan.settings.chat)  # a bad --assistant fails now
    runtime = start_runtime(plan, model)  # names checked; nothing loaded yet
    sock = listen(plan.host, plan.port)  # bound before any model loads, or a one-line error
    bound_port = int(sock.getsockname()[1])
    try:
        settings = plan.settings
        service = None
        slots = SessionSlots(settings.realtime.max_sessions)
        if settings.wyoming:
            from voxwire.transports.wyoming.server import build_service

            service = build_service(
                runtime,
                slots,
                max_connections=settings.wyoming_max_connections,
                data_dir=settings.data_dir,
            )
        app = create_app(
            runtime, settings, slots=slots, wyoming=None if service is None else service.stats
        )
        server_config = uvicorn.Config(
            app,
            host=plan.host,
            port=bound_port,
            log_config=None,  # keep voxwire's logging set-up
            timeout_graceful_shutdown=5,
            **settings.uvicorn_options(),
        )
        if settings.api_keys:
            metrics = "public" if settings.public_metrics else "needs a key"
            notice(f"{len(settings.api_keys)} API key(s) needed (/health open, /metrics {metrics})")
        if settings.ice_servers:
            urls = ", ".join(url for server in settings.ice_servers for url in server.urls)
            notice(f"WebRTC ICE servers: {urls}")
        notice(f"spoken replies by the {settings.assistant} assistant")
        where = f"{plan.host}:{bound_port}"
        notice(
            f"serving on http://{where} (realtime: ws://{where}/v1/realtime, "
            f"browser demo: http://{where}/); models load in the background, /health says when"
        )
        server = uvicorn.Server(server_config)

        def stop() -> None:
            server.should_exit = True

        failed = start_loading(runtime, plan.preload, stop)
        if service is None:
            server.run(sockets=[sock])
        else:
            asyncio.run(serve_beside(server, service, list(settings.wyoming), sock))
        if failed:
            raise typer.Exit(EXIT_ERROR)
    finally:
        sock.close()
        runtime.close()


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); a one-line error naming the address (exit
    1) when it cannot be had, e.g. because another server holds the port."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = (
            "; is another server on it? choose another --port"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        fail(f"cannot listen on {host}:{port}: {reason.lower()}{hint}")


async def serve_beside(
    server: uvicorn.Server, service: WyomingService, uris: list[str], sock: socket.socket
) -> None:
    """uvicorn and the Wyoming listeners in one loop; Ctrl-C stops both."""
    from voxwire.transports.wyoming.server import WyomingServers

    servers = WyomingServers(service, uris)
    await servers.start()
    notice(f"serving Wyoming on {', '.join(uris)}")
    try:
        await server.serve(sockets=[sock])
    finally:
        # Ctrl-C cancels this task once uvicorn has shut down: finish stopping anyway
        # (connections closed, slots freed, unix sockets removed), then go on cancelling.
        stopping = asyncio.ensure_future(servers.stop())
        try:
            await asyncio.shield(stopping)
        except asyncio.CancelledError:
            await stopping
            raise


def start_runtime(plan: ServeConfig, model: str | None) -> Runtime:
    """The Runtime on `plan`'s catalogue, nothing loaded yet; its streaming recogniser is
    `model` (a catalogue id or any ASR spec), else the configured default ASR, else the
    embedded one. A name no backend knows fails here, in one line."""
    from voxwire.models.registry import DEFAULT_ASR
    from voxwire.services.runtime import Runtime

    wanted = model or plan.defaults.get(ASR_TASK) or DEFAULT_ASR
    with _model_errors(wanted):
        return Runtime.start(
            model, specs=plan.specs, defaults=dict(plan.defaults), model_wait_s=plan.model_wait_s
        )


def preload_ids(runtime: Runtime, configured: tuple[str, ...]) -> tuple[str, ...]:
    """The models to load at start-up after the recogniser: the embedded ones (small: no
    first request waits) and the `configured` ones."""
    from voxwire.models.registry import EMBEDDED_MODELS

    embedded = tuple(
        spec.id
        for spec in EMBEDDED_MODELS
        if runtime.catalog.get(spec.id) is not None and runtime.catalog[spec.id].spec == spec
    )
    return tuple(dict.fromkeys(embedded + configured))


def start_loading(
    runtime: Runtime, configured: tuple[str, ...], stop: Callable[[], object]
) -> list[str]:
    """Load the models in the background; the list it returns fills with the ids of
    those that must load and failed (the streaming recogniser, the `configured`
    preloads), and such a failure calls `stop` (from the loading thread) to stop the
    server. Others that fail are reported in /health and the log."""
    report = load_reporter(runtime)
    must_load = {runtime.asr_name, *configured}
    failed: list[str] = []

    def on_loaded(model_id: str, seconds: float, failure: BaseException | None) -> None:
        report(model_id, seconds, failure)
        if failure is not None and model_id in must_load:
            failed.append(model_id)
            stop()

    runtime.start_loading(preload_ids(runtime, configured), on_loaded=on_loaded)
    return failed


def load_reporter(runtime: Runtime) -> LoadReport:
    """One line per model the background loads finish (or fail)."""

    def report(model_id: str, seconds: float, failure: BaseException | None) -> None:
        entry = runtime.catalog.get(model_id)
        task = entry.spec.task if entry is not None else ASR_TASK
        if failure is None:
            extra = " and the Silero VAD" if model_id == runtime.asr_name else ""
            notice(f"loaded {model_id} ({task}){extra} in {seconds:.1f} s")
            return
        try:
            with _model_errors(model_id):
                raise failure
        except VoxwireError as exc:
            error(exc.message)

    return report


@contextlib.contextmanager
def _model_errors(model_id: str) -> Iterator[None]:
    """Any failure while loading `model_id` becomes one engine error that names it."""
    from voxwire.models.errors import ModelError, ModelNotFoundError

    failed = f"model {model_id!r} failed to load"
    try:
        yield
    except (ModelNotFound, ModelNotFoundError) as exc:
        message = str(exc)
        if model_id not in message:
            message = f"model {model_id!r}: {message}"
        raise ModelNotFound(message) from exc
    except VoxwireError as exc:
        raise ModelLoadError(f"{failed}: {exc.message}") from exc
    except ModelError as exc:
        raise ModelLoadError(f"{failed}: {exc}") from exc
    except Exception as exc:
        raise ModelLoadError(f"{failed}: {describe_exception(exc)}") from exc
