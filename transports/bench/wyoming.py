"""`voxwire bench wyoming`: any Wyoming server, measured as Home Assistant uses it.

Each target is a Wyoming server (voxwire, or a peer such as wyoming-faster-whisper or
wyoming-piper) reached with the `wyoming` package's own AsyncTcpClient. `describe`
says what it serves:

* asr: every recording of a corpus directory (``NAME.wav`` beside ``NAME.txt``, the
  layout wyoming-bench reads) is sent as ``transcribe``, ``audio-start``, PCM16
  ``audio-chunk``s at the pace of speech, ``audio-stop``, on a connection of its own,
  while the answers are read as they come. Per utterance: the first text
  (``transcript-chunk`` or ``transcript``) from the audio's start and from
  ``audio-stop`` (negative: it came while the speaker was still talking), the final
  transcript from ``audio-stop`` and from the start (total), and the WER against the
  ``.txt`` (the normalisation of ``voxwire bench stream``).
* tts: the corpus's texts as ``synthesize`` and, when the server supports it, as
  ``synthesize-start`` / word-by-word ``synthesize-chunk`` / ``synthesize-stop``:
  time to the first audio chunk and to the end, and the seconds of audio made.

Targets are measured one at a time and interleaved round by round (the order rotates
each round), so a shared machine's load falls on all of them alike; the figures are
medians over rounds and utterances, and the load average is recorded with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

from voxwire.engine.audio import MODEL_RATE
from voxwire.services.media import decode_audio
from voxwire.transports.bench.stream import (
    BenchError,
    free_port,
    machine_info,
    normalise_words,
    percentiles,
    stop_process,
    to_pcm16,
    voxwire_command,
    word_errors,
)

EVENT_TIMEOUT_S = 60.0
SERVER_START_TIMEOUT_S = 180.0
WIDTH = 2
CHANNELS = 1


@dataclass(frozen=True)
class Target:
    """A Wyoming server under test: a label and where it listens."""

    name: str
    host: str
    port: int

    @property
    def uri(self) -> str:
        return f"tcp://{self.host}:{self.port}"


def parse_target(text: str) -> Target:
    """``NAME=tcp://HOST:PORT`` (or ``tcp://HOST:PORT``, named by its port)."""
    name, sep, uri = text.partition("=")
    if not sep:
        name, uri = "", text
    parts = urlsplit(uri)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ValueError(f"a target is NAME=tcp://HOST:PORT, not {text!r}")
    return Target(name.strip() or f"{parts.hostname}:{parts.port}", parts.hostname, parts.port)


@dataclass(frozen=True)
class Utterance:
    """One recording of the corpus and what was said in it."""

    name: str
    pcm: bytes
    """PCM16 mono at MODEL_RATE."""
    reference: str

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (WIDTH * MODEL_RATE)


def read_corpus(directory: Path, limit: int | None = None) -> list[Utterance]:
    """Every ``*.wav`` (any format FFmpeg decodes) with a ``.txt`` beside it, by name."""
    if not directory.is_dir():
        raise BenchError(f"--corpus {directory} is not a directory")
    found = []
    for wav in sorted(directory.glob("*.wav")):
        txt = wav.with_suffix(".txt")
        if not txt.is_file():
            continue
        audio = decode_audio(wav)
        found.append(Utterance(wav.stem, to_pcm16(audio), txt.read_text().strip()))
    if not found:
        raise BenchError(f"no NAME.wav with a NAME.txt beside it in {directory}")
    return found[:limit] if limit else found


@dataclass(frozen=True)
class BenchOptions:
    corpus: Path
    targets: tuple[Target, ...] = ()
    """Empty: spawn `voxwire wyoming` on a free port and measure it."""
    rounds: int = 3
    chunk_samples: int = 1024
    pace: float = 1.0
    """Times real time; 0 sends the audio as fast as the socket takes it."""
    limit: int | None = None
    stt: bool = True
    tts: bool = True
    output: Path = Path("bench-results/wyoming.json")


# -- one request --------------------------------------------------------------------------


