"""What `voxwire mic` shows: final lines that scroll, and a rich live panel.

Finished things (your transcript, classifications, the reply) are printed as plain
lines on stdout (`you: ...`, `  sentiment: positive 0.97`, `voxwire: ...`), which
a script or a test can read. When stderr is a terminal, a live panel under them
shows what is in progress: the partial transcript, the reply as it streams, whether
the microphone is sent or paused, its level, and counters.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

if TYPE_CHECKING:
    from voxwire.demos.mic_options import MicOptions, MicSummary

PROG = "voxwire"
TOP_LABELS = 3
"""Labels shown per classification."""
METER_WIDTH = 24
METER_FLOOR_DB = -60.0


def transcript_line(transcript: str) -> str:
    """The line of a user's completed turn."""
    return f"you: {transcript.strip()}"


def reply_line(text: str, status: str = "completed", reason: str = "") -> str:
    """The line of a reply: its transcript, marked when it did not complete."""
    parts = [f"{PROG}:"]
    if text.strip():
        parts.append(text.strip())
    if status and status != "completed":
        word = "interrupted" if status == "cancelled" else status
        parts.append(f"[{word}: {reason}]" if reason else f"[{word}]")
    return " ".join(parts)


def labels_line(classifier: str, labels: Sequence[tuple[str, float]]) -> str:
    """`  sentiment: positive 0.97, neutral 0.03` (the best few labels)."""
    shown = ", ".join(f"{label} {score:.2f}" for label, score in labels[:TOP_LABELS])
    return f"  {classifier}: {shown or '(no labels)'}"


def wake_word_line(name: str, score: float, audio_ms: int) -> str:
    return f"wake word: {name} {score:.2f} at {audio_ms / 1000:.2f} s"


def meter(dbfs: float) -> str:
    """A bar for a level in dB full scale."""
    fraction = min(1.0, max(0.0, (dbfs - METER_FLOOR_DB) / -METER_FLOOR_DB))
    filled = round(fraction * METER_WIDTH)
    return "█" * filled + "·" * (METER_WIDTH - filled)


@dataclass
class _Progress:
    """What is in progress, for the live panel."""

    partial_item: str | None = None
    partial: str = ""
    tentative: str = ""
    """The uncommitted hypothesis after the committed text (shown greyed)."""
    reply_id: str | None = None
    reply: str = ""
    level_db: float = -120.0
    paused: bool = False
    seconds_sent: float = 0.0
    seconds_dropped: float = 0.0
    seconds_paused: float = 0.0
    turns: int = 0
    replies: int = 0
    heading: str = "connecting"
    url: str = ""
    live_input: bool = True


