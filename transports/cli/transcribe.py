"""`voxwire transcribe FILE|URL...`: offline transcription of audio files and URLs.

Each input is decoded (PyAV + soxr), transcribed by the configured ASR model and
printed in the chosen format. A file that is not there stops the command before
anything loads (one line naming it, exit code 2). A bad file or URL prints one
`voxwire: error: NAME: ...` line on stderr and the others are still transcribed;
the exit code is 1 when any input failed.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from voxwire.engine.audio import MODEL_RATE
from voxwire.engine.errors import VoxwireError
from voxwire.models.errors import ModelError
from voxwire.models.interfaces import AsrModel, TranscribeOptions, Transcription
from voxwire.services.formats import ResponseFormat, render
from voxwire.services.media import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS, decode_audio
from voxwire.services.url_fetch import UrlRefused
from voxwire.transports.cli.inputs import display_name, read_input, require_files
from voxwire.transports.cli.main import EXIT_ERROR, EXIT_OK, error, fail, notice
from voxwire.transports.cli.options import AsrModelOption

log = logging.getLogger(__name__)

SILENCE_PEAK = 10 ** (-80 / 20)
"""Audio whose peak stays below -80 dBFS is taken as silence without running the model."""

STATUS_MIN_SECONDS = 30.0
"""Files at least this long get a status spinner on stderr (when stderr is a TTY)."""


class Task(StrEnum):
    """What the model does with the speech."""

    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


def register(app: typer.Typer) -> None:
    """Add the `transcribe` command to `app`."""
    app.command("transcribe")(transcribe)


def transcribe(
    files: Annotated[
        list[str],
        typer.Argument(
            help="Audio or video files in any format FFmpeg decodes, or http(s) URLs "
            "(fetched, at most 25 MB); - reads stdin.",
            show_default=False,
        ),
    ],
    response_format: Annotated[
        ResponseFormat, typer.Option("--format", "-f", help="Output format.")
    ] = ResponseFormat.TEXT,
    model: AsrModelOption = None,
    language: Annotated[
        str | None,
        typer.Option("--language", "-l", help="Spoken language code, e.g. en (default: detect)."),
    ] = None,
    beam_size: Annotated[int, typer.Option("--beam-size", min=1, help="Beam width.")] = 5,
    word_timestamps: Annotated[
        bool, typer.Option("--word-timestamps", help="Time each word (verbose_json lists them).")
    ] = False,
    task: Annotated[
        Task, typer.Option("--task", help="Transcribe, or translate into English.")
    ] = Task.TRANSCRIBE,
    max_seconds: Annotated[
        float, typer.Option("--max-seconds", min=1.0, help="Refuse files longer than this.")
    ] = DEFAULT_MAX_SECONDS,
    allow_private_urls: Annotated[
        bool,
        typer.Option(
            "--allow-private-urls",
            help="Let URLs reach loopback and private addresses (default: public ones only).",
        ),
    ] = False,
) -> None:
    """Transcribe audio files or URLs and print the text (or json, verbose_json, srt, vtt)."""
    require_files(files)
    options = TranscribeOptions(
        language=language.lower() if language else None,
        task=task.value,
        beam_size=beam_size,
        word_timestamps=word_timestamps,
    )
    console = Console(stderr=True)
    headers = len(files) > 1 and response_format is ResponseFormat.TEXT
    asr: AsrModel | None = None
    failed = printed = 0
    for given in files:
        name = display_name(given)
        try:
            source = read_input(
                given, max_bytes=DEFAULT_MAX_BYTES, allow_private_urls=allow_private_urls
            )
            audio = decode_audio(source, max_bytes=DEFAULT_MAX_BYTES, max_seconds=max_seconds)
        except UrlRefused as exc:
            error(f"{name}: {exc.message} (--allow-private-urls fetches private addresses)")
            failed += 1
            continue
        except VoxwireError as exc:
            error(f"{name}: {exc.message}")
            failed += 1
            continue
        duration = audio.size / MODEL_RATE
        if asr is None:
            asr = _load_model(model, console)
        if float(np.max(np.abs(audio))) < SILENCE_PEAK:
            result = Transcription(text="", language=options.language or "", duration=duration)
        else:
            try:
                with _status(console, f"Transcribing {name} ({duration:.0f} s)", duration):
                    started = time.perf_counter()
                    result = asr.transcribe(audio, options)
                    log.info(
                        "%s: %.1f s of audio in %.2f s",
                        name,
                        duration,
                        time.perf_counter() - started,
                    )
            except (VoxwireError, ModelError) as exc:
                error(f"{name}: {_message(exc)}")
                failed += 1
                continue
        if headers:
            separator = "\n" if printed else ""
            sys.stdout.write(f"{separator}==> {name} <==\n")
        body = render(result, response_format, task=options.task, word_timestamps=word_timestamps)
        if body and not body.endswith("\n"):
            body += "\n"
        sys.stdout.write(body)
        sys.stdout.flush()
        printed += 1
        if not result.text.strip():
            notice(f"{name}: no speech found")
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK)


def _load_model(spec: str | None, console: Console) -> AsrModel:
    """Load the ASR model once, or leave with one error line."""
    from voxwire.models.registry import load_asr

    try:
        with _status(console, "Loading the speech model", STATUS_MIN_SECONDS):
            started = time.perf_counter()
            asr: AsrModel = load_asr(spec)
    except (VoxwireError, ModelError) as exc:
        fail(f"cannot load model {spec or '(default)'}: {_message(exc)}")
    log.info("loaded ASR model %s in %.2f s", asr.name, time.perf_counter() - started)
    return asr


def _message(exc: BaseException) -> str:
    if isinstance(exc, VoxwireError):
        return exc.message
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def _status(console: Console, message: str, seconds: float) -> Iterator[None]:
    """A rich spinner on stderr for long work, only when stderr is a terminal."""
    if console.is_terminal and seconds >= STATUS_MIN_SECONDS:
        with console.status(message):
            yield
    else:
        yield