@dataclass
class SttRun:
    """One utterance through one server; times in ms from `audio-start` on the client."""

    utterance: str
    audio_ms: float
    stop_ms: float = 0.0
    first_text_ms: float | None = None
    final_ms: float | None = None
    chunks: int = 0
    transcript: str = ""
    errors: int = 0
    words: int = 0
    error: str | None = None

    @property
    def first_text_after_stop_ms(self) -> float | None:
        return None if self.first_text_ms is None else self.first_text_ms - self.stop_ms

    @property
    def final_after_stop_ms(self) -> float | None:
        return None if self.final_ms is None else self.final_ms - self.stop_ms

    def figures(self) -> dict[str, Any]:
        row = asdict(self)
        row["first_text_after_stop_ms"] = self.first_text_after_stop_ms
        row["final_after_stop_ms"] = self.final_after_stop_ms
        row["wer"] = round(self.errors / self.words, 4) if self.words else None
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}


async def _read(client: AsyncTcpClient) -> Event:
    event = await asyncio.wait_for(client.read_event(), EVENT_TIMEOUT_S)
    if event is None:
        raise BenchError("the server closed the connection")
    if Error.is_type(event.type):
        raise BenchError(f"error event: {Error.from_event(event).text}")
    return event


async def describe(target: Target) -> Info:
    """The target's `info`."""
    async with AsyncTcpClient(target.host, target.port) as client:
        await client.write_event(Describe().event())
        while True:
            event = await _read(client)
            if Info.is_type(event.type):
                return Info.from_event(event)


async def transcribe(
    target: Target, utterance: Utterance, chunk_samples: int, pace: float
) -> SttRun:
    """Stream one utterance at `pace` while reading the answers as they arrive."""
    run = SttRun(utterance.name, round(utterance.seconds * 1000, 1))
    step = chunk_samples * WIDTH
    chunk_s = chunk_samples / MODEL_RATE / pace if pace > 0 else 0.0
    async with AsyncTcpClient(target.host, target.port) as client:
        started = time.perf_counter()

        def ms() -> float:
            return (time.perf_counter() - started) * 1000

        async def send() -> None:
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(MODEL_RATE, WIDTH, CHANNELS).event())
            for i, offset in enumerate(range(0, len(utterance.pcm), step)):
                ahead = started + i * chunk_s - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
                audio = utterance.pcm[offset : offset + step]
                await client.write_event(AudioChunk(MODEL_RATE, WIDTH, CHANNELS, audio).event())
            await asyncio.sleep(
                max(0.0, started + len(utterance.pcm) / step * chunk_s - time.perf_counter())
            )
            run.stop_ms = ms()
            await client.write_event(AudioStop().event())

        async def receive() -> None:
            while True:
                event = await _read(client)
                if TranscriptChunk.is_type(event.type):
                    run.chunks += 1
                    if run.first_text_ms is None and TranscriptChunk.from_event(event).text.strip():
                        run.first_text_ms = ms()
                elif Transcript.is_type(event.type):
                    run.final_ms = ms()
                    if run.first_text_ms is None:
                        run.first_text_ms = run.final_ms
                    run.transcript = Transcript.from_event(event).text.strip()
                    return

        sender = asyncio.create_task(send())
        try:
            await receive()
            await sender
        except (BenchError, OSError, TimeoutError) as exc:
            run.error = str(exc) or type(exc).__name__
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
    reference = normalise_words(utterance.reference)
    run.words = len(reference)
    run.errors = word_errors(reference, normalise_words(run.transcript))
    return run


