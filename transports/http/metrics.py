"""`GET /metrics`: Prometheus text, from one CollectorRegistry per app.

What is exported (all names start with `voxwire_`):

* `http_requests_total{method,route,status}` and
  `http_request_duration_seconds{method,route}`: counted by
  :class:`HttpMetricsMiddleware` (pure ASGI, so every router is covered, and
  requests refused before routing too). `route` is the route's path template
  (`/models/{model_id}`), `<unmatched>` for paths no route serves, so the label
  set stays bounded whatever clients send;
* `http_requests_cancelled_total{method,route}`: requests whose client hung up
  before the answer; their decode and transcription were cancelled;
* `auth_rejected_total{transport}`: requests and WebSockets refused for a
  missing or wrong API key;
* `realtime_sessions_active`, `realtime_sessions_limit`,
  `realtime_sessions_opened_total`, `realtime_sessions_refused_total` (at the
  session limit), `realtime_sessions_ended_total{reason}` (client_closed,
  unread_events, send_timeout: a client that stopped reading, aborted; internal_error);
* per model worker `{model,task,pool}` (`pool` is `streaming` for the live
  recogniser's worker and `requests` for each loaded catalogue model):
  `model_queue_depth`, `model_load`, `model_requests_{submitted,completed,failed,
  dropped,refused,superseded,cancelled,stopped}_total` (cancelled: queued work whose
  caller went away before it ran; stopped: running work whose caller went away, stopped
  at its next model step), `model_batches_total`,
  `model_busy_seconds_total`; and `model_loaded{model,task}` for every model of
  the catalogue;
* `chat_generations_total{model,finish_reason}` (stop, length, cancelled) and
  `chat_completion_tokens_total{model}` for every loaded chat model;
* `session_<counter>_total` for every per-session audio counter (samples in,
  resampled, segmented, transcribed, decodes, jobs dropped, evicted samples,
  failed transcriptions, items started / completed / cleared / abandoned, ...):
  the sum over finished sessions plus the live ones, read at scrape time.
  `session_evicted_samples_total` counts 16 kHz samples the per-session ring
  buffer (60 s) let go of to make room: in a long session that is nearly all
  audio, already transcribed or silence between utterances, so it grows by about
  16,000 a second per stream and is no loss; audio a final decode still needed
  when it was evicted is `session_samples_lost_total`, which should stay 0.
  Items balance: started = completed + transcriptions_failed + cleared +
  abandoned + open;
* `reply_<counter>_total` for the spoken replies the same way (responses,
  completed, cancelled, failed, samples synthesized, sent and cancelled, function
  calls, server tool runs and tool errors);
* `wyoming_*` when the app serves Wyoming beside HTTP: connections (active, opened,
  refused), `events_received{type}`, `errors{code}` (malformed events, payloads over
  the limits, bad audio, idle clients, ...), transcripts, syntheses, detections.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxwire.engine.scheduler import ModelWorker
from voxwire.models.transformers_chat import GenerationStats
from voxwire.services.runtime import Runtime
from voxwire.transports.http.middleware import HttpMiddleware
from voxwire.transports.realtime.websocket import SessionSlots
from voxwire.transports.wyoming.limits import WyomingStats
from voxwire.transports.wyoming.metrics import WyomingCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

WORKER_COUNTERS = (
    "submitted",
    "completed",
    "failed",
    "dropped",
    "refused",
    "superseded",
    "cancelled",
    "stopped",
)


class AppMetrics:
    """The registry of one app and the HTTP metrics its middleware records."""

    def __init__(
        self, runtime: Runtime, slots: SessionSlots, wyoming: WyomingStats | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "voxwire_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "voxwire_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.auth_rejected = Counter(
            "voxwire_auth_rejected",
            "Requests and WebSocket connections refused for a missing or wrong API key.",
            ("transport",),
            registry=self.registry,
        )
        self.cancelled = Counter(
            "voxwire_http_requests_cancelled",
            "HTTP requests whose client hung up before the answer; their work was cancelled.",
            ("method", "route"),
            registry=self.registry,
        )
        self._routes: Callable[[], Sequence[BaseRoute]] = list
        self.registry.register(RuntimeCollector(runtime, slots))
        if wyoming is not None:
            self.registry.register(WyomingCollector(wyoming))

    def watch_routes(self, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        """Where route templates for the cancelled-requests label come from."""
        self._routes = routes

    def on_cancelled(self, scope: Scope) -> None:
        """Count a request cancelled because its client hung up (the middleware's hook)."""
        method = scope["method"] if scope.get("method") in METHODS else "OTHER"
        self.cancelled.labels(method, route_template(scope, self._routes())).inc()

    def on_auth_rejected(self, scope_type: str) -> None:
        """Count a refusal (the auth middleware's hook)."""
        self.auth_rejected.labels("websocket" if scope_type == "websocket" else "http").inc()

    def exposition(self) -> bytes:
        """Everything, in the Prometheus text format."""
        return generate_latest(self.registry)

    async def endpoint(self, _request: Request) -> Response:
        """`GET /metrics`."""
        return Response(self.exposition(), media_type=CONTENT_TYPE)


# -- HTTP ------------------------------------------------------------------------------------


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The path template of the route that served `scope`, or `<unmatched>`.

    Routing records the route in the scope; a request refused before routing
    (401, 413) is matched against `routes` here instead.
    """
    template = _template(scope.get("route"))
    if template is None:
        template = _match(routes, dict(scope))
    return template or UNMATCHED


def _template(route: object) -> str | None:
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) and template else None


def _match(routes: Sequence[BaseRoute], scope: Scope, prefix: str = "") -> str | None:
    partial: str | None = None
    for route in routes:
        inner = getattr(route, "original_router", None)  # a router included by FastAPI
        if inner is not None:
            context = getattr(route, "include_context", None)
            inner_prefix = str(getattr(context, "prefix", "") or "")
            path = str(scope.get("path", ""))
            if path.startswith(inner_prefix):
                sub = {**scope, "path": path[len(inner_prefix) :]}
                found = _match(list(getattr(inner, "routes", ())), sub, prefix + inner_prefix)
                if found is not None:
                    return found
            continue
        match, _child = route.matches(scope)
        template = _template(route)
        if template is None:
            continue
        if match is Match.FULL:
            return prefix + template
        if match is Match.PARTIAL and partial is None:
            partial = prefix + template  # the path matches, the method does not (405)
    return partial


class HttpMetricsMiddleware(HttpMiddleware):
    """Counts every HTTP request and times it, labelled by route template."""

    def __init__(
        self, app: ASGIApp, metrics: AppMetrics, routes: Callable[[], Sequence[BaseRoute]]
    ) -> None:
        """`routes()` gives the app's current routes (so later routers count too)."""
        super().__init__(app)
        self.metrics = metrics
        self.routes = routes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        status = 500
        started = time.perf_counter()

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            route = route_template(scope, self.routes())
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


# -- the runtime and the realtime sessions, read at scrape time ------------------------------


class RuntimeCollector(Collector):
    """Reads worker, catalogue and session state whenever /metrics is scraped."""

    def __init__(self, runtime: Runtime, slots: SessionSlots) -> None:
        self.runtime = runtime
        self.slots = slots

    def describe(self) -> list[Metric]:
        return []  # collected on every scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._sessions()
        yield from self._workers()
        yield from self._generations()
        yield from self._session_counters()

    def _generations(self) -> Iterator[Metric]:
        """What each loaded chat model generated (models that keep GenerationStats)."""
        finished = CounterMetricFamily(
            "voxwire_chat_generations",
            "Chat generations finished, by finish reason (cancelled: the client went away "
            "or a reply was interrupted, stopped at the next token).",
            labels=("model", "finish_reason"),
        )
        tokens = CounterMetricFamily(
            "voxwire_chat_completion_tokens",
            "Completion tokens generated (cancelled generations included).",
            labels=("model",),
        )
        for entry in list(self.runtime.catalog.values()):
            stats = getattr(entry.model, "stats", None) if entry.loaded else None
            if not isinstance(stats, GenerationStats):
                continue
            for reason, count in sorted(stats.finished.items()):
                finished.add_metric([entry.spec.id, reason], count)
            tokens.add_metric([entry.spec.id], stats.tokens)
        yield finished
        yield tokens

    def _sessions(self) -> Iterator[Metric]:
        slots = self.slots
        yield GaugeMetricFamily(
            "voxwire_realtime_sessions_active", "Realtime sessions open now.", slots.in_use
        )
        yield GaugeMetricFamily(
            "voxwire_realtime_sessions_limit", "Realtime sessions allowed at once.", slots.limit
        )
        yield CounterMetricFamily(
            "voxwire_realtime_sessions_opened", "Realtime sessions opened.", slots.opened
        )
        yield CounterMetricFamily(
            "voxwire_realtime_sessions_refused",
            "Realtime connections refused at the session limit (close code 1013).",
            slots.refused,
        )
        ended = CounterMetricFamily(
            "voxwire_realtime_sessions_ended",
            "Realtime sessions ended, by reason: client_closed, unread_events (1008), "
            "send_timeout (the client stopped reading: aborted), internal_error.",
            labels=("reason",),
        )
        for reason, count in sorted(slots.ended.items()):
            ended.add_metric([reason], count)
        yield ended

    def _worker_rows(self) -> list[tuple[tuple[str, str, str], ModelWorker[Any, Any]]]:
        runtime = self.runtime
        rows: list[tuple[tuple[str, str, str], ModelWorker[Any, Any]]] = []
        if runtime.streaming_ready:  # none while the recogniser loads
            streaming = (runtime.asr_name, "automatic-speech-recognition", "streaming")
            rows.append((streaming, runtime.asr_worker))
        for entry in list(runtime.catalog.values()):
            worker = entry.worker
            if worker is not None:
                rows.append(((entry.spec.id, entry.spec.task, "requests"), worker))
        return rows

    def _workers(self) -> Iterator[Metric]:
        labels = ("model", "task", "pool")
        depth = GaugeMetricFamily("voxwire_model_queue_depth", "Requests queued.", labels=labels)
        load = GaugeMetricFamily(
            "voxwire_model_load", "Worker busyness in [0, 1] (1: saturated).", labels=labels
        )
        counters = {
            name: CounterMetricFamily(
                f"voxwire_model_requests_{name}", f"Requests {name} by the worker.", labels=labels
            )
            for name in WORKER_COUNTERS
        }
        batches = CounterMetricFamily("voxwire_model_batches", "Batches run.", labels=labels)
        busy = CounterMetricFamily(
            "voxwire_model_busy_seconds", "Seconds spent running batches.", labels=labels
        )
        for key, worker in self._worker_rows():
            values = list(key)
            stats = worker.stats
            depth.add_metric(values, worker.queue_depth)
            load.add_metric(values, worker.load)
            for name, family in counters.items():
                family.add_metric(values, getattr(stats, name))
            batches.add_metric(values, stats.batches)
            busy.add_metric(values, stats.busy_seconds)
        yield depth
        yield load
        yield from counters.values()
        yield batches
        yield busy
        loaded = GaugeMetricFamily(
            "voxwire_model_loaded",
            "1 when the catalogue model is loaded, else 0.",
            labels=("model", "task"),
        )
        for entry in list(self.runtime.catalog.values()):
            loaded.add_metric([entry.spec.id, entry.spec.task], 1.0 if entry.loaded else 0.0)
        yield loaded

    def _session_counters(self) -> Iterator[Metric]:
        live = list(self.slots.active.values())
        families = (
            (
                "session",
                "Realtime sessions' {}, finished and live.",
                self.slots.finished,
                [c.session.counters for c in live],
            ),
            (
                "reply",
                "Spoken replies' {}, finished and live sessions.",
                self.slots.finished_replies,
                [c.replies.counters for c in live],
            ),
        )
        for prefix, description, finished, current in families:
            for name, value in _summed(finished, current).items():
                yield CounterMetricFamily(
                    f"voxwire_{prefix}_{name}", description.format(name.replace("_", " ")), value
                )


def _summed(finished: Any, live: Sequence[Any]) -> dict[str, int]:
    """The fields of a counters dataclass: the finished sessions' sums plus the live ones."""
    totals: dict[str, int] = dataclasses.asdict(finished)
    for counters in live:
        for name, value in dataclasses.asdict(counters).items():
            totals[name] += value
    return totals
