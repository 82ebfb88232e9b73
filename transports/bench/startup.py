"""`voxwire bench startup`: how soon a freshly started `voxwire serve` is usable.

Each run starts `voxwire serve` on a free port and times, from the moment the
process is spawned: the port accepting TCP connections, /health answering 200,
/health saying the streaming recogniser is ready (sessions can start), and /health
saying every model has loaded (status no longer "loading"). The
first run is the cold start (the model files as the page cache has them: truly
cold only after a reboot or with caches dropped), the others are warm starts
(the files just read). The machine's load average is recorded beside the
figures, since other work on the machine slows loading.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from voxwire.transports.bench.stream import (
    BenchError,
    fetch_health,
    free_port,
    machine_info,
    models_settled,
    serve_command,
)

POLL_S = 0.01
"""How often the port and /health are tried."""


@dataclass(frozen=True)
class StartupBenchOptions:
    runs: int = 3
    model: str | None = None
    timeout_s: float = 180.0
    """A run whose models are not all loaded by then fails."""
    output: Path = Path("bench-results/startup.json")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a user stops it; killed if it has not stopped within a minute."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=60)
    if process.poll() is None:
        process.kill()
    process.wait()


def one_start(options: StartupBenchOptions, run: int) -> dict[str, Any]:
    """Start one server and time its milestones (seconds since spawning it)."""
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="voxwire-startup-")) / "server.log"
    env = {**os.environ, "COLUMNS": "240", "NO_COLOR": "1"}
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            serve_command(port, options.model),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
    marks: dict[str, float] = {}
    health: dict[str, Any] | None = None
    try:
        while True:
            now = time.perf_counter() - started
            if process.poll() is not None:
                tail = " | ".join(log_path.read_text(errors="replace").splitlines()[-3:])
                raise BenchError(f"voxwire serve exited with code {process.returncode}: {tail}")
            if now > options.timeout_s:
                raise BenchError(f"run {run}: models not loaded within {options.timeout_s:g} s")
            if "port_bound_s" not in marks:
                if _accepts(port):
                    marks["port_bound_s"] = time.perf_counter() - started
            else:
                health = fetch_health(f"http://127.0.0.1:{port}/health", timeout=2.0)
                if health is not None and "health_s" not in marks:
                    marks["health_s"] = time.perf_counter() - started
                streaming = (health or {}).get("models", {}).get("streaming")
                if streaming == "ready" and "streaming_ready_s" not in marks:
                    marks["streaming_ready_s"] = time.perf_counter() - started
                if models_settled(health):
                    marks["all_ready_s"] = time.perf_counter() - started
                    break
            time.sleep(POLL_S)
    finally:
        _stop(process)
    assert health is not None
    models = health.get("models", {})
    return {
        "run": run,
        "kind": "cold" if run == 1 else "warm",
        **{key: round(value, 3) for key, value in marks.items()},
        "status": health.get("status"),
        "load_seconds": models.get("load_seconds", {}),
        "failed": models.get("failed", {}),
    }


def _summary(runs: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
    if not values:
        return {"median": None, "max": None}
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def run_startup_bench(options: StartupBenchOptions, err: Console | None = None) -> dict[str, Any]:
    """Start the server `options.runs` times, print the table and write the JSON."""
    err = err or Console(stderr=True)
    load_before = os.getloadavg()
    runs = []
    for run in range(1, options.runs + 1):
        with err.status(f"start {run} of {options.runs}..."):
            runs.append(one_start(options, run))
    warm = runs[1:]
    keys = ("port_bound_s", "health_s", "streaming_ready_s", "all_ready_s")
    result: dict[str, Any] = {
        "benchmark": "startup",
        "machine": machine_info(),
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "model": options.model,
        "runs": runs,
        "cold": {key: runs[0].get(key) for key in keys},
        "warm": {key: _summary(warm, key) for key in keys} if warm else None,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2) + "\n")
    _print_table(result)
    err.print(f"wrote {options.output}")
    return result


def _print_table(result: dict[str, Any]) -> None:
    table = Table(title="voxwire serve start-up (seconds from spawning the process)")
    columns = ("run", "kind", "port bound", "/health answers", "sessions can start")
    for column in (*columns, "all models ready", "status"):
        table.add_column(column, justify="right" if column != "status" else "left")
    for run in result["runs"]:
        table.add_row(
            str(run["run"]),
            run["kind"],
            f"{run['port_bound_s']:.2f}",
            f"{run['health_s']:.2f}",
            f"{run.get('streaming_ready_s', float('nan')):.2f}",
            f"{run['all_ready_s']:.2f}",
            str(run["status"]),
        )
    Console().print(table)
    slowest = sorted(
        result["runs"][-1]["load_seconds"].items(), key=lambda item: item[1], reverse=True
    )
    loads = ", ".join(f"{model} {seconds:.1f}" for model, seconds in slowest[:5])
    one, five, _ = result["load_average"]["before"]
    Console().print(f"load per model (last run, s): {loads}; load average {one} / {five}")
