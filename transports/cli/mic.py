"""`voxwire mic`: the live microphone demo, a client of voxwire's Realtime WebSocket.

Talks to a running `voxwire serve` (the client logic lives in :mod:`voxwire.demos.mic`,
the sound side in :mod:`voxwire.demos.mic_audio`, the terminal view in
:mod:`voxwire.demos.mic_display`). `--input-file` streams a file instead of the microphone
and exits once every turn is transcribed and answered; `--no-playback` keeps the
reply silent. Connection and device problems are one `voxwire: error: ...` line and
exit code 1; Ctrl-C ends a live session cleanly.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from voxwire.demos.mic import run_mic
from voxwire.demos.mic_display import MicView
from voxwire.demos.mic_options import DEFAULT_RATE, DEFAULT_URL, MicOptions
from voxwire.engine.audio import SUPPORTED_INPUT_RATES
from voxwire.services.sound_devices import import_sounddevice, parse_device
from voxwire.transports.cli.main import fail
from voxwire.transports.cli.options import ServerApiKey, SoundDevice
from voxwire.transports.realtime.protocol import CLASSIFIERS

EXIT_INTERRUPTED = 130
"""Ctrl-C before an input file was done (a live session ends with Ctrl-C and 0)."""


def register(app: typer.Typer) -> None:
    """Add the `mic` command to `app`."""
    app.command("mic")(mic)


def mic(
    url: Annotated[
        str,
        typer.Option(
            "--url",
            envvar="VOXWIRE_URL",
            help="The server's Realtime WebSocket; ?model=NAME answers each turn, "
            "?intent=transcription only transcribes.",
        ),
    ] = DEFAULT_URL,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input-file",
            "-i",
            help="Stream this audio file (any format) at real-time pace instead of the "
            "microphone, then exit once every turn is answered.",
        ),
    ] = None,
    no_playback: Annotated[
        bool, typer.Option("--no-playback", help="Do not play the replies.")
    ] = False,
    full_duplex: Annotated[
        bool,
        typer.Option(
            "--full-duplex",
            help="Keep sending the microphone while a reply plays (with a headset); "
            "speaking then interrupts the reply.",
        ),
    ] = False,
    classifiers: Annotated[
        str,
        typer.Option(
            "--classifiers",
            help=f"Comma-separated live classifiers: {', '.join(CLASSIFIERS)}.",
        ),
    ] = "",
    api_key: ServerApiKey = None,
    device: SoundDevice = None,
    rate: Annotated[
        int,
        typer.Option(
            "--rate",
            help=f"Capture and session input rate: {', '.join(map(str, SUPPORTED_INPUT_RATES))}.",
        ),
    ] = DEFAULT_RATE,
    list_devices: Annotated[
        bool, typer.Option("--list-devices", help="List the sound devices and exit.")
    ] = False,
) -> None:
    """Talk to a voxwire server: live transcript, classifications and spoken replies."""
    if list_devices:
        _list_devices()
        return
    if rate not in SUPPORTED_INPUT_RATES:
        fail(
            f"--rate {rate} is not supported; use one of "
            f"{', '.join(map(str, SUPPORTED_INPUT_RATES))}"
        )
    options = MicOptions(
        url=url,
        input_file=input_file,
        playback=not no_playback,
        full_duplex=full_duplex,
        classifiers=parse_classifiers(classifiers),
        api_key=api_key or None,
        device=parse_device(device),
        rate=rate,
    )
    view = MicView()
    try:
        with view:
            summary = asyncio.run(run_mic(options, view))
    except KeyboardInterrupt:  # Ctrl-C ends a live session; everything is closed by now
        if input_file is not None:  # a file cut short
            view.notice("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        view.notice("stopped")
        if view.last_summary is not None:
            view.summary(view.last_summary)
        return
    view.summary(summary)


def parse_classifiers(text: str) -> tuple[str, ...]:
    """`wake_word,speaker` as a tuple; unknown names are one error line."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in CLASSIFIERS]
    if unknown:
        fail(
            f"unknown classifier {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(CLASSIFIERS)}"
        )
    return names


def _list_devices() -> None:
    sd = import_sounddevice("install PortAudio (libportaudio2)")
    devices = sd.query_devices()
    if len(devices) == 0:
        print("no sound devices (use --input-file FILE and --no-playback)")
        return
    print(devices)
