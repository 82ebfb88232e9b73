"""`voxwire stream FILE`: feed a file through a Session at real-time pace.

Prints one JSON object per event per line on stdout, in the order the engine
emits them. Completed transcripts carry ``voxwire.final_latency_ms``, the
wall-clock time from speech_stopped to the transcript.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import typer

from voxwire.engine.audio import MODEL_RATE
from voxwire.engine.errors import VoxwireError
from voxwire.engine.events import Event, TranscriptionCompleted
from voxwire.engine.segmenter import SegmenterOptions
from voxwire.engine.session import SessionCounters, SessionOptions
from voxwire.engine.streaming_asr import StreamingOptions
from voxwire.services.media import decode_audio
from voxwire.services.runtime import Runtime
from voxwire.transports.cli.inputs import require_files
from voxwire.transports.cli.main import fail, notice
from voxwire.transports.cli.options import AsrModelOption


def register(app: typer.Typer) -> None:
    """Add the `stream` command to `app`."""
    app.command("stream")(stream)


def stream(
    file: Annotated[Path, typer.Argument(help="Audio file in any format FFmpeg decodes.")],
    speed: Annotated[
        float,
        typer.Option("--speed", min=0.0, help="Times real time; 0 feeds as fast as possible."),
    ] = 1.0,
    model: AsrModelOption = None,
    chunk_ms: Annotated[
        int, typer.Option("--chunk-ms", min=1, max=1000, help="Audio per feed call.")
    ] = 20,
    threshold: Annotated[float, typer.Option(help="VAD speech threshold.")] = 0.5,
    prefix_padding_ms: Annotated[int, typer.Option(help="Audio kept before speech.")] = 300,
    silence_duration_ms: Annotated[int, typer.Option(help="Silence that ends a turn.")] = 500,
    min_speech_ms: Annotated[int, typer.Option(help="Shortest speech that counts.")] = 200,
    max_utterance_s: Annotated[float, typer.Option(help="Longer utterances are cut.")] = 30.0,
    partial_interval_ms: Annotated[int, typer.Option(help="Re-decode cadence.")] = 300,
    partials: Annotated[
        bool, typer.Option("--partials/--no-partials", help="Emit deltas while speaking.")
    ] = True,
    stats: Annotated[
        bool, typer.Option("--stats", help="Print the session's counters on stderr at the end.")
    ] = False,
) -> None:
    """Stream FILE through the engine and print its events as JSON lines."""
    require_files([str(file)])
    try:
        options = SessionOptions(
            segmenter=SegmenterOptions(
                threshold=threshold,
                prefix_padding_ms=prefix_padding_ms,
                silence_duration_ms=silence_duration_ms,
                min_speech_ms=min_speech_ms,
                max_utterance_s=max_utterance_s,
            ),
            streaming=StreamingOptions(partial_interval_ms=partial_interval_ms),
            partials=partials,
        )
    except ValueError as exc:
        fail(str(exc))
    try:
        audio = decode_audio(file)
    except VoxwireError as exc:
        fail(f"{file}: {exc.message}")
    runtime = Runtime.load(model)
    try:
        counters = asyncio.run(
            stream_audio(runtime, audio, options, speed=speed, chunk_ms=chunk_ms, out=print_event)
        )
    finally:
        runtime.close()
    if counters.final_decodes == 0 and counters.transcriptions_failed == 0:
        notice(f"{file}: no speech found")
    if stats:
        notice(json.dumps(counters.__dict__))


def print_event(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
    sys.stdout.flush()


async def stream_audio(
    runtime: Runtime,
    audio: npt.NDArray[np.float32],
    options: SessionOptions,
    *,
    speed: float,
    chunk_ms: int,
    out: Any,
) -> SessionCounters:
    """Feed 16 kHz `audio` in chunks paced against an absolute clock; events go to `out`."""
    session = runtime.new_session(options)

    def sink(events: Sequence[Event], latencies: dict[str, float]) -> None:
        for event in events:
            data = event.to_json_dict()
            if isinstance(event, TranscriptionCompleted) and event.item_id in latencies:
                data["voxwire.final_latency_ms"] = round(latencies[event.item_id], 1)
            out(data)

    driver = runtime.driver(session, sink)
    step = max(1, MODEL_RATE * chunk_ms // 1000)
    started = time.monotonic()
    for offset in range(0, len(audio), step):
        await driver.feed(audio[offset : offset + step])
        if speed > 0:
            due = started + (offset + step) / MODEL_RATE / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
    await driver.finish()
    return session.counters
