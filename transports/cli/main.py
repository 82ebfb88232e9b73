"""The `voxwire` command line: a typer app whose subcommands live in their own modules.

Each module in :data:`_COMMAND_MODULES` exposes `register(app)`. Errors never
show a traceback: a :class:`~voxwire.engine.errors.VoxwireError` is one line on stderr
and exit code 1; anything unexpected is one line and exit code 2 (`--debug`
prints the traceback as well).
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from dataclasses import dataclass
from importlib import metadata
from typing import Annotated, NoReturn

import typer

from voxwire.engine.errors import VoxwireError

PROG = "voxwire"

_COMMAND_MODULES = [
    "voxwire.transports.cli.transcribe",
    "voxwire.transports.cli.classify",
    "voxwire.transports.cli.stream",
    "voxwire.transports.cli.bench",
    "voxwire.transports.cli.serve",
    "voxwire.transports.cli.speak",
    "voxwire.transports.cli.mic",
    "voxwire.transports.cli.wyoming",
    "voxwire.transports.cli.ask",
]
"""Each exposes ``register(app)``; imported when the app is first built."""

EXIT_OK = 0
EXIT_ERROR = 1
"""A bad input or a failed operation the user can fix."""
EXIT_UNEXPECTED = 2
"""A bug: an exception voxwire did not raise on purpose (also click's usage errors)."""


@dataclass
class CliState:
    """Options of the top-level callback that subcommands consult."""

    debug: bool = False


STATE = CliState()

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def error(message: str) -> None:
    """Print one `voxwire: error: ...` line on stderr."""
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr, flush=True)


def notice(message: str) -> None:
    """Print one `voxwire: ...` line on stderr."""
    print(f"{PROG}: {_one_line(message)}", file=sys.stderr, flush=True)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print an error line and leave with `code`."""
    error(message)
    raise typer.Exit(code)


def describe_exception(exc: BaseException) -> str:
    """A one-line description: the message of a VoxwireError, else type and message."""
    if isinstance(exc, VoxwireError):
        return exc.message
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _version() -> str:
    try:
        return metadata.version("voxwire")
    except metadata.PackageNotFoundError:
        return "unknown"


def _version_callback(value: bool) -> None:
    if value:
        print(f"{PROG} {_version()}")
        raise typer.Exit()


def configure_logging(level: str) -> None:
    """Log to stderr through rich, at `level`."""
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(
        console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False
    )
    logging.basicConfig(
        level=level.upper(), format="%(message)s", datefmt="[%X]", handlers=[handler], force=True
    )


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar="VOXWIRE_LOG_LEVEL",
            help=f"Logging level on stderr: {', '.join(LOG_LEVELS)}.",
            case_sensitive=False,
        ),
    ] = "warning",
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of unexpected errors.")
    ] = False,
) -> None:
    """voxwire: a real-time streaming voice engine."""
    if log_level.lower() not in LOG_LEVELS:
        raise typer.BadParameter(
            f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="--log-level"
        )
    STATE.debug = debug
    configure_logging(log_level)


def build_app() -> typer.Typer:
    """The typer app with every available subcommand registered."""
    app = typer.Typer(
        name=PROG,
        help="voxwire: a real-time streaming voice engine.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


_app: typer.Typer | None = None


def get_app() -> typer.Typer:
    """The app, built on first use (so subcommand modules may import this module)."""
    global _app
    if _app is None:
        _app = build_app()
    return _app


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turning every failure into one line."""
    try:
        get_app()(args=argv, prog_name=PROG)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        notice("interrupted")
        sys.exit(130)
    except VoxwireError as exc:
        if STATE.debug:
            traceback.print_exc()
        error(exc.message)
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        hint = ""
        if STATE.debug:
            traceback.print_exc()
        else:
            hint = " (run with --debug for the traceback)"
        error(f"unexpected {describe_exception(exc)}{hint}")
        sys.exit(EXIT_UNEXPECTED)


if __name__ == "__main__":
    main()
