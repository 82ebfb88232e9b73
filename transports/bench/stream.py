"""`voxwire bench stream`: how many concurrent Realtime streams one server carries.

For each level (a number of concurrent clients) the bench opens that many
`?intent=transcription` WebSocket sessions on a voxwire server, sets their input
rate to 16 kHz and sends the same speech file, followed by trailing silence, as
binary PCM16 frames at real-time pace against an absolute clock. Each client
records when every item's speech_started, first delta, speech_stopped and
completed (or failed) event arrives, waits until every started item has ended,
then asks for the session's `voxwire.session.stats` counters.

Figures per level:
- first-delta latency: first delta - speech_started, and final latency:
  completed - speech_stopped (client-side receive times, ms; p50/p90/p95/p99);
- real-time factor: wall time from a stream's first send to its last transcript,
  over the file's duration (mean and max over streams);
- send lag: how far behind its schedule the client sent a frame (max, ms);
- audio dropped: evicted + segmented-but-not-transcribed samples, summed over
  streams (ms), with the dropped partial jobs and failed transcriptions.

The summary names the largest level whose p95 final latency is at most 500 ms
and that lost no audio. Without `--url` the bench starts `voxwire serve` on a
free loopback port, and stops it at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from voxwire.engine.errors import VoxwireError
from voxwire.services.media import decode_audio

RATE = 16_000
"""The input rate every bench session asks for (the rate decode_audio returns)."""

FINAL_P95_BUDGET_MS = 500.0
"""A level passes when its p95 final latency is at most this and it lost no audio."""

SETTLE_TIMEOUT_S = 30.0
"""How long after its last frame a stream waits for its outstanding transcripts."""

HANDSHAKE_TIMEOUT_S = 15.0
STATS_TIMEOUT_S = 10.0
SERVER_START_TIMEOUT_S = 180.0
WARMUP_SECONDS = 3.0

PERCENTILES = (50, 90, 95, 99)

SUMMARY_KEY = "max_streams_p95_final_under_500ms"

COMPLETED = "conversation.item.input_audio_transcription.completed"
FAILED = "conversation.item.input_audio_transcription.failed"
DELTA = "conversation.item.input_audio_transcription.delta"
STARTED = "input_audio_buffer.speech_started"
STOPPED = "input_audio_buffer.speech_stopped"
STATS = "voxwire.session.stats"


class BenchError(VoxwireError):
    """The bench could not run: no server, a refused session, a server that died."""


@dataclass(frozen=True)
class StreamBenchOptions:
    """What `voxwire bench stream` was asked to do."""

    file: Path
    levels: tuple[int, ...]
    output: Path
    url: str | None = None
    model: str | None = None
    silence_ms: int = 1000
    chunk_ms: int = 20
    warmup: bool = True


def default_levels(streams: int) -> list[int]:
    """The ladder 1, 2, 4, 8, 12, 16, ... (steps of 4 after 8) up to and including `streams`."""
    if streams < 1:
        raise ValueError("the number of streams must be at least 1")
    ladder: list[int] = []
    level = 1
    while level < streams:
        ladder.append(level)
        level = level * 2 if level < 8 else level + 4
    ladder.append(streams)
    return ladder


def parse_levels(text: str | None, streams: int) -> list[int]:
    """`--levels` ("1,2,4") as sorted distinct stream counts; the default ladder when None."""
    if text is None or not text.strip():
        return default_levels(streams)
    levels: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a whole number of streams") from None
        if value < 1:
            raise ValueError(f"a level must be at least 1 stream, not {value}")
        levels.add(value)
    if not levels:
        raise ValueError("no stream counts given")
    return sorted(levels)


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p95/p99 and max of `values`, rounded to 0.1; None for each when empty."""
    if not values:
        return {**{f"p{p}": None for p in PERCENTILES}, "max": None}
    points = np.percentile(np.asarray(values, dtype=np.float64), PERCENTILES)
    figures: dict[str, float | None] = {
        f"p{p}": round(float(v), 1) for p, v in zip(PERCENTILES, points, strict=True)
    }
    figures["max"] = round(max(values), 1)
    return figures


