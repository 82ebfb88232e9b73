"""What `voxwire mic` was asked to do, what it did, and the one error it reports: shared
by the session side (:mod:`voxwire.demos.mic`), the sound side
(:mod:`voxwire.demos.mic_audio`) and the view (:mod:`voxwire.demos.mic_display`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from voxwire.engine.errors import VoxwireError

DEFAULT_URL: Final = "ws://127.0.0.1:8000/v1/realtime?model=voxwire"
DEFAULT_RATE: Final = 24_000
"""The session's input rate (OpenAI's) and the microphone's capture rate."""
BLOCK_MS: Final = 20
"""Audio per binary frame (and per microphone block)."""


class MicError(VoxwireError):
    """Something the user of `voxwire mic` can fix: connection, device, server refusal."""

    code = "mic_error"


@dataclass(frozen=True)
class MicOptions:
    """What `voxwire mic` was asked to do."""

    url: str = DEFAULT_URL
    input_file: Path | None = None
    playback: bool = True
    full_duplex: bool = False
    classifiers: tuple[str, ...] = ()
    api_key: str | None = None
    device: int | str | None = None
    """The sounddevice device (index or name) for the microphone and the speaker."""
    rate: int = DEFAULT_RATE
    block_ms: int = BLOCK_MS


@dataclass
class MicSummary:
    """What a run did, for the closing line and for tests."""

    turns: int = 0
    replies: int = 0
    missing_replies: int = 0
    seconds_sent: float = 0.0
    seconds_dropped: float = 0.0
    """Microphone audio dropped while a reply played (half duplex) or the queue was full."""
    seconds_paused: float = 0.0
    """Time an input file waited while replies played (half duplex)."""
    playback_dropped_s: float = 0.0
    """Reply audio that did not fit the playback buffer."""
