"""`voxwire bench asr FILE`: what streaming transcription costs, against one offline pass.

Prints a table and writes JSON. Figures:
- offline real-time factor (compute / audio duration) of one pass over the file;
- streaming compute: worker busy time while the file streams at real-time pace
  through Session(s), and its ratio to the offline pass;
- final latency: wall-clock time from speech_stopped to the completed transcript,
  and what one final decode costs when the speculative decode missed.

`voxwire bench stream --file FILE`: concurrent Realtime streams against a server;
the logic lives in transports/bench_stream.py.

`voxwire bench http --file FILE`: transcription throughput and speech time to first
byte over the OpenAI HTTP endpoints; the logic lives in transports/bench_http.py.

`voxwire bench classify`: the cost of each classifier and speaker encoder per audio
second or per transcript; the logic lives in transports/bench_classify.py.

`voxwire bench chat`: time to first token and tokens per second of each chat model;
the logic lives in transports/bench/chat.py.
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import typer
from rich.console import Console
from rich.table import Table

from voxwire.engine.audio import MODEL_RATE
from voxwire.engine.session import SessionOptions
from voxwire.models.interfaces import DecodeRequest, TranscribeOptions
from voxwire.services.media import decode_audio
from voxwire.services.runtime import Runtime
from voxwire.transports.cli.options import (
    AsrModelOption,
    ChatModelOption,
    ConfigOption,
    JsonOutput,
    ServerApiKey,
    SpeechFile,
)
from voxwire.transports.cli.stream import stream_audio

bench_app = typer.Typer(help="Benchmarks: print figures and write JSON.", no_args_is_help=True)


WsUrlOption = Annotated[
    str | None,
    typer.Option("--url", help="ws:// URL of a running server (default: start `voxwire serve`)."),
]
HttpUrlOption = Annotated[
    str | None,
    typer.Option("--url", help="http:// URL of a running server (default: start `voxwire serve`)."),
]
SpawnedModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="ASR model spec of the spawned server.")
]
RequiredSpeechFile = Annotated[
    Path, typer.Option("--file", "-f", help="Speech file (any format FFmpeg decodes).")
]
TrailingSilenceMs = Annotated[
    int, typer.Option("--silence-ms", min=0, help="Silence sent after the file.")
]
VadSilenceMs = Annotated[
    int,
    typer.Option(
        "--silence-ms",
        min=100,
        max=5000,
        help="server_vad's hangover: turn_detection.silence_duration_ms.",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the `bench` command group to `app`."""
    app.add_typer(bench_app, name="bench")