@dataclass
class TtsRun:
    """One text through one server; times in ms from the first event sent."""

    text: str
    mode: str
    first_audio_ms: float | None = None
    total_ms: float | None = None
    audio_seconds: float = 0.0
    error: str | None = None

    def figures(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


async def synthesize(target: Target, text: str, streaming: bool) -> TtsRun:
    """`synthesize` (or a text stream, word by word) and every audio chunk until the end."""
    run = TtsRun(text, "stream" if streaming else "synthesize")
    samples = 0.0
    async with AsyncTcpClient(target.host, target.port) as client:
        started = time.perf_counter()
        try:
            if streaming:
                await client.write_event(SynthesizeStart().event())
                words = text.split()
                for i, word in enumerate(words):
                    await client.write_event(
                        SynthesizeChunk(word if i == 0 else f" {word}").event()
                    )
                # As Home Assistant does: the whole text too, for servers without streaming.
                await client.write_event(Synthesize(text).event())
                await client.write_event(SynthesizeStop().event())
            else:
                await client.write_event(Synthesize(text).event())
            while True:
                event = await _read(client)
                if AudioChunk.is_type(event.type):
                    chunk = AudioChunk.from_event(event)
                    if run.first_audio_ms is None:
                        run.first_audio_ms = (time.perf_counter() - started) * 1000
                    samples += len(chunk.audio) / (chunk.width * chunk.channels * chunk.rate)
                elif (streaming and SynthesizeStopped.is_type(event.type)) or (
                    not streaming and AudioStop.is_type(event.type)
                ):
                    run.total_ms = (time.perf_counter() - started) * 1000
                    break
        except (BenchError, OSError, TimeoutError) as exc:
            run.error = str(exc) or type(exc).__name__
    run.audio_seconds = samples
    return run


# -- a whole run -------------------------------------------------------------------------


@dataclass
class TargetResult:
    target: Target
    info: Info
    stt: list[list[SttRun]] = field(default_factory=list)
    """One list per round."""
    tts: list[list[TtsRun]] = field(default_factory=list)

    @property
    def asr_program(self) -> str | None:
        programs = [p for p in self.info.asr if p.installed]
        return programs[0].name if programs else None

    @property
    def tts_program(self) -> str | None:
        programs = [p for p in self.info.tts if p.installed]
        return programs[0].name if programs else None

    @property
    def transcript_streaming(self) -> bool:
        return any(p.supports_transcript_streaming for p in self.info.asr)

    @property
    def synthesize_streaming(self) -> bool:
        return any(p.supports_synthesize_streaming for p in self.info.tts)


def stt_summary(rounds: Sequence[Sequence[SttRun]]) -> dict[str, Any]:
    """Medians over every utterance of every round; the WER of each round's whole corpus."""
    runs = [run for one in rounds for run in one]
    ok = [run for run in runs if run.error is None]
    wers = [
        sum(r.errors for r in one) / max(1, sum(r.words for r in one))
        for one in rounds
        if all(r.error is None for r in one)
    ]
    return {
        "utterances": len(runs),
        "failed": len(runs) - len(ok),
        "first_text_ms": percentiles([r.first_text_ms for r in ok if r.first_text_ms is not None]),
        "first_text_after_stop_ms": percentiles(
            [v for r in ok if (v := r.first_text_after_stop_ms) is not None]
        ),
        "first_text_before_stop": sum(
            1 for r in ok if r.first_text_ms is not None and r.first_text_ms < r.stop_ms
        ),
        "final_after_stop_ms": percentiles(
            [v for r in ok if (v := r.final_after_stop_ms) is not None]
        ),
        "total_ms": percentiles([r.final_ms for r in ok if r.final_ms is not None]),
        "audio_ms": percentiles([r.audio_ms for r in ok]),
        "wer_per_round": [round(w, 4) for w in wers],
        "wer": round(statistics.median(wers), 4) if wers else None,
    }


def tts_summary(runs: Sequence[TtsRun]) -> dict[str, Any]:
    ok = [run for run in runs if run.error is None]
    audio = sum(r.audio_seconds for r in ok)
    total = sum(r.total_ms or 0.0 for r in ok) / 1000
    return {
        "requests": len(runs),
        "failed": len(runs) - len(ok),
        "first_audio_ms": percentiles([r.first_audio_ms for r in ok if r.first_audio_ms]),
        "total_ms": percentiles([r.total_ms for r in ok if r.total_ms is not None]),
        "audio_seconds_mean": round(audio / len(ok), 3) if ok else None,
        "real_time_factor": round(total / audio, 4) if audio else None,
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def _round(
    results: Sequence[TargetResult], corpus: Sequence[Utterance], options: BenchOptions, index: int
) -> None:
    shift = index % len(results)
    for result in [*results[shift:], *results[:shift]]:
        target = result.target
        if options.stt and result.asr_program:
            result.stt.append(
                [await transcribe(target, u, options.chunk_samples, options.pace) for u in corpus]
            )
        if options.tts and result.tts_program:
            runs = []
            for u in corpus:
                runs.append(await synthesize(target, u.reference, streaming=False))
                if result.synthesize_streaming:
                    runs.append(await synthesize(target, u.reference, streaming=True))
            result.tts.append(runs)


async def _warm_up(
    result: TargetResult, corpus: Sequence[Utterance], options: BenchOptions
) -> None:
    """One untimed request per program: models load, caches fill, sockets open."""
    if options.stt and result.asr_program:
        await transcribe(result.target, corpus[0], options.chunk_samples, pace=0.0)
    if options.tts and result.tts_program:
        await synthesize(result.target, corpus[0].reference, streaming=False)


async def measure(
    targets: Sequence[Target], corpus: Sequence[Utterance], options: BenchOptions, console: Console
) -> tuple[list[TargetResult], list[dict[str, Any]]]:
    results = []
    for target in targets:
        try:
            info = await describe(target)
        except (BenchError, OSError, TimeoutError) as exc:
            raise BenchError(
                f"{target.name} ({target.uri}) did not answer describe: {exc}"
            ) from exc
        result = TargetResult(target, info)
        await _warm_up(result, corpus, options)
        results.append(result)
    loads = []
    for index in range(options.rounds):
        with console.status(f"round {index + 1} of {options.rounds}..."):
            before = _load()
            started = time.perf_counter()
            await _round(results, corpus, options, index)
            loads.append(
                {
                    "round": index + 1,
                    "load_before": before,
                    "load_after": _load(),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
    return results, loads


# -- a spawned voxwire -------------------------------------------------------------------


@contextlib.contextmanager
def spawned_voxwire(console: Console) -> Iterator[Target]:
    """`voxwire wyoming` on a free loopback port until the block ends."""
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="voxwire-bench-")) / "wyoming.log"
    target = Target("voxwire", "127.0.0.1", port)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            voxwire_command("wyoming", "--uri", target.uri),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        with console.status(f"starting voxwire wyoming on port {port}..."):
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    tail = " | ".join(log_path.read_text(errors="replace").splitlines()[-3:])
                    raise BenchError(
                        f"voxwire wyoming exited with code {process.returncode}: {tail}"
                    )
                try:
                    asyncio.run(describe(target))
                    break
                except (OSError, BenchError, TimeoutError):
                    if time.monotonic() > deadline:
                        raise BenchError(f"voxwire wyoming did not answer on port {port}") from None
                    time.sleep(0.3)
        yield target
    finally:
        stop_process(process)


# -- the report --------------------------------------------------------------------------


def _asr_program(info: Info) -> dict[str, Any] | None:
    if not info.asr:
        return None
    program = info.asr[0]
    return {
        "name": program.name,
        "version": program.version,
        "models": [m.name for m in program.models if m.installed][:5],
        "streaming": bool(program.supports_transcript_streaming),
    }


def _tts_program(info: Info) -> dict[str, Any] | None:
    if not info.tts:
        return None
    program = info.tts[0]
    return {
        "name": program.name,
        "version": program.version,
        "voices": len(program.voices),
        "streaming": bool(program.supports_synthesize_streaming),
    }


def report(
    results: Sequence[TargetResult],
    corpus: Sequence[Utterance],
    options: BenchOptions,
    loads: list[dict[str, Any]],
) -> dict[str, Any]:
    targets = []
    for result in results:
        entry: dict[str, Any] = {
            "name": result.target.name,
            "uri": result.target.uri,
            "programs": {"asr": _asr_program(result.info), "tts": _tts_program(result.info)},
        }
        if result.stt:
            entry["stt"] = stt_summary(result.stt)
            entry["stt_runs"] = [[run.figures() for run in one] for one in result.stt]
        if result.tts:
            runs = [run for one in result.tts for run in one]
            entry["tts"] = {
                mode: tts_summary([r for r in runs if r.mode == mode])
                for mode in ("synthesize", "stream")
                if any(r.mode == mode for r in runs)
            }
            entry["tts_runs"] = [[run.figures() for run in one] for one in result.tts]
        targets.append(entry)
    return {
        "machine": machine_info(),
        "load_average": loads,
        "options": {
            "corpus": str(options.corpus),
            "rounds": options.rounds,
            "chunk_samples": options.chunk_samples,
            "pace": options.pace,
        },
        "corpus": [
            {"name": u.name, "audio_seconds": round(u.seconds, 3), "reference": u.reference}
            for u in corpus
        ],
        "targets": targets,
    }


def _cell(figures: dict[str, Any] | None, key: str = "p50") -> str:
    value = None if figures is None else figures.get(key)
    return "-" if value is None else f"{value:.0f}"


STT_NOTE = (
    "first text: ms from audio-start to the first words (a transcript-chunk, or the "
    "transcript); vs stop: the same from audio-stop, negative while the speaker was still "
    "talking; final: ms from audio-stop to the transcript; total: audio-start to the "
    "transcript; WER: the whole corpus, median of the rounds."
)


def _table(title: str, columns: Sequence[str], left: int) -> Table:
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < left else "right")
    return table


def print_tables(result: dict[str, Any], console: Console) -> None:
    """The medians of every target: speech to text, then text to speech."""
    stt = _table(
        "voxwire bench wyoming: speech to text (medians)",
        ("target", "ok", "first text", "vs stop", "before stop", "final", "total", "WER"),
        left=1,
    )
    tts = _table(
        "voxwire bench wyoming: text to speech (medians)",
        ("target", "mode", "ok", "first audio", "total", "audio", "RTF"),
        left=2,
    )
    for entry in result["targets"]:
        if "stt" in entry:
            s = entry["stt"]
            ok = s["utterances"] - s["failed"]
            stt.add_row(
                entry["name"],
                f"{ok}/{s['utterances']}",
                _cell(s["first_text_ms"]),
                _cell(s["first_text_after_stop_ms"]),
                f"{s['first_text_before_stop']}/{ok}",
                _cell(s["final_after_stop_ms"]),
                _cell(s["total_ms"]),
                "-" if s["wer"] is None else f"{100 * s['wer']:.1f}%",
            )
        for mode, t in entry.get("tts", {}).items():
            tts.add_row(
                entry["name"],
                mode,
                f"{t['requests'] - t['failed']}/{t['requests']}",
                _cell(t["first_audio_ms"]),
                _cell(t["total_ms"]),
                "-" if t["audio_seconds_mean"] is None else f"{t['audio_seconds_mean']:.2f} s",
                "-" if t["real_time_factor"] is None else f"{t['real_time_factor']:.3f}",
            )
    if stt.row_count:
        console.print(stt)
        console.print(STT_NOTE)
    if tts.row_count:
        console.print(tts)
    for entry in result["targets"]:
        programs = [p for p in entry["programs"].values() if p is not None]
        named = ", ".join(f"{p['name']} {p['version'] or ''}".strip() for p in programs)
        console.print(f"{entry['name']} ({entry['uri']}): {named}")
    loads = [entry["load_after"][0] for entry in result["load_average"]]
    if loads:
        console.print(f"load average (1 min) after each round: {', '.join(map(str, loads))}")


def run_wyoming_bench(options: BenchOptions) -> dict[str, Any]:
    """Measure every target (or a spawned voxwire), print the tables, write the JSON."""
    if options.rounds < 1:
        raise BenchError("--rounds must be at least 1")
    err = Console(stderr=True)
    corpus = read_corpus(options.corpus, options.limit)
    with contextlib.ExitStack() as stack:
        targets = list(options.targets) or [stack.enter_context(spawned_voxwire(err))]
        results, loads = asyncio.run(measure(targets, corpus, options, err))
    result = report(results, corpus, options, loads)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result, Console())
    Console().print(f"wrote {options.output}")
    return result
