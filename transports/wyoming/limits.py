"""The bounds of a Wyoming connection and the counters /metrics shows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

KiB = 1024


@dataclass(frozen=True)
class WyomingLimits:
    """How much one connection may send and how long it may stall."""

    max_connections: int = 32
    """Connections at once; the next gets an `overloaded` error event and is closed."""
    max_header_bytes: int = 16 * KiB
    """The JSON header line."""
    max_data_bytes: int = 64 * KiB
    """An event's extra JSON data (`data_length`)."""
    max_payload_bytes: int = 1024 * KiB
    """An event's binary payload (`payload_length`): one audio chunk."""
    max_text_chars: int = 10_000
    """Text to synthesise, one request or one streamed synthesis."""
    max_audio_s: float = 300.0
    """Audio of one transcribe or detect stream."""
    idle_timeout_s: float = 120.0
    """A connection that sends nothing this long is closed."""
    write_timeout_s: float = 10.0
    """A client that does not read what it is sent this long is closed."""

    def __post_init__(self) -> None:
        if min(self.max_connections, self.max_header_bytes, self.max_data_bytes) < 1:
            raise ValueError("Wyoming limits must be positive")
        if min(self.max_payload_bytes, self.max_text_chars) < 1:
            raise ValueError("Wyoming limits must be positive")
        if min(self.max_audio_s, self.idle_timeout_s, self.write_timeout_s) <= 0:
            raise ValueError("Wyoming limits must be positive")


@dataclass
class WyomingStats:
    """What every Wyoming connection did since start (shown in /metrics)."""

    connections_opened: int = 0
    connections_refused: int = 0
    connections_active: int = 0
    events_received: Counter[str] = field(default_factory=Counter)
    """By event type; types the protocol does not know are counted as `unknown`."""
    errors: Counter[str] = field(default_factory=Counter)
    """Error events sent or connections closed, by code."""
    events_dropped: int = 0
    """Audio events of a stream that had failed (answered once, by its error event)."""
    transcripts: int = 0
    syntheses: int = 0
    audio_samples_sent: int = 0
    detections: int = 0
    not_detected: int = 0