@bench_app.command("asr")
def bench_asr(
    file: Annotated[Path, typer.Argument(help="Speech file (any format FFmpeg decodes).")],
    model: AsrModelOption = None,
    streams: Annotated[
        int, typer.Option("--streams", min=1, max=64, help="Concurrent streams of the file.")
    ] = 1,
    speed: Annotated[
        float, typer.Option("--speed", min=0.0, help="Streaming pace, times real time.")
    ] = 1.0,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Offline passes.")] = 3,
    output: JsonOutput = Path("bench-results/asr.json"),
) -> None:
    """Offline real-time factor, streaming compute ratio and final latency for FILE."""
    from voxwire.models.registry import usable_cpus

    audio = decode_audio(file)
    runtime = Runtime.load(model)
    console = Console(stderr=True)
    try:
        with console.status("offline passes..."):
            offline = measure_offline(runtime, audio, repeats)
        with console.status(f"streaming {streams} stream(s) at {speed}x..."):
            streaming = asyncio.run(measure_streaming(runtime, audio, streams, speed))
    finally:
        runtime.close()
    result: dict[str, Any] = {
        "file": str(file),
        "audio_seconds": round(len(audio) / MODEL_RATE, 3),
        "model": runtime.asr.name,
        "machine": {"cpus": usable_cpus(), "platform": platform.platform()},
        "offline": offline,
        "streaming": streaming,
        "streaming_to_offline_compute_ratio": round(
            streaming["compute_seconds_per_stream"] / offline["greedy_seconds"], 2
        ),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    _print_table(result)
    Console().print(f"wrote {output}")


def measure_offline(
    runtime: Runtime, audio: npt.NDArray[np.float32], repeats: int
) -> dict[str, Any]:
    """Median wall time of whole-file transcription, greedy and beam 5."""
    asr = runtime.asr
    asr.transcribe(audio[: MODEL_RATE * 2], TranscribeOptions(beam_size=1))  # warm-up
    figures: dict[str, Any] = {}
    for label, beam in (("greedy", 1), ("beam5", 5)):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            text = asr.transcribe(audio, TranscribeOptions(beam_size=beam)).text
            times.append(time.perf_counter() - started)
        figures[f"{label}_seconds"] = round(statistics.median(times), 4)
        figures[f"{label}_rtf"] = round(statistics.median(times) / (len(audio) / MODEL_RATE), 4)
        figures[f"{label}_text"] = text.strip()
    # What a final costs when the speculative decode missed: one streaming-path
    # decode of the (first 30 s of the) audio.
    clip = DecodeRequest(audio=audio[: MODEL_RATE * 30], final=True)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        asr.decode([clip])
        times.append(time.perf_counter() - started)
    figures["final_decode_ms"] = round(1000 * statistics.median(times), 1)
    return figures


async def measure_streaming(
    runtime: Runtime, audio: npt.NDArray[np.float32], streams: int, speed: float
) -> dict[str, Any]:
    """Stream the file `streams` times at once; worker busy time and final latencies."""
    stats = runtime.asr_worker.stats
    busy_before, batches_before = stats.busy_seconds, stats.batches
    latencies: list[float] = []
    transcripts: list[list[str]] = [[] for _ in range(streams)]

    def collector(i: int) -> Any:
        def out(event: dict[str, Any]) -> None:
            if event["type"].endswith("transcription.completed"):
                transcripts[i].append(event["transcript"])
                if "voxwire.final_latency_ms" in event:
                    latencies.append(float(event["voxwire.final_latency_ms"]))

        return out

    started = time.perf_counter()
    counters = await asyncio.gather(
        *(
            stream_audio(
                runtime, audio, SessionOptions(), speed=speed, chunk_ms=20, out=collector(i)
            )
            for i in range(streams)
        )
    )
    wall = time.perf_counter() - started
    busy = stats.busy_seconds - busy_before
    latencies.sort()
    return {
        "streams": streams,
        "speed": speed,
        "wall_seconds": round(wall, 3),
        "compute_seconds": round(busy, 4),
        "compute_seconds_per_stream": round(busy / streams, 4),
        "batches": stats.batches - batches_before,
        "max_batch": stats.max_batch_seen,
        "partial_decodes": sum(c.partial_decodes for c in counters),
        "final_decodes": sum(c.final_decodes for c in counters),
        "speculative_hits": sum(c.speculative_hits for c in counters),
        "utterances": sum(len(t) for t in transcripts),
        "final_latency_ms": {
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
            "max": round(latencies[-1], 1) if latencies else None,
        },
        "transcript": " ".join(transcripts[0]),
    }


def _print_table(result: dict[str, Any]) -> None:
    off, st = result["offline"], result["streaming"]
    lat = st["final_latency_ms"]
    table = Table(title=f"voxwire bench asr: {result['file']} ({result['audio_seconds']} s)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("offline greedy (s / RTF)", f"{off['greedy_seconds']} / {off['greedy_rtf']}")
    table.add_row("offline beam 5 (s / RTF)", f"{off['beam5_seconds']} / {off['beam5_rtf']}")
    table.add_row("one final decode, no speculation (ms)", str(off["final_decode_ms"]))
    table.add_row("streams x speed", f"{st['streams']} x {st['speed']}")
    table.add_row("streaming compute per stream (s)", str(st["compute_seconds_per_stream"]))
    table.add_row("streaming / offline compute", str(result["streaming_to_offline_compute_ratio"]))
    table.add_row("partial / final decodes", f"{st['partial_decodes']} / {st['final_decodes']}")
    table.add_row(
        "final latency p50 / p95 / max (ms)", f"{lat['p50']} / {lat['p95']} / {lat['max']}"
    )
    Console().print(table)


@bench_app.command("stream")
def bench_stream(
    file: RequiredSpeechFile,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            "-r",
            help="The file's reference transcript, as text or a text file (default: WER "
            "against the offline transcript).",
        ),
    ] = None,
    streams: Annotated[
        int, typer.Option("--streams", min=1, max=64, help="Most concurrent streams.")
    ] = 16,
    url: WsUrlOption = None,
    model: SpawnedModelOption = None,
    levels: Annotated[
        str | None,
        typer.Option(
            "--levels", help="Comma-separated stream counts (default: 1,2,4,8,16 up to N)."
        ),
    ] = None,
    pace: Annotated[
        float,
        typer.Option("--pace", min=0.01, help="Sending pace, times real time (4: 4x faster)."),
    ] = 1.0,
    stagger: Annotated[
        bool,
        typer.Option(
            "--stagger/--in-phase",
            help="Spread the clients' starts evenly over the file (default: all at once).",
        ),
    ] = False,
    stagger_s: Annotated[
        float | None,
        typer.Option(
            "--stagger-s",
            min=0.0,
            help="Seconds between consecutive clients' starts (implies --stagger; "
            "default: the file's sending time / N).",
        ),
    ] = None,
    output: JsonOutput = Path("bench-results/stream.json"),
    silence_ms: TrailingSilenceMs = 1000,
    chunk_ms: Annotated[
        int, typer.Option("--chunk-ms", min=1, max=1000, help="Audio per binary frame.")
    ] = 20,
    warmup: Annotated[
        bool, typer.Option("--warmup/--no-warmup", help="One unmeasured short stream first.")
    ] = True,
) -> None:
    """WER, phrase-end-to-text latency, final latency, lost audio and decode work of N
    concurrent Realtime streams of FILE, level by level, against one offline pass."""
    from voxwire.transports.bench.stream import (
        StreamBenchOptions,
        parse_levels,
        read_reference,
        run_stream_bench,
    )

    try:
        ladder = parse_levels(levels, streams)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--levels") from exc
    run_stream_bench(
        StreamBenchOptions(
            file=file,
            levels=tuple(ladder),
            output=output,
            url=url,
            model=model,
            silence_ms=silence_ms,
            chunk_ms=chunk_ms,
            warmup=warmup,
            reference=read_reference(reference),
            pace=pace,
            stagger=stagger or stagger_s is not None,
            stagger_s=stagger_s,
        )
    )


