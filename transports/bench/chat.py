"""`voxwire bench chat`: time to first token and tokens per second of each chat backend.

Each chat model of the catalogue (the embedded SmolLM2, a configuration file's, and
`--chat-model`'s) is loaded in this process and asked the same question about the same
speech `repeats` times, greedy, `max_tokens` each:

* a text model through the cascade: the embedded recogniser transcribes the speech
  (word-timed, as the chat route does), then the model answers from the transcript;
  its time to first token includes the transcription (``asr_s``);
* a native audio LLM (audio-text-to-text) hears the speech itself.

Figures are medians: time to first token from the audio (prompt processing included)
and decode speed after it. Prints a table and writes JSON (bench-results/chat.json by
default), with the machine's load average: figures taken on a busy machine are not final.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.table import Table

from voxwire.models.interfaces import (
    AsrModel,
    AudioArray,
    ChatMessage,
    ChatModel,
    GenerateOptions,
    TranscribeOptions,
)
from voxwire.models.registry import ModelSpec, load_asr, load_model
from voxwire.services.chat import ANSWER_FROM_TRANSCRIPT, transcript_prompt

QUESTION = "What did the speaker say?"


@dataclass(frozen=True)
class ChatBenchOptions:
    specs: tuple[ModelSpec, ...]
    repeats: int
    max_tokens: int
    output: Path
    audio: AudioArray | None = None
    """The speech asked about (16 kHz); None: the embedded voice's default speech."""


def _messages(model: ChatModel, audio: AudioArray, asr: AsrModel) -> list[ChatMessage]:
    """What the chat route gives the model: the audio itself, or its transcript."""
    if model.accepts_audio:
        return [ChatMessage("user", QUESTION, (audio,))]
    heard = asr.transcribe(audio, TranscribeOptions(word_timestamps=True))
    return [
        ChatMessage("system", ANSWER_FROM_TRANSCRIPT),
        ChatMessage("user", transcript_prompt([heard], QUESTION)),
    ]


def _one(model: ChatModel, audio: AudioArray, asr: AsrModel, max_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    messages = _messages(model, audio, asr)
    asr_s = time.perf_counter() - started
    generation = model.generate(messages, GenerateOptions(max_tokens=max_tokens))
    first: float | None = None
    for _chunk in generation:
        if first is None:
            first = time.perf_counter()
    ended = time.perf_counter()
    first = first or ended
    after_first = max(generation.completion_tokens - 1, 0)
    return {
        "asr_s": asr_s if not model.accepts_audio else 0.0,
        "ttft_s": first - started,
        "tokens": generation.completion_tokens,
        "tokens_per_s": after_first / (ended - first) if ended > first else 0.0,
        "prompt_tokens": generation.prompt_tokens,
    }


def run_chat_bench(options: ChatBenchOptions) -> dict[str, Any]:
    """Measure every model; print the table, write and return the JSON."""
    audio = options.audio
    if audio is None:
        from voxwire.transports.bench.classify import default_speech

        audio = default_speech()
    asr = load_asr()
    rows: list[dict[str, Any]] = []
    for spec in options.specs:
        started = time.perf_counter()
        model = cast(ChatModel, load_model(spec))
        load_s = time.perf_counter() - started
        _one(model, audio, asr, 4)  # warm-up
        runs = [_one(model, audio, asr, options.max_tokens) for _ in range(options.repeats)]
        rows.append(
            {
                "model": spec.id,
                "backend": "native audio" if model.accepts_audio else f"cascade ({spec.backend})",
                "load_seconds": round(load_s, 2),
                "prompt_tokens": runs[0]["prompt_tokens"],
                "tokens": statistics.median(r["tokens"] for r in runs),
                "asr_s": round(statistics.median(r["asr_s"] for r in runs), 3),
                "ttft_s": round(statistics.median(r["ttft_s"] for r in runs), 3),
                "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in runs), 2),
            }
        )
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(),
        },
        "audio_seconds": round(len(audio) / 16_000, 2),
        "repeats": options.repeats,
        "max_tokens": options.max_tokens,
        "results": rows,
    }
    table = Table(title="voxwire bench chat")
    columns = ("model", "backend", "load s", "prompt tokens", "tokens", "ASR s", "TTFT s")
    for column in (*columns, "tokens/s"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["model"],
            r["backend"],
            f"{r['load_seconds']:.2f}",
            str(r["prompt_tokens"]),
            f"{r['tokens']:g}",
            f"{r['asr_s']:.3f}",
            f"{r['ttft_s']:.3f}",
            f"{r['tokens_per_s']:.2f}",
        )
    Console().print(table)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2))
    return result
