"""`voxwire bench soak --minutes M`: does a server stay up, flat and balanced for an hour?

It starts `voxwire serve` (or targets a running server with --url) and runs a moderate,
realistic mixed load against it for M minutes (:mod:`voxwire.transports.bench.soak_load`:
Realtime streams of real speech at real-time pace with classifiers on, one with spoken
replies and barge-in, HTTP transcriptions, speech and classification, and abusive
clients). Every few seconds it samples the server's resident memory (psutil on its
process). At the end it waits for the server to go idle and checks the /metrics
identities (:mod:`voxwire.transports.bench.soak_watch`). It prints RSS at minute 5 and
at the end, the growth, the errors and whether the counters balance, and a verdict
against the targets (growth within 5 %, zero errors, counters balanced); the JSON
result is rewritten each minute, so a run cut short still leaves its figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from voxwire.engine.audio import MODEL_RATE
from voxwire.transports.bench.http import http_base
from voxwire.transports.bench.soak_load import (
    Ledger,
    Load,
    LoadMix,
    LoadPlan,
    to_pcm16,
    wav_bytes,
)
from voxwire.transports.bench.soak_watch import MemoryWatch, MetricsBooks, memory_figures
from voxwire.transports.bench.stream import (
    BenchError,
    ServerHandle,
    machine_info,
    server_under_test,
)

GROWTH_TARGET_PCT = 5.0
IDLE_TIMEOUT_S = 60.0
CLIP_SECONDS = 6.0
"""How much of the speech the HTTP clients upload."""


@dataclass(frozen=True)
class SoakOptions:
    minutes: float = 60.0
    file: Path | None = None
    """Speech the streams speak (default: sentences spoken by Piper)."""
    url: str | None = None
    pid: int | None = None
    """The server's process id when --url names a server this user cannot see listen."""
    model: str | None = None
    mix: LoadMix = field(default_factory=LoadMix)
    sample_every_s: float = 5.0
    output: Path = Path("bench-results/soak.json")


def _speech(file: Path | None) -> npt.NDArray[np.float32]:
    if file is None:
        from voxwire.transports.bench.classify import default_speech

        return default_speech()
    from voxwire.services.media import decode_audio

    return decode_audio(file)


def _server_pid(handle: ServerHandle, options: SoakOptions) -> int:
    if handle.process is not None:
        return handle.process.pid
    if options.pid is not None:
        return options.pid
    from voxwire.transports.bench.soak_watch import find_listener_pid

    pid = find_listener_pid(handle.url)
    if pid is None:
        raise BenchError(f"cannot find the process serving {handle.url}: give its --pid")
    return pid


def run_soak_bench(options: SoakOptions, err: Console) -> dict[str, Any]:
    """Run the soak against `options.url` or a spawned server; print and save it."""
    if options.minutes <= 0:
        raise BenchError("--minutes must be above 0")
    audio = _speech(options.file)
    with contextlib.ExitStack() as stack:
        handle = server_under_test(stack, options.url, options.model, err)
        base = http_base(handle.url)
        watch = MemoryWatch(_server_pid(handle, options))
        if watch.sample() is None:
            raise BenchError(f"cannot read the memory of process {watch.pid}")
        pcm = to_pcm16(audio)
        plan = LoadPlan(
            ws_url=base.replace("http", "ws", 1) + "/v1/realtime",
            http_url=base,
            speech=pcm,
            clip_wav=wav_bytes(pcm[: int(CLIP_SECONDS * MODEL_RATE) * 2]),
            mix=options.mix,
        )
        result = asyncio.run(_soak(options, plan, watch, handle, err))
    print_report(result, Console())
    return result


async def _soak(
    options: SoakOptions, plan: LoadPlan, watch: MemoryWatch, handle: ServerHandle, err: Console
) -> dict[str, Any]:
    ledger = Ledger(started=watch.started)
    duration = options.minutes * 60.0
    load = Load(plan, ledger, stop_at=watch.started + duration)
    sampler = asyncio.create_task(_sample(options, watch, ledger, handle, err))
    try:
        await load.run()
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    load_seconds = time.monotonic() - watch.started
    idle = await _wait_idle(plan.http_url)
    watch.sample()
    books = MetricsBooks.parse(await _get_text(plan.http_url + "/metrics"))
    result = _result(options, handle, watch, ledger, load_seconds, complete=True)
    problems = books.problems()
    if not idle:
        problems.insert(0, f"the server was not idle {IDLE_TIMEOUT_S:.0f} s after the load")
    result["books"] = {"balanced": not problems, "problems": problems, **books.summary()}
    result["verdict"] = _verdict(result)
    _write(options.output, result)
    return result


async def _sample(
    options: SoakOptions, watch: MemoryWatch, ledger: Ledger, handle: ServerHandle, err: Console
) -> None:
    """Sample memory every few seconds; each minute, log a line and save the JSON so far."""
    next_minute = 60.0
    while True:
        await asyncio.sleep(options.sample_every_s)
        taken = watch.sample()
        if taken is None:
            ledger.error("server", "the server process is gone")
            raise BenchError("the server process is gone")
        if taken.t >= next_minute:
            next_minute += 60.0
            err.print(
                f"[{taken.t / 60:5.1f} min] rss {taken.rss_mb:.0f} MB, fds {taken.fds}, "
                f"errors {ledger.error_count}, {dict(ledger.operations)}",
                highlight=False,
            )
            partial = _result(options, handle, watch, ledger, taken.t, complete=False)
            await asyncio.to_thread(_write, options.output, partial)


