"""`voxwire bench http`: throughput and time to first byte of the OpenAI audio endpoints.

Against a `voxwire serve` it starts on a free loopback port (or `--url`):

* transcription throughput: for each concurrency level, N requests posting FILE
  to `/v1/audio/transcriptions` (multipart, as the OpenAI SDK sends it), at
  most `level` in flight at once; figures are audio seconds transcribed per
  wall-clock second, requests per second and request latency percentiles;
* speech latency: a few `/v1/audio/speech` requests of a multi-sentence text
  per response format (pcm and mp3 by default), read as a stream; figures are
  the time to the first audio byte and the total time (p50/p95), which shows
  how much sentence-by-sentence streaming saves a listener.

It prints two tables and writes JSON (bench-results/http.json by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.table import Table

from voxwire.engine.audio import MODEL_RATE
from voxwire.services.audio_encoding import OUTPUT_RATE
from voxwire.services.media import decode_audio
from voxwire.transports.bench.stream import (
    BenchError,
    fetch_health,
    machine_info,
    percentiles,
    server_under_test,
)

if TYPE_CHECKING:
    import httpx2

SPEECH_RATE = OUTPUT_RATE
"""OpenAI's (and voxwire's) output rate; pcm answers are PCM16 mono at this rate."""

TRANSCRIPTIONS = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"
REQUEST_TIMEOUT_S = 300.0

DEFAULT_TEXT = (
    "The quick brown fox jumps over the lazy dog. Please turn on the lights in the "
    "kitchen. What time does the train leave tomorrow morning? I would like to book a "
    "table for two people at seven o'clock tonight, please."
)

MIME_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
}


@dataclass(frozen=True)
class HttpBenchOptions:
    """What `voxwire bench http` was asked to do."""

    file: Path
    levels: tuple[int, ...] = (1, 2, 4, 8)
    requests: int = 8
    """Transcription requests per level (at least the level itself)."""
    speech_requests: int = 5
    speech_text: str = DEFAULT_TEXT
    formats: tuple[str, ...] = ("pcm", "mp3")
    output: Path = Path("bench-results/http.json")
    url: str | None = None
    model: str | None = None
    api_key: str | None = None
    warmup: bool = True


def http_base(url: str) -> str:
    """`scheme://host:port` of an http(s) or ws(s) URL (any path is dropped)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise BenchError(f"--url must be an http:// or https:// URL, not {url!r}")
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def _error_text(response: httpx2.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    return f"HTTP {response.status_code}: {message}"


def _check_endpoint(response: httpx2.Response, path: str) -> None:
    """A first request that fails says why the bench cannot go on."""
    if response.status_code == 200:
        return
    if response.status_code == 404:
        raise BenchError(f"the server does not serve {path} (404)")
    if response.status_code == 401:
        raise BenchError(f"{path} needs an API key: pass --api-key")
    raise BenchError(f"{path} failed: {_error_text(response)}")


# -- transcription throughput ----------------------------------------------------------------


async def transcribe_once(client: httpx2.AsyncClient, file: Path, data: bytes) -> httpx2.Response:
    """One `/v1/audio/transcriptions` request, shaped as the OpenAI SDK sends it."""
    mime = MIME_TYPES.get(file.suffix.lower(), "application/octet-stream")
    return await client.post(
        TRANSCRIPTIONS,
        files={"file": (file.name, data, mime)},
        data={"model": "whisper-1", "response_format": "json"},
    )


async def transcription_level(
    client: httpx2.AsyncClient,
    file: Path,
    data: bytes,
    audio_seconds: float,
    level: int,
    requests: int,
) -> dict[str, Any]:
    """`requests` transcriptions with at most `level` in flight; the level's figures."""
    gate = asyncio.Semaphore(level)
    latencies: list[float] = []
    errors: list[str] = []
    texts: list[str] = []

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            try:
                response = await transcribe_once(client, file, data)
            except Exception as exc:  # a transport failure counts, it does not end the bench
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            if response.status_code != 200:
                errors.append(_error_text(response))
                return
            latencies.append(1000.0 * (time.perf_counter() - started))
            texts.append(str(response.json().get("text", "")))

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    wall = time.perf_counter() - started
    ok = len(latencies)
    return {
        "concurrency": level,
        "requests": requests,
        "ok": ok,
        "failed": len(errors),
        "wall_seconds": round(wall, 3),
        "audio_seconds_per_second": round(ok * audio_seconds / wall, 2) if wall > 0 else None,
        "requests_per_second": round(ok / wall, 2) if wall > 0 else None,
        "latency_ms": percentiles(latencies),
        "errors": errors[:5],
        "transcript": texts[0] if texts else "",
    }


# -- speech time to first byte ---------------------------------------------------------------


async def speech_once(
    client: httpx2.AsyncClient, text: str, response_format: str
) -> tuple[float, float, int]:
    """(time to first audio byte, total time, bytes) of one streamed speech request."""
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": response_format}
    started = time.perf_counter()
    first: float | None = None
    size = 0
    async with client.stream("POST", SPEECH, json=body) as response:
        if response.status_code != 200:
            await response.aread()
            _check_endpoint(response, SPEECH)
        async for chunk in response.aiter_bytes():
            if chunk and first is None:
                first = time.perf_counter() - started
            size += len(chunk)
    total = time.perf_counter() - started
    if first is None:
        raise BenchError(f"{SPEECH} answered no audio ({response_format})")
    return first, total, size


async def speech_format(
    client: httpx2.AsyncClient, text: str, response_format: str, requests: int
) -> dict[str, Any]:
    """`requests` sequential speech requests in one format; TTFB and total percentiles."""
    ttfb: list[float] = []
    totals: list[float] = []
    sizes: list[int] = []
    for _ in range(requests):
        first, total, size = await speech_once(client, text, response_format)
        ttfb.append(1000.0 * first)
        totals.append(1000.0 * total)
        sizes.append(size)
    figures: dict[str, Any] = {
        "format": response_format,
        "requests": requests,
        "ttfb_ms": percentiles(ttfb),
        "total_ms": percentiles(totals),
        "bytes_mean": round(sum(sizes) / len(sizes)) if sizes else 0,
    }
    if response_format == "pcm" and sizes:
        figures["audio_seconds"] = round(sizes[0] / 2 / SPEECH_RATE, 3)
    return figures


# -- the bench -------------------------------------------------------------------------------


def run_http_bench(options: HttpBenchOptions) -> dict[str, Any]:
    """Run both measurements, print the tables and write the JSON result; the result."""
    out = Console()
    err = Console(stderr=True)
    if options.requests < 1 or options.speech_requests < 0:
        raise BenchError("--requests must be at least 1 and --speech-requests at least 0")
    audio_seconds = len(decode_audio(options.file)) / MODEL_RATE
    if audio_seconds == 0:
        raise BenchError(f"{options.file} holds no audio")
    data = options.file.read_bytes()
    with contextlib.ExitStack() as stack:
        url = None if options.url is None else http_base(options.url)
        handle = server_under_test(stack, url, options.model, err)
        base = http_base(handle.url)
        health = fetch_health(base + "/health")
        transcription, speech = asyncio.run(_measure(base, data, audio_seconds, options, err))
        problems = handle.problems()
    result: dict[str, Any] = {
        "file": str(options.file),
        "audio_seconds": round(audio_seconds, 3),
        "server": {
            "url": base,
            "spawned": handle.process is not None,
            "model": (health or {}).get("models", {}).get("asr"),
        },
        "machine": machine_info(),
        "transcription": transcription,
        "speech": speech,
        "summary": summarise(transcription["levels"]),
        "server_log_problems": problems,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result, out)
    out.print(f"wrote {options.output}")
    return result


async def _measure(
    base: str, data: bytes, audio_seconds: float, options: HttpBenchOptions, err: Console
) -> tuple[dict[str, Any], dict[str, Any]]:
    import httpx2

    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    most = max(options.levels)
    limits = httpx2.Limits(max_connections=most, max_keepalive_connections=most)
    async with httpx2.AsyncClient(
        base_url=base,
        headers=headers,
        timeout=REQUEST_TIMEOUT_S,
        limits=limits,
        trust_env=False,
    ) as client:
        with err.status("checking the endpoints..."):
            try:
                first = await transcribe_once(client, options.file, data)
            except httpx2.TransportError as exc:
                raise BenchError(f"cannot reach {base}: {exc or type(exc).__name__}") from None
            _check_endpoint(first, TRANSCRIPTIONS)
            if options.speech_requests and options.warmup:
                await speech_once(client, "Hello.", options.formats[0])
        levels = []
        for level in options.levels:
            count = max(options.requests, level)
            with err.status(f"{count} transcriptions, {level} at a time..."):
                figures = await transcription_level(
                    client, options.file, data, audio_seconds, level, count
                )
            err.print(
                f"concurrency {level}: {figures['audio_seconds_per_second']} audio s/s, "
                f"{figures['ok']}/{count} ok",
                markup=False,
                highlight=False,
            )
            levels.append(figures)
        formats = []
        if options.speech_requests:
            for response_format in options.formats:
                with err.status(f"speech as {response_format}..."):
                    formats.append(
                        await speech_format(
                            client, options.speech_text, response_format, options.speech_requests
                        )
                    )
    transcription = {
        "requests_per_level": options.requests,
        "levels": levels,
        "transcript": levels[0].pop("transcript", "") if levels else "",
    }
    for level_figures in levels:
        level_figures.pop("transcript", None)
    speech = {
        "text": options.speech_text,
        "characters": len(options.speech_text),
        "requests_per_format": options.speech_requests,
        "formats": formats,
    }
    return transcription, speech


def summarise(levels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The level with the highest throughput among those where nothing failed."""
    clean = [level for level in levels if level["failed"] == 0 and level["ok"]]
    if not clean:
        return {"best_audio_seconds_per_second": None, "at_concurrency": None}
    best = max(clean, key=lambda level: level["audio_seconds_per_second"] or 0.0)
    return {
        "best_audio_seconds_per_second": best["audio_seconds_per_second"],
        "at_concurrency": best["concurrency"],
    }


def _fmt(figures: dict[str, Any], *keys: str) -> str:
    return " / ".join("-" if figures.get(k) is None else str(figures[k]) for k in keys)


def print_tables(result: dict[str, Any], console: Console) -> None:
    """The transcription levels, then the speech formats."""
    table = Table(
        title=(
            f"voxwire bench http: {TRANSCRIPTIONS}, {result['file']} "
            f"({result['audio_seconds']} s of audio)"
        )
    )
    for name in ("concurrency", "ok/failed", "wall s", "audio s/s", "req/s"):
        table.add_column(name, justify="right")
    table.add_column("latency p50/p95/max ms", justify="right")
    for level in result["transcription"]["levels"]:
        table.add_row(
            str(level["concurrency"]),
            f"{level['ok']}/{level['failed']}",
            str(level["wall_seconds"]),
            str(level["audio_seconds_per_second"]),
            str(level["requests_per_second"]),
            _fmt(level["latency_ms"], "p50", "p95", "max"),
        )
    console.print(table)
    speech = result["speech"]
    if speech["formats"]:
        table = Table(title=f"voxwire bench http: {SPEECH}, {speech['characters']} characters")
        table.add_column("format")
        table.add_column("first byte p50/p95 ms", justify="right")
        table.add_column("total p50/p95 ms", justify="right")
        table.add_column("bytes", justify="right")
        for figures in speech["formats"]:
            table.add_row(
                figures["format"],
                _fmt(figures["ttfb_ms"], "p50", "p95"),
                _fmt(figures["total_ms"], "p50", "p95"),
                str(figures["bytes_mean"]),
            )
        console.print(table)
    summary = result["summary"]
    console.print(
        f"best transcription throughput: {summary['best_audio_seconds_per_second']} audio "
        f"seconds per second at concurrency {summary['at_concurrency']}"
    )
