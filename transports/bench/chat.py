"""`voxwire bench chat`: time to first token and tokens per second of each chat backend.

Each catalogue model of the text-generation task (the embedded SmolLM2, plus a
configuration file's) is loaded in this process and asked the same question about a
transcript `repeats` times, greedy, `max_tokens` each. Figures are medians: time to
first token (prompt processing included) and decode speed after it. Prints a table and
writes JSON (bench-results/chat.json by default).
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

from voxwire.models.interfaces import ChatMessage, ChatModel, GenerateOptions, Transcription
from voxwire.models.registry import ModelSpec, load_model
from voxwire.services.chat import ANSWER_FROM_TRANSCRIPT, transcript_prompt

TRANSCRIPT = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


@dataclass(frozen=True)
class ChatBenchOptions:
    specs: tuple[ModelSpec, ...]
    repeats: int
    max_tokens: int
    output: Path


def _one(model: ChatModel, messages: list[ChatMessage], max_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    generation = model.generate(messages, GenerateOptions(max_tokens=max_tokens))
    first: float | None = None
    for _chunk in generation:
        if first is None:
            first = time.perf_counter()
    ended = time.perf_counter()
    first = first or ended
    after_first = max(generation.completion_tokens - 1, 0)
    return {
        "ttft_s": first - started,
        "tokens": generation.completion_tokens,
        "tokens_per_s": after_first / (ended - first) if ended > first else 0.0,
        "prompt_tokens": generation.prompt_tokens,
    }


def run_chat_bench(options: ChatBenchOptions) -> dict[str, Any]:
    """Measure every model; print the table, write and return the JSON."""
    question = Transcription(text=TRANSCRIPT, language="en", duration=11.0)
    messages = [
        ChatMessage("system", ANSWER_FROM_TRANSCRIPT),
        ChatMessage("user", transcript_prompt([question], "What did the speaker say?")),
    ]
    rows: list[dict[str, Any]] = []
    for spec in options.specs:
        started = time.perf_counter()
        model = cast(ChatModel, load_model(spec))
        load_s = time.perf_counter() - started
        _one(model, messages, 4)  # warm-up
        runs = [_one(model, messages, options.max_tokens) for _ in range(options.repeats)]
        rows.append(
            {
                "model": spec.id,
                "backend": spec.backend,
                "load_seconds": round(load_s, 2),
                "prompt_tokens": runs[0]["prompt_tokens"],
                "tokens": statistics.median(r["tokens"] for r in runs),
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
        "repeats": options.repeats,
        "max_tokens": options.max_tokens,
        "results": rows,
    }
    table = Table(title="voxwire bench chat")
    for column in ("model", "backend", "load s", "prompt tokens", "tokens", "TTFT s", "tokens/s"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["model"],
            r["backend"],
            f"{r['load_seconds']:.2f}",
            str(r["prompt_tokens"]),
            f"{r['tokens']:g}",
            f"{r['ttft_s']:.3f}",
            f"{r['tokens_per_s']:.2f}",
        )
    Console().print(table)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2))
    return result