@bench_app.command("voice")
def bench_voice(
    turns: Annotated[int, typer.Option("--turns", min=1, max=100, help="Spoken turns.")] = 5,
    file: SpeechFile = None,
    url: WsUrlOption = None,
    model: SpawnedModelOption = None,
    silence_ms: VadSilenceMs = 500,
    output: JsonOutput = Path("bench-results/voice.json"),
) -> None:
    """Voice-to-voice latency: end of speech to the first reply audio at the client."""
    from voxwire.transports.bench.voice import VoiceBenchOptions, run_voice_bench

    options = VoiceBenchOptions(
        turns=turns, file=file, url=url, model=model, silence_duration_ms=silence_ms, output=output
    )
    run_voice_bench(options, Console(stderr=True))


@bench_app.command("startup")
def bench_startup(
    runs: Annotated[
        int, typer.Option("--runs", "-n", min=1, max=20, help="Starts; the first is cold.")
    ] = 3,
    model: SpawnedModelOption = None,
    output: JsonOutput = Path("bench-results/startup.json"),
) -> None:
    """Time `voxwire serve` to the port bound, /health answering and every model ready."""
    from voxwire.transports.bench.startup import StartupBenchOptions, run_startup_bench

    run_startup_bench(StartupBenchOptions(runs=runs, model=model, output=output))


@bench_app.command("turns")
def bench_turns(
    files: Annotated[list[Path], typer.Argument(help="Speech files (e.g. the test corpus).")],
    eagerness: Annotated[
        list[str] | None, typer.Option("--eagerness", help="semantic_vad eagerness (repeat).")
    ] = None,
    silence_ms: VadSilenceMs = 500,
    output: JsonOutput = Path("bench-results/turns.json"),
) -> None:
    """Turn-end latency after the last word and false turn ends per minute of speech,
    semantic_vad (Smart Turn) against server_vad."""
    from voxwire.engine.turns import EAGERNESS
    from voxwire.models.registry import load_vad
    from voxwire.models.smart_turn import SmartTurn
    from voxwire.transports.bench.turns import files_audio, run

    levels = eagerness or ["auto"]
    bad = [e for e in levels if e not in EAGERNESS]
    if bad:
        raise typer.BadParameter(f"eagerness must be one of {', '.join(EAGERNESS)}")
    results = run(
        files_audio(files),
        load_vad,
        SmartTurn(),
        eagerness=levels,  # type: ignore[arg-type]
        silence_duration_ms=silence_ms,
    )
    table = Table(title="turn ends")
    for column in results[0]:
        table.add_column(column)
    for row in results:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"files": [str(f) for f in files], "results": results}, indent=2))