def _result(
    options: SoakOptions,
    handle: ServerHandle,
    watch: MemoryWatch,
    ledger: Ledger,
    load_seconds: float,
    *,
    complete: bool,
) -> dict[str, Any]:
    settings = asdict(options)
    settings.update(settings.pop("mix"))  # the report's options stay one flat table
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}
    return {
        "bench": "soak",
        "complete": complete,
        "machine": machine_info(),
        "server": {"url": handle.url, "spawned": handle.process is not None, "pid": watch.pid},
        "options": settings,
        "load_minutes": round(load_seconds / 60, 2),
        "rss_mb": memory_figures(watch.samples, load_seconds),
        "errors": {"count": ledger.error_count, "first": ledger.errors},
        "operations": dict(sorted(ledger.operations.items())),
        "server_log_problems": handle.problems(),
    }


def _verdict(result: dict[str, Any]) -> dict[str, Any]:
    growth = result["rss_mb"].get("growth_pct")
    rss_ok = growth is not None and abs(growth) <= GROWTH_TARGET_PCT
    errors_ok = result["errors"]["count"] == 0
    books_ok = bool(result["books"]["balanced"])
    return {
        "targets": f"RSS growth within {GROWTH_TARGET_PCT:.0f} % from minute 5 to the end, "
        "zero errors, counters balanced",
        "rss_ok": rss_ok,
        "errors_ok": errors_ok,
        "books_ok": books_ok,
        "passed": rss_ok and errors_ok and books_ok,
    }


async def _wait_idle(base: str) -> bool:
    """Wait until the server has no Realtime session and no queued decode."""
    deadline = time.monotonic() + IDLE_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx2.HTTPError, ValueError):
            health = json.loads(await _get_text(base + "/health"))
            worker = health.get("asr_worker", {})
            if (
                health.get("realtime_sessions", {}).get("active") == 0
                and worker.get("queue_depth") == 0
                and worker.get("load") == 0
            ):
                return True
        await asyncio.sleep(0.5)
    return False


async def _get_text(url: str) -> str:
    async with httpx2.AsyncClient(timeout=30.0, trust_env=False) as client:
        response = await client.get(url)
        response.raise_for_status()
        return str(response.text)


def _write(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def print_report(result: dict[str, Any], console: Console) -> None:
    """The figures and the verdict, as a table."""
    rss = result["rss_mb"]
    verdict = result["verdict"]
    books = result["books"]
    ops = result["operations"]
    table = Table(title=f"voxwire bench soak: {result['load_minutes']} minutes")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row(f"RSS at minute {rss.get('baseline_minute')} (MB)", str(rss.get("baseline_mb")))
    table.add_row(f"RSS at the end, minute {rss.get('end_minute')} (MB)", str(rss.get("end_mb")))
    table.add_row("RSS growth (%)", str(rss.get("growth_pct")))
    table.add_row(
        "RSS slope after the baseline (MB/min)", str(rss.get("slope_mb_per_minute_after_baseline"))
    )
    table.add_row("RSS min / max (MB)", f"{rss.get('min_mb')} / {rss.get('max_mb')}")
    if rss.get("fds"):
        table.add_row("open files start / end", f"{rss['fds']['start']} / {rss['fds']['end']}")
    table.add_row("errors", str(result["errors"]["count"]))
    table.add_row("counters balanced", "yes" if books["balanced"] else "no")
    table.add_row("sessions opened", f"{books['sessions']['opened']:.0f}")
    table.add_row(
        "utterances transcribed",
        str(ops.get("transcription.utterances", 0) + ops.get("replies.utterances", 0)),
    )
    replies = {
        k.removeprefix("replies.replies_"): v
        for k, v in ops.items()
        if k.startswith("replies.replies_")
    }
    table.add_row("replies by status", ", ".join(f"{k} {v}" for k, v in replies.items()) or "-")
    http = sum(v for k, v in ops.items() if k.startswith("http."))
    abuse = sum(v for k, v in ops.items() if k.startswith("abuse."))
    table.add_row("HTTP requests / abusive clients", f"{http} / {abuse}")
    console.print(table)
    curve = ", ".join(f"{p['minute']}:{p['rss_mb']:.0f}" for p in rss.get("by_minute", []))
    console.print(f"RSS by minute (MB): {curve}", highlight=False)
    for problem in books["problems"]:
        console.print(f"[red]unbalanced:[/red] {problem}")
    for error in result["errors"]["first"][:10]:
        console.print(f"[red]error[/red] at {error['t']} s, {error['client']}: {error['error']}")
    outcome = "[green]PASSED[/green]" if verdict["passed"] else "[red]FAILED[/red]"
    console.print(
        f"verdict against issue 19 ({verdict['targets']}): {outcome} "
        f"(rss {'ok' if verdict['rss_ok'] else 'over'}, errors "
        f"{'ok' if verdict['errors_ok'] else 'seen'}, books "
        f"{'ok' if verdict['books_ok'] else 'unbalanced'})"
    )
