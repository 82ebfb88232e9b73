"""What `voxwire bench soak` watches on the server: its resident memory over time
(psutil on the server's process) and, at the end, whether its /metrics counters
balance (the identities of :mod:`voxwire.transports.realtime.accounting`)."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psutil
from prometheus_client.parser import text_string_to_metric_families

from voxwire.transports.realtime import accounting

MiB = 1024 * 1024


# -- resident memory -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One look at the server process (its children included)."""

    t: float
    """Seconds since the soak began."""
    rss_mb: float
    fds: int | None
    threads: int


def find_listener_pid(url: str) -> int | None:
    """The pid of the local process listening on `url`'s port, if this user may see it."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return int(conn.pid) if conn.pid is not None else None
    return None


@dataclass
class MemoryWatch:
    """Samples the server's RSS, open files and threads each time `sample` is called."""

    pid: int
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)

    def sample(self) -> Sample | None:
        """Take one sample (None when the process is gone)."""
        try:
            process = psutil.Process(self.pid)
            family = [process, *process.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in family)
            fds = process.num_fds() if hasattr(process, "num_fds") else None
            threads = process.num_threads()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        taken = Sample(round(time.monotonic() - self.started, 1), round(rss / MiB, 1), fds, threads)
        self.samples.append(taken)
        return taken


def _around(samples: Sequence[Sample], t: float, half_window: float) -> list[float]:
    return [s.rss_mb for s in samples if abs(s.t - t) <= half_window]


def memory_figures(samples: Sequence[Sample], duration_s: float) -> dict[str, Any]:
    """RSS at the baseline (minute 5, or half-way through a run shorter than 10 minutes)
    and at the end, each the median of the samples within a window around it; the growth
    between them; the slope after the baseline; and the curve, a sample per minute."""
    if not samples:
        return {"samples": 0}
    baseline_s = min(300.0, duration_s / 2)
    half_window = max(min(30.0, duration_s / 12), 1.0)
    base = _around(samples, baseline_s, half_window) or [samples[0].rss_mb]
    end_t = samples[-1].t
    tail = [s.rss_mb for s in samples if s.t >= end_t - 2 * half_window] or [samples[-1].rss_mb]
    baseline, end = statistics.median(base), statistics.median(tail)
    after = [s for s in samples if s.t >= baseline_s]
    slope = _slope_per_minute(after) if len(after) >= 3 else None
    by_minute = [
        {"minute": m, "rss_mb": _nearest(samples, 60.0 * m).rss_mb}
        for m in range(int(end_t // 60) + 1)
    ]
    fds = [s.fds for s in samples if s.fds is not None]
    return {
        "samples": len(samples),
        "baseline_minute": round(baseline_s / 60, 2),
        "baseline_mb": round(baseline, 1),
        "end_minute": round(end_t / 60, 2),
        "end_mb": round(end, 1),
        "growth_pct": round(100.0 * (end - baseline) / baseline, 2),
        "slope_mb_per_minute_after_baseline": slope,
        "min_mb": min(s.rss_mb for s in samples),
        "max_mb": max(s.rss_mb for s in samples),
        "by_minute": by_minute,
        "fds": {"start": fds[0], "end": fds[-1], "max": max(fds)} if fds else None,
        "threads": {"start": samples[0].threads, "end": samples[-1].threads},
    }


def _nearest(samples: Sequence[Sample], t: float) -> Sample:
    return min(samples, key=lambda s: abs(s.t - t))


def _slope_per_minute(samples: Sequence[Sample]) -> float | None:
    """Least-squares slope of RSS over time, MB a minute."""
    ts = [s.t / 60 for s in samples]
    if max(ts) - min(ts) <= 0:
        return None
    return round(statistics.linear_regression(ts, [s.rss_mb for s in samples]).slope, 3)


# -- the books, from /metrics ----------------------------------------------------------------


@dataclass
class MetricsBooks:
    """The counters of one /metrics scrape that the identities need."""

    opened: float = 0.0
    active: float = 0.0
    ended: dict[str, float] = field(default_factory=dict)
    session: dict[str, float] = field(default_factory=dict)
    reply: dict[str, float] = field(default_factory=dict)
    workers: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    http_by_status: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> MetricsBooks:
        """Read the families the identities use out of Prometheus text."""
        books = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                books._take(sample.name, sample.labels, sample.value)
        return books

    def _take(self, name: str, labels: dict[str, str], value: float) -> None:
        if name == "voxwire_realtime_sessions_opened_total":
            self.opened = value
        elif name == "voxwire_realtime_sessions_active":
            self.active = value
        elif name == "voxwire_realtime_sessions_ended_total":
            self.ended[labels["reason"]] = value
        elif name == "voxwire_http_requests_total":
            status = labels["status"]
            self.http_by_status[status] = self.http_by_status.get(status, 0.0) + value
        elif name.startswith("voxwire_session_") and name.endswith("_total"):
            self.session[name.removeprefix("voxwire_session_").removesuffix("_total")] = value
        elif name.startswith("voxwire_reply_") and name.endswith("_total"):
            self.reply[name.removeprefix("voxwire_reply_").removesuffix("_total")] = value
        elif name.startswith("voxwire_model_") and "pool" in labels:
            key = f"{labels['model']} ({labels['pool']})"
            short = name.removeprefix("voxwire_model_requests_").removesuffix("_total")
            self.workers[key][short.removeprefix("voxwire_model_")] = value

    def problems(self) -> list[str]:
        """What does not balance, the server being idle (empty: everything does)."""
        found = accounting.slot_problems(self.opened, self.ended, self.active)
        found += accounting.session_problems(self.session)
        found += accounting.reply_problems(self.reply)
        for name, stats in sorted(self.workers.items()):
            found += accounting.worker_problems(name, stats, stats.get("queue_depth", 0.0))
        if self.ended.get("internal_error"):
            found.append(f"{self.ended['internal_error']:.0f} sessions ended in internal_error")
        if self.session.get("samples_lost"):
            found.append(f"{self.session['samples_lost']:.0f} samples a final needed were lost")
        if self.server_errors:
            found.append(f"{self.server_errors:.0f} HTTP responses were 5xx")
        return found

    @property
    def server_errors(self) -> float:
        return sum(v for status, v in self.http_by_status.items() if status.startswith("5"))

    def summary(self) -> dict[str, Any]:
        """The figures behind the identities, for the JSON result."""
        session = self.session
        return {
            "sessions": {"opened": self.opened, "active": self.active, "ended": self.ended},
            "items": {
                k: session.get(k)
                for k in (
                    "items_started",
                    "items_completed",
                    "transcriptions_failed",
                    "items_cleared",
                    "items_abandoned",
                )
            },
            "audio_samples": {
                k: session.get(k)
                for k in (
                    "samples_in",
                    "samples_resampled",
                    "samples_segmented",
                    "samples_transcribed",
                    "evicted_samples",
                    "samples_lost",
                    "jobs_dropped",
                )
            },
            "replies": self.reply,
            "workers": {name: dict(stats) for name, stats in sorted(self.workers.items())},
            "http_by_status": self.http_by_status,
        }