@bench_app.command("http")
def bench_http(
    file: RequiredSpeechFile,
    concurrency: Annotated[
        str,
        typer.Option("--concurrency", help="Comma-separated requests in flight at once."),
    ] = "1,2,4,8",
    requests: Annotated[
        int, typer.Option("--requests", "-n", min=1, help="Transcriptions per level.")
    ] = 8,
    speech_requests: Annotated[
        int, typer.Option("--speech-requests", min=0, help="Speech requests per format; 0: none.")
    ] = 5,
    text: Annotated[
        str | None, typer.Option("--text", help="Speech input (default: four sentences).")
    ] = None,
    formats: Annotated[
        str, typer.Option("--formats", help="Comma-separated speech response formats.")
    ] = "pcm,mp3",
    url: HttpUrlOption = None,
    model: SpawnedModelOption = None,
    api_key: ServerApiKey = None,
    output: JsonOutput = Path("bench-results/http.json"),
) -> None:
    """Transcription throughput under concurrency and speech time to first byte, over HTTP."""
    from voxwire.transports.bench.http import DEFAULT_TEXT, HttpBenchOptions, run_http_bench
    from voxwire.transports.bench.stream import parse_levels

    try:
        levels = parse_levels(concurrency, 1)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--concurrency") from exc
    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    if speech_requests and not chosen:
        raise typer.BadParameter("name at least one format", param_hint="--formats")
    run_http_bench(
        HttpBenchOptions(
            file=file,
            levels=tuple(levels),
            requests=requests,
            speech_requests=speech_requests,
            speech_text=text or DEFAULT_TEXT,
            formats=chosen,
            output=output,
            url=url,
            model=model,
            api_key=api_key,
        )
    )


