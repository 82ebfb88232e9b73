"""`voxwire classify FILE --model NAME`: run one catalogue classifier and print its labels.

An audio classifier (silero-speech, wake-words, a transformers model) gets FILE
decoded to 16 kHz (any format FFmpeg reads; - is stdin); a text classifier (vader,
intent) gets `--text "..."` instead. Scores are a softmax of the logits, or a
sigmoid for multi-label models (a `multi_label` attribute, e.g. wake words, whose
sigmoid is the peak score over the clip); `--function` overrides. Bad input is one
`voxwire: error: ...` line and exit code 1.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import numpy as np
import typer

from voxwire.engine.errors import VoxwireError
from voxwire.models.errors import ModelError
from voxwire.models.interfaces import AudioClassifier, TextClassifier
from voxwire.services.classification import FunctionToApply, default_function, top_labels
from voxwire.services.media import DEFAULT_MAX_BYTES, decode_audio
from voxwire.transports.cli.inputs import require_files
from voxwire.transports.cli.main import fail
from voxwire.transports.cli.options import ConfigOption

if TYPE_CHECKING:
    from voxwire.models.registry import ModelSpec

AUDIO = "audio-classification"
TEXT = "text-classification"

MAX_SECONDS = 600.0
"""Longest audio `classify` accepts (classifiers look at the whole clip at once)."""


class OutputFormat(StrEnum):
    """How the labels are printed."""

    TEXT = "text"
    JSON = "json"


class Function(StrEnum):
    """What turns logits into scores."""

    AUTO = "auto"
    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"
    NONE = "none"


def register(app: typer.Typer) -> None:
    """Add the `classify` command to `app`."""
    app.command("classify")(classify)


def classify(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Audio file for an audio classifier (any format FFmpeg decodes; - is stdin).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Catalogue model id, e.g. wake-words, silero-speech, intent, vader "
            "(default: the task's default model).",
        ),
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", "-t", help="Text for a text classifier.")
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", "-k", min=1, help="Print at most N labels.")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = (
        OutputFormat.TEXT
    ),
    function: Annotated[
        Function,
        typer.Option(
            "--function", help="Scores from logits (auto: sigmoid for multi-label models)."
        ),
    ] = Function.AUTO,
    config: ConfigOption = None,
) -> None:
    """Classify an audio FILE (or --text) with a catalogue model and print labels and scores."""
    if file is not None and text is not None:
        fail("give an audio FILE or --text, not both")
    if file is None and text is None:
        fail("give an audio FILE to classify, or --text for a text classifier")
    if file is not None:
        require_files([str(file)])
    task = TEXT if text is not None else AUDIO
    spec = _find_spec(model, task, config)
    if text is not None:
        if not text.strip():
            fail("--text is empty")
        payload: Any = text
    else:
        assert file is not None
        payload = _decode(file)
    classifier = _load(spec)
    try:
        logits = np.asarray(classifier.logits(payload), dtype=np.float32)
    except (ValueError, ModelError, VoxwireError) as exc:
        fail(f"{spec.id}: {_message(exc)}")
    chosen: FunctionToApply
    if function is Function.AUTO:
        chosen = default_function(classifier)
    else:
        chosen = cast(FunctionToApply, function.value)
    scores = top_labels(classifier.labels, logits, top_k=top_k, function_to_apply=chosen)
    if output is OutputFormat.JSON:
        document = {
            "model": spec.id,
            "task": spec.task,
            "function_to_apply": chosen,
            "labels": [{"label": label, "score": score} for label, score in scores],
        }
        sys.stdout.write(json.dumps(document) + "\n")
    else:
        width = max((len(label) for label, _ in scores), default=0)
        for label, score in scores:
            sys.stdout.write(f"{label:<{width}}  {score:.4f}\n")
    sys.stdout.flush()


def _catalogue(config: Path | None) -> tuple[tuple[ModelSpec, ...], dict[str, str]]:
    """The models on offer (embedded, plus a configuration file's) and the task defaults."""
    from voxwire.models.registry import EMBEDDED_MODELS

    if config is None:
        return EMBEDDED_MODELS, {}
    from voxwire.transports.cli import config as configuration

    try:
        plan = configuration.load(config)
    except VoxwireError as exc:
        fail(exc.message)
    return plan.specs, plan.defaults


def _find_spec(model: str | None, task: str, config: Path | None) -> ModelSpec:
    specs, defaults = _catalogue(config)
    by_id = {spec.id: spec for spec in specs}
    offered = ", ".join(s.id for s in specs if s.task in (AUDIO, TEXT))
    if model is None:
        model = defaults.get(task) or next(s.id for s in specs if s.task == task)
    spec = by_id.get(model)
    if spec is None:
        fail(f"unknown model {model!r}; classifiers on offer: {offered}")
    if spec.task == task:
        return spec
    if spec.task == TEXT:
        fail(f'model {model!r} classifies text: give --text "..." instead of a file')
    if spec.task == AUDIO:
        fail(f"model {model!r} classifies audio: give an audio FILE instead of --text")
    fail(f"model {model!r} does {spec.task}, not classification; classifiers: {offered}")


def _decode(file: Path) -> Any:
    name = str(file)
    source: Path | bytes = file
    if name == "-":
        name = "<stdin>"
        source = sys.stdin.buffer.read(DEFAULT_MAX_BYTES + 1)
    try:
        return decode_audio(source, max_bytes=DEFAULT_MAX_BYTES, max_seconds=MAX_SECONDS)
    except VoxwireError as exc:
        fail(f"{name}: {exc.message}")


def _load(spec: ModelSpec) -> AudioClassifier | TextClassifier:
    from voxwire.models.registry import load_model

    try:
        model = load_model(spec)
    except (ModelError, VoxwireError) as exc:
        fail(f"cannot load model {spec.id}: {_message(exc)}")
    if not isinstance(model, AudioClassifier | TextClassifier):
        fail(f"model {spec.id} is not a classifier")
    return model


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, VoxwireError) else str(exc)