def transcription_update(rate: int) -> dict[str, Any]:
    """The session.update that makes a session transcribe PCM16 at `rate`."""
    return {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {"input": {"format": {"type": "audio/pcm", "rate": rate}}},
        },
    }


def to_pcm16(audio: npt.NDArray[np.float32]) -> bytes:
    """Float samples in [-1, 1] as PCM16 little-endian bytes."""
    scaled = np.clip(audio, -1.0, 1.0) * 32767.0
    return np.round(scaled).astype("<i2").tobytes()


# -- one client --------------------------------------------------------------------------


@dataclass
class ItemTimes:
    """Client-side receive times (perf_counter seconds) of one item's events."""

    started: float | None = None
    first_delta: float | None = None
    stopped: float | None = None
    ended: float | None = None
    failed: bool = False
    transcript: str = ""


@dataclass
class StreamRecord:
    """What one client saw."""

    index: int
    items: dict[str, ItemTimes] = field(default_factory=dict)
    first_send: float | None = None
    last_send: float | None = None
    max_send_lag: float = 0.0
    counters: dict[str, int] | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def started_items(self) -> list[ItemTimes]:
        return [item for item in self.items.values() if item.started is not None]

    @property
    def missing(self) -> int:
        """Started items that neither completed nor failed."""
        return sum(1 for item in self.started_items if item.ended is None)

    @property
    def transcript(self) -> str:
        return " ".join(
            item.transcript.strip()
            for item in self.items.values()
            if item.ended is not None and not item.failed and item.transcript.strip()
        )