@bench_app.command("classify")
def bench_classify(
    file: SpeechFile = None,
    models: Annotated[
        str | None,
        typer.Option("--models", "-m", help="Comma-separated model ids (default: all)."),
    ] = None,
    text: Annotated[
        list[str] | None,
        typer.Option("--text", "-t", help="A transcript for the text classifiers (repeatable)."),
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed passes.")] = 3,
    config: ConfigOption = None,
    output: JsonOutput = Path("bench-results/classify.json"),
) -> None:
    """Cost of each classifier per audio second (wake words streamed frame by frame) or
    per transcript."""
    from voxwire.engine.errors import VoxwireError
    from voxwire.models.errors import ModelError
    from voxwire.models.registry import EMBEDDED_MODELS
    from voxwire.transports.bench.classify import (
        DEFAULT_TRANSCRIPTS,
        BenchClassifyError,
        ClassifyBenchOptions,
        run_classify_bench,
    )
    from voxwire.transports.cli.main import fail

    try:
        specs = EMBEDDED_MODELS
        if config is not None:
            from voxwire.transports.cli.config import load

            specs = load(config).specs
        chosen = tuple(m.strip() for m in (models or "").split(",") if m.strip())
        run_classify_bench(
            ClassifyBenchOptions(
                file=file,
                transcripts=tuple(text) if text else DEFAULT_TRANSCRIPTS,
                models=chosen,
                specs=specs,
                repeats=repeats,
                output=output,
            )
        )
    except (BenchClassifyError, ModelError, ValueError) as exc:
        fail(str(exc))
    except VoxwireError as exc:
        fail(exc.message)


@bench_app.command("webrtc")
def bench_webrtc(
    file: SpeechFile = None,
    repeats: Annotated[
        int, typer.Option("--repeats", "-n", min=1, max=50, help="Passes per transport.")
    ] = 3,
    url: HttpUrlOption = None,
    model: SpawnedModelOption = None,
    api_key: ServerApiKey = None,
    silence_ms: TrailingSilenceMs = 1500,
    output: JsonOutput = Path("bench-results/webrtc.json"),
) -> None:
    """End-of-speech-to-final latency over WebRTC beside the WebSocket (p50/p95)."""
    from voxwire.transports.bench.webrtc import WebRTCBenchOptions, run_webrtc_bench

    options = WebRTCBenchOptions(
        output=output, file=file, url=url, model=model, repeats=repeats, silence_ms=silence_ms
    )
    run_webrtc_bench(options, api_key=api_key)


@bench_app.command("wyoming")
def bench_wyoming(
    corpus: Annotated[
        Path,
        typer.Option(
            "--corpus", help="Directory of NAME.wav recordings, each with its NAME.txt transcript."
        ),
    ],
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            help="A Wyoming server as NAME=tcp://HOST:PORT (repeatable; default: start "
            "`voxwire wyoming`). What it serves (asr, tts) is read from its describe.",
        ),
    ] = None,
    rounds: Annotated[
        int, typer.Option("--rounds", "-n", min=1, max=50, help="Passes over the corpus.")
    ] = 3,
    chunk_samples: Annotated[
        int, typer.Option("--chunk-samples", min=16, help="Samples (16 kHz) per audio-chunk.")
    ] = 1024,
    pace: Annotated[
        float, typer.Option("--pace", min=0.0, help="Times real time; 0: as fast as possible.")
    ] = 1.0,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Use only the first N recordings.")
    ] = None,
    stt: Annotated[bool, typer.Option("--stt/--no-stt", help="Measure speech to text.")] = True,
    tts: Annotated[bool, typer.Option("--tts/--no-tts", help="Measure text to speech.")] = True,
    output: JsonOutput = Path("bench-results/wyoming.json"),
) -> None:
    """Any Wyoming server as Home Assistant uses it: first partial, final and WER for
    speech streamed at real-time pace; first audio and total time for speech."""
    from voxwire.transports.bench.stream import BenchError
    from voxwire.transports.bench.wyoming import BenchOptions, parse_target, run_wyoming_bench
    from voxwire.transports.cli.main import fail

    try:
        targets = tuple(parse_target(t) for t in target or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--target") from exc
    options = BenchOptions(
        corpus=corpus,
        targets=targets,
        rounds=rounds,
        chunk_samples=chunk_samples,
        pace=pace,
        limit=limit,
        stt=stt,
        tts=tts,
        output=output,
    )
    try:
        run_wyoming_bench(options)
    except BenchError as exc:
        fail(exc.message)


@bench_app.command("soak")
def bench_soak(
    minutes: Annotated[
        float, typer.Option("--minutes", min=0.05, help="How long the load runs.")
    ] = 60.0,
    file: SpeechFile = None,
    url: HttpUrlOption = None,
    pid: Annotated[
        int | None,
        typer.Option("--pid", help="Process id of the --url server (default: found by port)."),
    ] = None,
    model: SpawnedModelOption = None,
    streams: Annotated[
        int, typer.Option("--streams", min=0, max=32, help="Transcription streams.")
    ] = 2,
    reply_streams: Annotated[
        int, typer.Option("--reply-streams", min=0, max=32, help="Streams with spoken replies.")
    ] = 1,
    classifiers: Annotated[
        bool, typer.Option("--classifiers/--no-classifiers", help="Live classifiers on streams.")
    ] = True,
    http_every_s: Annotated[
        float,
        typer.Option("--http-every-s", min=0.0, help="Seconds between HTTP requests; 0: none."),
    ] = 15.0,
    abuse_every_s: Annotated[
        float,
        typer.Option("--abuse-every-s", min=0.0, help="Seconds between abusive clients; 0: none."),
    ] = 20.0,
    sample_every_s: Annotated[
        float, typer.Option("--sample-every-s", min=0.5, help="Seconds between RSS samples.")
    ] = 5.0,
    output: JsonOutput = Path("bench-results/soak.json"),
) -> None:
    """Memory, errors and balanced counters of a server under M minutes of mixed load."""
    from voxwire.transports.bench.soak import SoakOptions, run_soak_bench
    from voxwire.transports.bench.soak_load import LoadMix

    options = SoakOptions(
        minutes=minutes,
        file=file,
        url=url,
        pid=pid,
        model=model,
        mix=LoadMix(
            transcription_streams=streams,
            reply_streams=reply_streams,
            classifiers=classifiers,
            http_every_s=http_every_s,
            abuse_every_s=abuse_every_s,
        ),
        sample_every_s=sample_every_s,
        output=output,
    )
    run_soak_bench(options, Console(stderr=True))


@bench_app.command("chat")
def bench_chat(
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed answers.")] = 3,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=2, max=1024, help="Tokens per answer.")
    ] = 48,
    config: ConfigOption = None,
    chat_model: ChatModelOption = None,
    file: SpeechFile = None,
    output: JsonOutput = Path("bench-results/chat.json"),
) -> None:
    """Time to first token (from the audio) and tokens per second of each chat model."""
    from voxwire.services.chat import CHAT_TASKS
    from voxwire.transports.bench.chat import ChatBenchOptions, run_chat_bench
    from voxwire.transports.cli import config as configuration

    plan = configuration.with_chat_model(
        configuration.load(config) if config is not None else configuration.resolve(),
        chat_model,
    )
    chat_specs = tuple(s for s in plan.specs if s.task in CHAT_TASKS)
    audio = None if file is None else decode_audio(file)
    run_chat_bench(ChatBenchOptions(chat_specs, repeats, max_tokens, output, audio))