class MicView:
    """The terminal view of a mic session; the client calls one method per happening."""

    def __init__(
        self,
        *,
        live: bool | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        """`live`: show the live panel (default: when stderr is a terminal)."""
        self._err_console = Console(file=err or sys.stderr, highlight=False, soft_wrap=True)
        out_file = out or sys.stdout
        self._out_console = Console(file=out_file, highlight=False, soft_wrap=True)
        self._live_enabled = self._err_console.is_terminal if live is None else live
        # Lines go above the panel when stdout is the same terminal; else straight to stdout.
        self._lines_above = self._live_enabled and self._out_console.is_terminal
        self._live: Live | None = None
        self.last_summary: MicSummary | None = None
        """The counters as of the last tick (what a Ctrl-C'd session did)."""
        self._state = _Progress()

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> MicView:
        if self._live_enabled:
            self._live = Live(
                get_renderable=self._render,
                console=self._err_console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- output -------------------------------------------------------------------------------

    def line(self, text: str, style: str = "") -> None:
        """Print one finished line on stdout (above the live panel on a terminal)."""
        console = self._err_console if self._lines_above else self._out_console
        console.print(Text(text, style=style))
        if console is self._out_console:
            console.file.flush()
        self.refresh()

    def notice(self, text: str) -> None:
        """One `voxwire: ...` line on stderr."""
        message = " ".join(str(text).split())
        self._err_console.print(Text(f"{PROG}: {message}", style="yellow"))
        self.refresh()

    def refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    # -- happenings ---------------------------------------------------------------------------

    def connected(self, options: MicOptions, session: dict[str, Any]) -> None:
        mode = "full duplex" if options.full_duplex else "half duplex"
        source = f"file {options.input_file}" if options.input_file else "microphone"
        kind = session.get("type", "?")
        playback = "" if options.playback else ", no playback"
        self._state.heading = f"{kind} session, {source} at {options.rate} Hz, {mode}{playback}"
        self._state.url = options.url
        self._state.live_input = options.input_file is None
        self.refresh()

    def speech_started(self, item_id: str) -> None:
        self._follow(item_id)
        self.refresh()

    def partial(self, item_id: str, delta: str) -> None:
        self._follow(item_id)
        self._state.partial += delta
        self.refresh()

    def tentative(self, item_id: str, text: str) -> None:
        """The uncommitted rest of the hypothesis; each replaces the one before."""
        self._follow(item_id)
        self._state.tentative = text
        self.refresh()

    def _follow(self, item_id: str) -> None:
        if self._state.partial_item != item_id:
            self._state.partial_item = item_id
            self._state.partial = ""
            self._state.tentative = ""

    def _forget(self, item_id: str) -> None:
        if self._state.partial_item == item_id:
            self._state.partial_item = None
            self._state.partial = ""
            self._state.tentative = ""

    def final(self, item_id: str, transcript: str) -> None:
        self._forget(item_id)
        self._state.turns += 1
        self.line(transcript_line(transcript), "bold cyan")

    def failed(self, item_id: str, message: str) -> None:
        self._forget(item_id)
        self.notice(f"transcription of {item_id} failed: {message}")

    def wake_word(self, name: str, score: float, audio_ms: int) -> None:
        self.line(wake_word_line(name, score, audio_ms), "bold magenta")

    def speaker(self, _item_id: str, speaker: str, score: float) -> None:
        self.line(f"  speaker: {speaker} {score:.2f}", "dim")

    def classification(
        self, _item_id: str, classifier: str, labels: Sequence[tuple[str, float]]
    ) -> None:
        self.line(labels_line(classifier, labels), "dim")

    def classification_failed(self, item_id: str, classifier: str, message: str) -> None:
        self.notice(f"{classifier} of {item_id} failed: {message}")

    def reply_started(self, response_id: str) -> None:
        self._state.reply_id = response_id
        self._state.reply = ""
        self.refresh()

    def reply_delta(self, response_id: str, delta: str) -> None:
        if self._state.reply_id != response_id:
            self._state.reply_id = response_id
            self._state.reply = ""
        self._state.reply += delta
        self.refresh()

    def reply_done(self, response_id: str, text: str, status: str, reason: str) -> None:
        if self._state.reply_id == response_id:
            self._state.reply_id = None
            self._state.reply = ""
        self._state.replies += 1
        self.line(reply_line(text, status, reason), "bold green")

    def level(self, dbfs: float) -> None:
        self._state.level_db = dbfs

    def tick(self, summary: MicSummary, *, paused: bool) -> None:
        """Periodic: counters and the send/pause state."""
        self.last_summary = summary
        self._state.paused = paused
        self._state.seconds_sent = summary.seconds_sent
        self._state.seconds_dropped = summary.seconds_dropped
        self._state.seconds_paused = summary.seconds_paused
        self.refresh()

    def summary(self, summary: MicSummary) -> None:
        parts = [
            f"{summary.turns} turn(s)",
            f"{summary.replies} repl{'y' if summary.replies == 1 else 'ies'}",
            f"{summary.seconds_sent:.1f} s of audio sent",
        ]
        if summary.seconds_dropped:
            parts.append(f"{summary.seconds_dropped:.1f} s of microphone audio not sent")
        if summary.seconds_paused:
            parts.append(f"paused {summary.seconds_paused:.1f} s for replies")
        if summary.playback_dropped_s:
            parts.append(f"{summary.playback_dropped_s:.1f} s of reply audio dropped")
        self.notice(", ".join(parts))

    # -- the live panel -----------------------------------------------------------------------

    def _render(self) -> RenderableType:
        state = self._state
        rows: list[RenderableType] = [Text(state.heading, style="dim")]
        you = Text("you: ", style="bold cyan")
        you.append(state.partial, style="cyan")
        if state.tentative:
            you.append((" " if state.partial else "") + state.tentative, style="dim italic")
        elif not state.partial and state.partial_item:
            you.append("…", style="cyan")
        rows.append(you)
        reply = Text(f"{PROG}: ", style="bold green")
        reply.append(state.reply or ("…" if state.reply_id else ""), style="green")
        rows.append(reply)
        status = Text()
        if state.paused:
            status.append("⏸ paused while the reply plays", style="yellow")
        else:
            status.append("● sending", style="bold red")
        status.append(f"   mic {meter(state.level_db)} {max(state.level_db, -99):.0f} dB")
        status.append(f"   sent {state.seconds_sent:.1f} s", style="dim")
        if state.seconds_dropped:
            status.append(f"   held back {state.seconds_dropped:.1f} s", style="dim")
        if state.seconds_paused:
            status.append(f"   paused {state.seconds_paused:.1f} s", style="dim")
        status.append(f"   turns {state.turns}  replies {state.replies}", style="dim")
        rows.append(status)
        return Panel(
            Group(*rows),
            title=f"voxwire mic  {state.url}".rstrip(),
            title_align="left",
            subtitle="Ctrl-C to stop" if state.live_input else None,
            subtitle_align="right",
        )
