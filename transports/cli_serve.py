"""`voxwire serve`: load the embedded default models; the network server comes next.

For now the command proves the defaults load offline, says what it loaded and
that the server does not exist yet, and exits 0: the placeholder did all it can.
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Annotated

import typer

from engine.errors import VoxwireError
from models.errors import ModelError
from transports.cli import fail, notice

log = logging.getLogger(__name__)

_DEFAULT_LOADERS = (("asr", "load_asr"), ("vad", "load_vad"), ("tts", "load_tts"))
"""(role, loader in models.registry); loaders the registry lacks are not called."""


def register(app: typer.Typer) -> None:
    """Add the `serve` command to `app`."""
    app.command("serve")(serve)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the realtime WebSocket, WebRTC, HTTP (OpenAI-compatible) and Wyoming APIs.

    Not implemented yet: this release loads the default models (offline) to show
    they work, then stops.
    """
    registry = importlib.import_module("models.registry")
    loaded: dict[str, str] = {}
    for role, loader_name in _DEFAULT_LOADERS:
        loader = getattr(registry, loader_name, None)
        if loader is None:
            continue
        started = time.perf_counter()
        try:
            model = loader()
        except (VoxwireError, ModelError) as exc:
            message = exc.message if isinstance(exc, VoxwireError) else str(exc)
            fail(f"cannot load the default {role} model: {message}")
        loaded[role] = str(getattr(model, "name", type(model).__name__))
        log.info("loaded %s model %s in %.2f s", role, loaded[role], time.perf_counter() - started)
    summary = ", ".join(f"{role} {name}" for role, name in loaded.items()) or "nothing"
    notice(f"loaded {summary}")
    notice(f"the network server ({host}:{port}) is not implemented yet")
    notice("nothing to serve yet: use `voxwire transcribe` or `voxwire stream`")
