"""The Wyoming counters as Prometheus metrics, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from voxwire.transports.wyoming.limits import WyomingStats


class WyomingCollector(Collector):
    """`voxwire_wyoming_*`: connections, events by type, errors by code, results."""

    def __init__(self, stats: WyomingStats) -> None:
        self.stats = stats

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        yield GaugeMetricFamily(
            "voxwire_wyoming_connections_active", "Wyoming connections open now.",
            stats.connections_active,
        )  # fmt: skip
        for name, value, text in (
            ("connections_opened", stats.connections_opened, "Wyoming connections accepted."),
            ("connections_refused", stats.connections_refused, "Refused at the limit."),
            ("events_dropped", stats.events_dropped, "Audio events of failed streams."),
            ("transcripts", stats.transcripts, "Transcripts sent."),
            ("syntheses", stats.syntheses, "Syntheses finished."),
            ("audio_samples_sent", stats.audio_samples_sent, "Synthesised samples sent."),
            ("detections", stats.detections, "Wake words detected."),
            ("not_detected", stats.not_detected, "Detect streams that ended unheard."),
        ):
            yield CounterMetricFamily(f"voxwire_wyoming_{name}", text, value)
        events = CounterMetricFamily(
            "voxwire_wyoming_events_received", "Events received, by type.", labels=["type"]
        )
        for kind, count in sorted(stats.events_received.items()):
            events.add_metric([kind], count)
        yield events
        errors = CounterMetricFamily(
            "voxwire_wyoming_errors",
            "Error events sent and connections dropped (malformed, too large, idle), by code.",
            labels=["code"],
        )
        for code, count in sorted(stats.errors.items()):
            errors.add_metric([code], count)
        yield errors
