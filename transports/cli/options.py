"""Command-line options that several `voxwire` commands share, declared once.

Each is an ``Annotated`` type for a typer parameter; the command gives the default:
``output: ChatModelOption = Annotated[
    str | None,
    typer.Option(
        "--chat-model",
        help="Chat model: a native audio LLM (Qwen2-Audio, Voxtral) or a text chat model, "
        "as a model directory or a hub id in the local cache, or a .gguf file "
        "(default: the embedded SmolLM2, a cascade through the recogniser).",
    ),
]
JsonOutput = Path("bench-results/asr.json")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML configuration file (examples/voxwire.toml); its [models] are offered too.",
    ),
]
AsrModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="ASR model: a catalogue id, a model directory or 'transformers:<id>' "
        "(default: the embedded Whisper tiny.en).",
    ),
]
ServedAsrModel = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Streaming ASR model: a catalogue id or an ASR spec "
        "(default: the file's [defaults] asr, else the embedded one).",
    ),
]
"""The streaming recogniser of a server (`voxwire serve`, `voxwire wyoming`)."""

ChatModelOption = Annotated[
    str | None,
    typer.Option(
        "--chat-model",
        help="Chat model: a native audio LLM (Qwen2-Audio, Voxtral) or a text chat model, "
        "as a model directory or a hub id in the local cache, or a .gguf file "
        "(default: the embedded SmolLM2, a cascade through the recogniser).",
    ),
]
JsonOutput = Annotated[Path, typer.Option("--output", "-o", help="JSON result file.")]
SpeechFile = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="Speech file, any format FFmpeg decodes (default: Piper's)."),
]
ServerApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="VOXWIRE_API_KEY", help="Bearer key of a server that needs one."
    ),
]
SoundDevice = Annotated[str | None, typer.Option("--device", help="Sound device (index or name).")]