class StreamClient:
    """One Realtime transcription session driven at real-time pace."""

    def __init__(self, index: int, url: str) -> None:
        self.url = url
        self.record = StreamRecord(index)
        self._ws: ClientConnection | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._stats_waiters: list[asyncio.Future[dict[str, Any] | None]] = []
        self._closed: str | None = None

    async def open(self) -> None:
        """Connect, wait for session.created, switch the input rate to 16 kHz."""
        try:
            ws = await connect(
                self.url,
                max_size=None,
                compression=None,
                ping_interval=None,
                proxy=None,
                open_timeout=HANDSHAKE_TIMEOUT_S,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise BenchError(f"cannot connect to {self.url}: {exc}") from exc
        self._ws = ws
        try:
            await asyncio.wait_for(self._expect(ws, "session.created"), HANDSHAKE_TIMEOUT_S)
            await ws.send(json.dumps(transcription_update(RATE)))
            await asyncio.wait_for(self._expect(ws, "session.updated"), HANDSHAKE_TIMEOUT_S)
        except ConnectionClosed as exc:
            raise BenchError(f"stream {self.record.index}: the server closed: {exc}") from exc
        except TimeoutError as exc:
            raise BenchError(f"stream {self.record.index}: no answer from the server") from exc
        self._receiver = asyncio.create_task(self._receive(ws), name=f"bench-{self.record.index}")

    async def _expect(self, ws: ClientConnection, kind: str) -> None:
        while True:
            event = json.loads(await ws.recv())
            if event.get("type") == kind:
                return
            if event.get("type") == "error":
                raise BenchError(
                    f"stream {self.record.index}: the server answered with an error: "
                    f"{event.get('error', {}).get('message')}"
                )

    async def send_audio(self, pcm: bytes, chunk_ms: int, start_at: float, pace: bool) -> None:
        """Send `pcm` in chunk_ms frames; frame k is due at start_at + k * chunk_ms."""
        ws = self._ws
        assert ws is not None
        chunk_bytes = RATE * chunk_ms // 1000 * 2
        chunk_s = chunk_ms / 1000.0
        record = self.record
        try:
            for k in range(math.ceil(len(pcm) / chunk_bytes)):
                if pace:
                    due = start_at + k * chunk_s
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    record.max_send_lag = max(record.max_send_lag, time.perf_counter() - due)
                if record.first_send is None:
                    record.first_send = time.perf_counter()
                await ws.send(pcm[k * chunk_bytes : (k + 1) * chunk_bytes])
        except ConnectionClosed as exc:
            record.errors.append(f"connection closed while sending: {exc}")
        record.last_send = time.perf_counter()

    async def settle(self, deadline: float) -> None:
        """Wait (until `deadline`) for every started item to complete or fail.

        The server handles frames in order, so its answer to a stats request comes
        after the events of every frame sent before it: once it is here, no
        speech_started for the audio sent can still be on its way.
        """
        await self.request_stats(max(0.1, deadline - time.perf_counter()))
        while self.record.missing and self._closed is None:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def request_stats(self, wait_s: float) -> dict[str, Any] | None:
        """The session's voxwire.session.stats answer, or None (closed, timed out)."""
        if self._ws is None or self._closed is not None:
            return None
        waiter: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._stats_waiters.append(waiter)
        try:
            await self._ws.send(json.dumps({"type": STATS}))
            return await asyncio.wait_for(waiter, wait_s)
        except (ConnectionClosed, TimeoutError):
            return None
        finally:
            if waiter in self._stats_waiters:
                self._stats_waiters.remove(waiter)

    async def finish(self) -> None:
        """Keep the final counters, then close the connection."""
        stats = await self.request_stats(STATS_TIMEOUT_S)
        if stats is not None:
            self.record.counters = {k: int(v) for k, v in stats.get("counters", {}).items()}
        else:
            self.record.errors.append("no voxwire.session.stats answer")
        await self.close()

    async def close(self) -> None:
        """Close the socket and stop reading."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 5.0)
        if self._receiver is not None:
            self._receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._receiver

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                self._handle(json.loads(message), time.perf_counter())
                self._changed.set()
            self._closed = "closed"
        except ConnectionClosed as exc:
            self._closed = str(exc)
            self.record.errors.append(f"connection closed: {exc}")
        finally:
            if self._closed is None:
                self._closed = "stopped"
            for waiter in self._stats_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._changed.set()

    def _handle(self, event: dict[str, Any], now: float) -> None:
        kind = event.get("type")
        if kind == STATS:
            for waiter in self._stats_waiters:
                if not waiter.done():
                    waiter.set_result(event)
                    break
            return
        if kind == "error":
            error = event.get("error") or {}
            self.record.errors.append(f"{error.get('code')}: {error.get('message')}")
            return
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            return
        item = self.record.items.setdefault(item_id, ItemTimes())
        if kind == STARTED:
            item.started = now
        elif kind == DELTA:
            if item.first_delta is None:
                item.first_delta = now
        elif kind == STOPPED:
            item.stopped = now
        elif kind == COMPLETED:
            item.ended = now
            item.transcript = str(event.get("transcript", ""))
        elif kind == FAILED:
            item.ended = now
            item.failed = True
            error = event.get("error") or {}
            self.record.errors.append(f"transcription failed: {error.get('message', error)}")


# -- one level ---------------------------------------------------------------------------


async def run_streams(
    url: str, pcm: bytes, streams: int, chunk_ms: int, *, pace: bool = True
) -> list[StreamRecord]:
    """Run `streams` clients at once, starts staggered over one chunk; their records."""
    clients = [StreamClient(i, url) for i in range(streams)]
    try:
        async with asyncio.TaskGroup() as group:
            for client in clients:
                group.create_task(client.open())
        chunk_s = chunk_ms / 1000.0
        start = time.perf_counter() + 0.05
        async with asyncio.TaskGroup() as group:
            for i, client in enumerate(clients):
                group.create_task(
                    _run_one(client, pcm, chunk_ms, start + i * chunk_s / streams, pace)
                )
    except BaseExceptionGroup as group_error:
        first = group_error.exceptions[0]
        raise first from None
    finally:
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
    return [client.record for client in clients]


async def _run_one(
    client: StreamClient, pcm: bytes, chunk_ms: int, start_at: float, pace: bool
) -> None:
    await client.send_audio(pcm, chunk_ms, start_at, pace)
    await client.settle(time.perf_counter() + SETTLE_TIMEOUT_S)
    await client.finish()


def level_figures(records: Sequence[StreamRecord], audio_seconds: float) -> dict[str, Any]:
    """The figures of one level from its streams' records."""
    first_delta: list[float] = []
    final: list[float] = []
    rtfs: list[float] = []
    completed = failed = missing = 0
    for record in records:
        for item in record.started_items:
            if item.started is not None and item.first_delta is not None:
                first_delta.append(1000.0 * (item.first_delta - item.started))
            if item.ended is None:
                continue
            if item.failed:
                failed += 1
            else:
                completed += 1
                if item.stopped is not None:
                    final.append(1000.0 * (item.ended - item.stopped))
        missing += record.missing
        ends = [item.ended for item in record.items.values() if item.ended is not None]
        if record.first_send is not None and ends and audio_seconds > 0:
            rtfs.append((max(ends) - record.first_send) / audio_seconds)
    counters: dict[str, int] = {}
    for record in records:
        for key, value in (record.counters or {}).items():
            counters[key] = counters.get(key, 0) + value
    stats_missing = sum(1 for record in records if record.counters is None)
    dropped_samples = counters.get("evicted_samples", 0) + (
        counters.get("samples_segmented", 0) - counters.get("samples_transcribed", 0)
    )
    final_figures = percentiles(final)
    p95 = final_figures["p95"]
    audio_dropped_ms = round(1000.0 * dropped_samples / RATE, 1)
    ok = (
        p95 is not None
        and p95 <= FINAL_P95_BUDGET_MS
        and audio_dropped_ms == 0
        and failed == 0
        and missing == 0
        and stats_missing == 0
    )
    return {
        "streams": len(records),
        "utterances": sum(len(r.started_items) for r in records),
        "utterances_per_stream": [len(r.started_items) for r in records],
        "completed": completed,
        "failed": failed + missing,
        "missing": missing,
        "first_delta_latency_ms": percentiles(first_delta),
        "final_latency_ms": final_figures,
        "rtf": {
            "mean": round(float(np.mean(rtfs)), 3) if rtfs else None,
            "max": round(max(rtfs), 3) if rtfs else None,
        },
        "max_send_lag_ms": round(1000.0 * max((r.max_send_lag for r in records), default=0.0), 1),
        "audio_dropped_ms": audio_dropped_ms,
        "jobs_dropped": counters.get("jobs_dropped", 0),
        "transcriptions_failed": counters.get("transcriptions_failed", 0),
        "stats_missing": stats_missing,
        "counters": counters,
        "errors": sorted({e for r in records for e in r.errors})[:20],
        "ok": ok,
    }


def summarise(levels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The largest level that kept p95 final latency within budget and lost nothing."""
    passing = [level["streams"] for level in levels if level["ok"]]
    return {
        SUMMARY_KEY: max(passing) if passing else None,
        "criterion": (
            f"p95 final latency <= {FINAL_P95_BUDGET_MS:.0f} ms, no audio dropped "
            "(evicted or segmented but not transcribed), every utterance completed"
        ),
    }


# -- the server ----------------------------------------------------------------------------


@dataclass
class ServerHandle:
    """The server under test: its Realtime URL, and its process and log when spawned."""

    url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def health_url(self) -> str:
        parts = urlsplit(self.url)
        scheme = "https" if parts.scheme == "wss" else "http"
        return urlunsplit((scheme, parts.netloc, "/health", "", ""))

    def problems(self, limit: int = 20) -> list[str]:
        """Warning, error and traceback lines of a spawned server's log."""
        if self.log_path is None or not self.log_path.exists():
            return []
        markers = (" WARNING ", " ERROR ", " CRITICAL ", "Traceback", "voxwire: error")
        lines = self.log_path.read_text(errors="replace").splitlines()
        found = [line.rstrip() for line in lines if any(m in line for m in markers)]
        return found[:limit]


def server_under_test(
    stack: contextlib.ExitStack, url: str | None, model: str | None, err: Console
) -> ServerHandle:
    """A spawned `voxwire serve` (stopped when `stack` closes), or the server at `url`."""
    if url is None:
        return stack.enter_context(spawned_server(model, err))
    if model is not None:
        err.print("--model is ignored with --url: the running server chose its model")
    return ServerHandle(url=url)


def realtime_url(url: str) -> str:
    """`url` with the /v1/realtime path and ?intent=transcription when it has neither."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise BenchError(f"--url must be a ws:// or wss:// URL, not {url!r}")
    path = parts.path if parts.path not in ("", "/") else "/v1/realtime"
    query = dict(parse_qsl(parts.query))
    if "intent" not in query and "model" not in query:
        query["intent"] = "transcription"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def fetch_health(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The server's /health JSON, or None when it does not answer 200."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            body = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_command(port: int, model: str | None) -> list[str]:
    script = Path(sys.executable).parent / "voxwire"
    base = (
        [str(script)] if script.exists() else [sys.executable, "-m", "voxwire.transports.cli.main"]
    )
    command = [*base, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if model is not None:
        command += ["--model", model]
    return command


@contextlib.contextmanager
def spawned_server(model: str | None, console: Console) -> Iterator[ServerHandle]:
    """Start `voxwire serve` on a free port, wait for /health, stop it on exit."""
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="voxwire-bench-"))
    log_path = log_dir / "server.log"
    handle = ServerHandle(url=f"ws://127.0.0.1:{port}/v1/realtime?intent=transcription")
    handle.log_path = log_path
    env = {**os.environ, "COLUMNS": "240", "NO_COLOR": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _serve_command(port, model),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
    handle.process = process
    try:
        with console.status(f"starting voxwire serve on port {port}..."):
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while fetch_health(handle.health_url, timeout=1.0) is None:
                if process.poll() is not None:
                    tail = " | ".join(log_path.read_text(errors="replace").splitlines()[-3:])
                    raise BenchError(f"voxwire serve exited with code {process.returncode}: {tail}")
                if time.monotonic() > deadline:
                    raise BenchError(f"voxwire serve did not answer /health on port {port}")
                time.sleep(0.2)
        yield handle
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _wait_idle(handle: ServerHandle, limit_s: float = 15.0) -> dict[str, Any] | None:
    """Wait until the server has no session and no queued decode; its last /health."""
    deadline = time.monotonic() + limit_s
    while True:
        health = await asyncio.to_thread(fetch_health, handle.health_url)
        if health is None:
            return None
        sessions = health.get("realtime_sessions", {}).get("active", 0)
        queued = health.get("asr_worker", {}).get("queue_depth", 0)
        if (sessions == 0 and queued == 0) or time.monotonic() > deadline:
            return health
        await asyncio.sleep(0.1)


def _worker_delta(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    if before is None or after is None:
        return {}
    b, a = before.get("asr_worker", {}), after.get("asr_worker", {})
    delta = {
        key: round(a[key] - b.get(key, 0), 3)
        for key in ("busy_seconds", "batches", "completed", "superseded", "dropped", "refused")
        if isinstance(a.get(key), int | float)
    }
    if "failed" in a:
        delta["failed"] = a["failed"] - b.get("failed", 0)
    if "max_batch_seen" in a:
        delta["max_batch_seen"] = a["max_batch_seen"]
    return delta


# -- the bench -----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """Where the figures were measured."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
    }


def run_stream_bench(options: StreamBenchOptions) -> dict[str, Any]:
    """Run every level, print the table and write the JSON result; the result."""
    out = Console()
    err = Console(stderr=True)
    audio = decode_audio(options.file)
    audio_seconds = len(audio) / RATE
    if audio_seconds == 0:
        raise BenchError(f"{options.file} holds no audio")
    silence = np.zeros(RATE * options.silence_ms // 1000, dtype=np.float32)
    pcm = to_pcm16(np.concatenate([audio, silence]))
    with contextlib.ExitStack() as stack:
        url = None if options.url is None else realtime_url(options.url)
        handle = server_under_test(stack, url, options.model, err)
        try:
            health, levels = asyncio.run(
                _run_levels(handle, audio, pcm, audio_seconds, options, out, err)
            )
        finally:
            if handle.process is not None and handle.process.poll() is not None:
                err.print(f"voxwire serve exited early with code {handle.process.returncode}")
        problems = handle.problems()
    result: dict[str, Any] = {
        "file": str(options.file),
        "audio_seconds": round(audio_seconds, 3),
        "silence_ms": options.silence_ms,
        "chunk_ms": options.chunk_ms,
        "server": {
            "url": handle.url,
            "spawned": handle.process is not None,
            "model": (health or {}).get("models", {}).get("asr"),
        },
        "machine": machine_info(),
        "levels": levels,
        "summary": summarise(levels),
        "transcript": levels[0].pop("transcript", "") if levels else "",
        "server_log_problems": problems,
    }
    for level in levels:
        level.pop("transcript", None)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result, out)
    if problems:
        err.print(f"the server logged {len(problems)} warning/error line(s), e.g.:")
        for line in problems[:5]:
            err.print(f"  {line}", markup=False, highlight=False)
    out.print(f"wrote {options.output}")
    return result


async def _run_levels(
    handle: ServerHandle,
    audio: npt.NDArray[np.float32],
    pcm: bytes,
    audio_seconds: float,
    options: StreamBenchOptions,
    out: Console,
    err: Console,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The server's /health before the levels, and each level's figures."""
    initial = await asyncio.to_thread(fetch_health, handle.health_url)
    if options.warmup:
        clip = to_pcm16(np.concatenate([audio[: int(RATE * WARMUP_SECONDS)], np.zeros(RATE)]))
        with err.status("warm-up..."):
            await run_streams(handle.url, clip, 1, options.chunk_ms, pace=False)
    results: list[dict[str, Any]] = []
    for n in options.levels:
        before = await _wait_idle(handle)
        started = time.perf_counter()
        with err.status(f"{n} stream(s) of {audio_seconds:.1f} s at real-time pace..."):
            records = await run_streams(handle.url, pcm, n, options.chunk_ms)
        wall = time.perf_counter() - started
        after = await _wait_idle(handle)
        figures = level_figures(records, audio_seconds)
        figures["wall_seconds"] = round(wall, 2)
        figures["server_worker"] = _worker_delta(before, after)
        figures["transcript"] = records[0].transcript
        if not results:
            out.print(f"stream 0 transcript: {records[0].transcript}", markup=False)
        lat = figures["final_latency_ms"]
        err.print(
            f"{n} stream(s): final p50/p95 {lat['p50']} / {lat['p95']} ms, "
            f"audio dropped {figures['audio_dropped_ms']} ms, failed {figures['failed']}",
            markup=False,
            highlight=False,
        )
        results.append(figures)
    return initial, results


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def _joined(figures: dict[str, Any], keys: Sequence[str]) -> str:
    return " / ".join(_fmt(figures.get(key)) for key in keys)


def print_table(result: dict[str, Any], console: Console) -> None:
    """One row per level, then the summary line."""
    table = Table(
        title=(
            f"voxwire bench stream: {result['file']} ({result['audio_seconds']} s, "
            f"{result['server']['model'] or 'server'})"
        )
    )
    table.add_column("streams", justify="right")
    table.add_column("utts ok/all", justify="right")
    table.add_column("first delta p50/p95/p99 ms", justify="right")
    table.add_column("final p50/p90/p95/p99 ms", justify="right")
    table.add_column("RTF mean/max", justify="right")
    table.add_column("max send lag ms", justify="right")
    table.add_column("audio dropped ms", justify="right")
    table.add_column("jobs dropped", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("ok", justify="center")
    for level in result["levels"]:
        table.add_row(
            str(level["streams"]),
            f"{level['completed']}/{level['utterances']}",
            _joined(level["first_delta_latency_ms"], ("p50", "p95", "p99")),
            _joined(level["final_latency_ms"], ("p50", "p90", "p95", "p99")),
            _joined(level["rtf"], ("mean", "max")),
            _fmt(level["max_send_lag_ms"]),
            _fmt(level["audio_dropped_ms"]),
            _fmt(level["jobs_dropped"]),
            _fmt(level["failed"]),
            "yes" if level["ok"] else "no",
        )
    console.print(table)
    best = result["summary"][SUMMARY_KEY]
    console.print(
        f"max streams with p95 final latency <= {FINAL_P95_BUDGET_MS:.0f} ms "
        f"and no audio dropped: {_fmt(best)}",
        markup=False,
        highlight=False,
    )
