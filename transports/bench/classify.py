"""`voxwire bench classify`: what each classifier costs, per audio second or per transcript.

Every catalogue model of the classification and speaker-embedding tasks (the embedded
ones, plus a configuration file's) is loaded and timed, in this process, on one
thread of work:

* a wake-word model streams the speech frame by frame (80 ms frames through a new
  stream, as a live session would) and classifies it as one clip;
* a speaker encoder embeds the speech; any other audio classifier scores it as one clip;
* a text classifier scores each transcript.

Figures are medians over repeats: milliseconds of compute per second of audio (and
the real-time factor), or milliseconds per transcript. The speech is FILE, or without
one a few sentences spoken by the embedded Piper voice. It prints a table and writes
JSON (bench-results/classify.json by default).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from voxwire.engine.audio import MODEL_RATE
from voxwire.models.interfaces import (
    AudioClassifier,
    SpeakerEncoder,
    TextClassifier,
    WakeWordModel,
)
from voxwire.models.registry import EMBEDDED_MODELS, ModelSpec
from voxwire.services.media import decode_audio

TASKS = ("audio-classification", "text-classification", "speaker-embedding")
"""The tasks whose models are measured."""

DEFAULT_SPEECH = (
    "The quick brown fox jumps over the lazy dog.",
    "Please turn on the lights in the kitchen.",
    "What time does the train leave tomorrow morning?",
    "I would like to book a table for two people at seven o'clock tonight.",
)
"""Spoken by Piper when no FILE is given."""

DEFAULT_TRANSCRIPTS = (
    "what's the weather tomorrow",
    "set a timer for ten minutes",
    "I love this wonderful day, it makes me so happy.",
    "turn off the lights in the living room please",
    "The train was late again and I missed my meeting, which is really annoying.",
    "play some jazz",
    "hello there, how are you doing today?",
    "What time does the train leave tomorrow morning?",
)
"""Transcripts given to the text classifiers."""


class BenchClassifyError(Exception):
    """Something the bench cannot measure (bad model list, no audio)."""


@dataclass(frozen=True)
class ClassifyBenchOptions:
    """What `voxwire bench classify` was asked to do."""

    file: Path | None = None
    transcripts: tuple[str, ...] = DEFAULT_TRANSCRIPTS
    models: tuple[str, ...] = ()
    """Model ids to measure; empty: every classifier and speaker encoder on offer."""
    specs: tuple[ModelSpec, ...] = EMBEDDED_MODELS
    repeats: int = 3
    output: Path = Path("bench-results/classify.json")


def _median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _per_audio(seconds: float, audio_seconds: float) -> dict[str, Any]:
    return {
        "ms_per_audio_second": round(1000 * seconds / audio_seconds, 3),
        "rtf": round(seconds / audio_seconds, 5),
    }


def measure_stream(model: WakeWordModel, audio: npt.NDArray[np.float32]) -> dict[str, Any]:
    """One stream fed frame by frame: compute per audio second and per-frame latency."""
    n = model.frame_samples
    frames = [audio[i : i + n] for i in range(0, len(audio) - n + 1, n)]
    stream = model.new_stream()
    times = []
    for frame in frames:
        started = time.perf_counter()
        stream.process(frame)
        times.append(time.perf_counter() - started)
    total = sum(times)
    ms = sorted(1000 * t for t in times)
    return {
        "mode": "stream",
        "frames": len(frames),
        **_per_audio(total, len(frames) * n / MODEL_RATE),
        "frame_ms_p50": round(statistics.median(ms), 3),
        "frame_ms_p95": round(ms[int(0.95 * (len(ms) - 1))], 3),
        "streams_per_core": int(len(frames) * n / MODEL_RATE / total) if total else None,
    }


def measure_model(
    spec: ModelSpec,
    model: object,
    audio: npt.NDArray[np.float32],
    transcripts: Sequence[str],
    repeats: int,
) -> list[dict[str, Any]]:
    """The figures of one loaded model, one row per way it is used."""
    audio_seconds = len(audio) / MODEL_RATE
    rows: list[dict[str, Any]] = []
    if isinstance(model, WakeWordModel):
        rows.append(measure_stream(model, audio))
    if spec.task == "text-classification" and isinstance(model, TextClassifier):
        classifier = model
        classifier.logits(transcripts[0])  # warm-up
        seconds = _median_seconds(lambda: [classifier.logits(t) for t in transcripts], repeats)
        per = seconds / len(transcripts)
        rows.append(
            {
                "mode": "text",
                "transcripts": len(transcripts),
                "ms_per_transcript": round(1000 * per, 3),
                "transcripts_per_second": round(1 / per, 1) if per else None,
            }
        )
    elif spec.task == "speaker-embedding" and isinstance(model, SpeakerEncoder):
        encoder = model
        encoder.embed(audio)  # warm-up
        seconds = _median_seconds(lambda: encoder.embed(audio), repeats)
        rows.append({"mode": "embed", **_per_audio(seconds, audio_seconds)})
    elif spec.task == "audio-classification" and isinstance(model, AudioClassifier):
        audio_classifier = model
        audio_classifier.logits(audio[:MODEL_RATE])  # warm-up
        seconds = _median_seconds(lambda: audio_classifier.logits(audio), repeats)
        rows.append({"mode": "clip", **_per_audio(seconds, audio_seconds)})
    for row in rows:
        row.update(model=spec.id, task=spec.task, backend=spec.backend)
    return rows


def default_speech() -> npt.NDArray[np.float32]:
    """:data:`DEFAULT_SPEECH` spoken by the embedded Piper voice at 16 kHz, 0.5 s apart."""
    import soxr

    from voxwire.models.piper_tts import PiperTts

    tts = PiperTts()
    gap = np.zeros(MODEL_RATE // 2, dtype=np.float32)
    parts: list[npt.NDArray[np.float32]] = [gap]
    for chunk in tts.synthesize(" ".join(DEFAULT_SPEECH)):
        resampled = soxr.resample(chunk, tts.sample_rate, MODEL_RATE)
        parts += [np.asarray(resampled, dtype=np.float32), gap]
    return np.concatenate(parts)


def chosen_specs(options: ClassifyBenchOptions) -> list[ModelSpec]:
    """The specs to measure, in catalogue order; unknown or unsuitable ids are an error."""
    offered = {s.id: s for s in options.specs if s.task in TASKS}
    if not options.models:
        return list(offered.values())
    unknown = [m for m in options.models if m not in offered]
    if unknown:
        raise BenchClassifyError(
            f"not a classifier or speaker encoder on offer: {', '.join(unknown)} "
            f"(offered: {', '.join(offered)})"
        )
    return [offered[m] for m in dict.fromkeys(options.models)]


def run_classify_bench(options: ClassifyBenchOptions) -> dict[str, Any]:
    """Measure every chosen model, print the table and write the JSON result."""
    from voxwire.models.registry import load_model
    from voxwire.transports.bench.stream import machine_info

    specs = chosen_specs(options)
    if not options.transcripts:
        raise BenchClassifyError("give at least one transcript")
    err = Console(stderr=True)
    with err.status("preparing speech..."):
        audio = decode_audio(options.file) if options.file else default_speech()
    if len(audio) < MODEL_RATE:
        raise BenchClassifyError("the speech must be at least one second long")
    rows: list[dict[str, Any]] = []
    for spec in specs:
        with err.status(f"{spec.id}: loading..."):
            started = time.perf_counter()
            model = load_model(spec)
            load_seconds = time.perf_counter() - started
        with err.status(f"{spec.id}: measuring..."):
            measured = measure_model(spec, model, audio, options.transcripts, options.repeats)
        for row in measured:
            row["load_seconds"] = round(load_seconds, 3)
        rows += measured
        del model
    result: dict[str, Any] = {
        "machine": machine_info(),
        "audio": {
            "file": str(options.file) if options.file else "piper: " + " ".join(DEFAULT_SPEECH),
            "seconds": round(len(audio) / MODEL_RATE, 3),
        },
        "transcripts": list(options.transcripts),
        "repeats": options.repeats,
        "results": rows,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    Console().print(f"wrote {options.output}")
    return result


def print_table(result: dict[str, Any]) -> None:
    """The figures as a rich table on stdout ("-" where a figure does not apply)."""
    audio = result["audio"]
    table = Table(title=f"voxwire bench classify ({audio['seconds']} s of speech)")
    table.add_column("model", no_wrap=True)
    table.add_column("mode", no_wrap=True)
    for column in ("load s", "ms/audio s", "ms/text", "frame p95 ms", "streams/core"):
        table.add_column(column, justify="right")

    def cell(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        return "-" if value is None else f"{value:.3g}"

    for row in result["results"]:
        table.add_row(
            row["model"],
            row["mode"],
            *(
                cell(row, key)
                for key in (
                    "load_seconds",
                    "ms_per_audio_second",
                    "ms_per_transcript",
                    "frame_ms_p95",
                    "streams_per_core",
                )
            ),
        )
    Console().print(table)
