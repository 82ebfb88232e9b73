"""`voxwire bench stream`: how many concurrent Realtime streams one server carries, how
right their transcripts are and how soon their text shows.

Before the levels the bench posts the whole file to the same server's
`/v1/audio/transcriptions`, as verbose_json with word timestamps (the offline transcript
and its timed words) and as plain json (the wall time of one offline pass). Then, for
each level (a number of concurrent clients) it opens that many `?intent=transcription`
WebSocket sessions, sets their input rate to 16 kHz, opts in to tentative text
(`"voxwire": {"tentative_transcripts": true}`; a server that refuses the field is asked
again without it), and sends the same speech file, followed by trailing silence, as
binary PCM16 frames against an absolute clock, at `pace` times real time. Clients start
in phase, or with `stagger_s` between consecutive clients. Each client stamps the send
time of every frame and the receive time of every event, waits until every started item
has ended, then asks for the session's `voxwire.session.stats` counters.

Figures per level:
- WER: each stream's finals joined, against the reference text (or, without one, the
  offline transcript), next to the offline transcript's WER;
- phrase end -> text: a phrase ends where the audio sent goes quiet for >= 170 ms (10 ms
  RMS frames well under the file's speech level); its last word is the last offline word
  before the quiet. Latency runs from the send time of the frame holding the phrase's
  last sound to the first event after which the client's text holds that word (aligned
  to the offline words): stable text = committed deltas and finals, any text = stable
  plus each item's latest `voxwire.transcription.tentative`; p50/p95 and the phrases
  whose word never showed;
- first-delta latency (first delta - speech_started) and final latency (completed -
  speech_stopped), client-side receive times, ms;
- decode seconds per audio second (the sessions' `decode_seconds` counters over the
  audio streamed) and its ratio to one offline pass;
- real-time factor, send lag, and audio dropped (segmented-but-not-transcribed samples
  plus samples a final needed after the ring buffer had let them go, summed over
  streams), with the dropped partial jobs and failed transcriptions.

The summary checks the targets of issue 12 that the levels measured, and names the
largest level whose p95 final latency is at most 500 ms and that lost no audio.
Without `--url` the bench starts `voxwire serve` on a free loopback port, and stops it
at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import math
import mimetypes
import os
import platform
import re
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
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from voxwire.engine.audio import MODEL_RATE
from voxwire.engine.errors import VoxwireError
from voxwire.services.media import decode_audio

if TYPE_CHECKING:
    import httpx2

FINAL_P95_BUDGET_MS = 500.0
"""A level passes when its p95 final latency is at most this and it lost no audio."""

SETTLE_TIMEOUT_S = 30.0
"""How long after its last frame a stream waits for its outstanding transcripts."""

HANDSHAKE_TIMEOUT_S = 15.0
STATS_TIMEOUT_S = 10.0
SERVER_START_TIMEOUT_S = 180.0
OFFLINE_TIMEOUT_S = 600.0
OFFLINE_TIMINGS = 2
"""Timed offline passes; the shortest counts."""
WARMUP_SECONDS = 3.0

PERCENTILES = (50, 90, 95, 99)
TABLE_WIDTH = 160

SUMMARY_KEY = "max_streams_p95_final_under_500ms"

PHRASE_GAP_MS = 170
"""A phrase ends where the audio stays quiet at least this long."""
FRAME_MS = 10
"""The RMS frame of the phrase-end detector."""
QUIET_BELOW_SPEECH_DB = 30.0
"""A frame is quiet this far under the file's speech level (its 95th percentile frame)..."""
QUIET_ABOVE_FLOOR_DB = 6.0
"""...or, in a noisy recording, less than this above its noise floor (10th percentile)."""
QUIET_MAX_DB = 10.0
"""A quiet frame is always at least this far under the speech level."""
DIGITAL_SILENCE_DB = -90.0
"""Frames under this are digital silence: no evidence of the recording's levels."""
MIN_PHRASE_SPEECH_MS = 30
"""Loud audio a phrase needs before its quiet gap counts (a click is no phrase)."""

COMPLETED = "conversation.item.input_audio_transcription.completed"
FAILED = "conversation.item.input_audio_transcription.failed"
DELTA = "conversation.item.input_audio_transcription.delta"
TENTATIVE = "voxwire.transcription.tentative"
STARTED = "input_audio_buffer.speech_started"
STOPPED = "input_audio_buffer.speech_stopped"
STATS = "voxwire.session.stats"
TEXT_FIELDS: dict[str, str | None] = {
    STARTED: None,
    DELTA: "delta",
    COMPLETED: "transcript",
    TENTATIVE: "text",
}
"""The events a client keeps, in order, for the text analysis, and their text field
(speech_started has none: it gives the items' order)."""

TRANSCRIPTIONS = "/v1/audio/transcriptions"


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
    reference: str | None = None
    """The file's reference transcript; None: streamed WER is against the offline one."""
    pace: float = 1.0
    """Times real time: 4.0 sends the file four times faster."""
    stagger: bool = False
    """Spread the clients' starts: `stagger_s` apart, or evenly over the file."""
    stagger_s: float | None = None


def default_levels(streams: int) -> list[int]:
    """The ladder 1, 2, 4, 8, 16, ... (doubling) up to and including `streams`."""
    if streams < 1:
        raise ValueError("the number of streams must be at least 1")
    ladder: list[int] = []
    level = 1
    while level < streams:
        ladder.append(level)
        level *= 2
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


def read_reference(value: str | None) -> str | None:
    """`--reference`: the text of an existing file, else the text itself; None when blank."""
    if value is None:
        return None
    path = Path(value)
    text = value
    with contextlib.suppress(OSError, ValueError):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
    return text.strip() or None


def stagger_seconds(options: StreamBenchOptions, audio_seconds: float, streams: int) -> float:
    """Seconds between consecutive clients' starts: 0 in phase, else the fixed offset or
    the file's sending time over the number of streams (spread evenly over the file)."""
    if not options.stagger or streams < 2:
        return 0.0
    if options.stagger_s is not None:
        return options.stagger_s
    return audio_seconds / options.pace / streams


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


def transcription_update(rate: int, *, tentative: bool = False) -> dict[str, Any]:
    """The session.update that makes a session transcribe PCM16 at `rate` (and, with
    `tentative`, opts in to `voxwire.transcription.tentative` events)."""
    session: dict[str, Any] = {
        "type": "transcription",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": rate}}},
    }
    if tentative:
        session["voxwire"] = {"tentative_transcripts": True}
    return {"type": "session.update", "session": session}


def to_pcm16(audio: npt.NDArray[np.float32]) -> bytes:
    """Float samples in [-1, 1] as PCM16 little-endian bytes."""
    scaled = np.clip(audio, -1.0, 1.0) * 32767.0
    return np.round(scaled).astype("<i2").tobytes()


# -- words, WER and phrase ends (pure functions) ------------------------------------------


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation ("Don't," -> "don't"; "well-known" -> two)."""
    text = text.lower().replace("\u2019", "'")
    words = re.sub(r"[^\w']+", " ", text).split()
    return [w for w in (word.strip("'_") for word in words) if w]


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions that turn `reference` into `hypothesis`."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i]
        for j, hyp in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float | None:
    """WER of `hypothesis` against `reference` (normalised words); None without a reference."""
    ref = normalise_words(reference)
    if not ref:
        return None
    return word_errors(ref, normalise_words(hypothesis)) / len(ref)


@dataclass(frozen=True)
class QuietGap:
    """A stretch of quiet after speech, in seconds from the start of the audio."""

    start: float
    end: float


def frame_levels_db(
    audio: npt.NDArray[np.float32], rate: int = MODEL_RATE, frame_ms: int = FRAME_MS
) -> npt.NDArray[np.float64]:
    """The RMS level of each whole `frame_ms` frame, in dB full scale."""
    size = rate * frame_ms // 1000
    count = len(audio) // size
    if count == 0:
        return np.zeros(0, dtype=np.float64)
    frames = np.asarray(audio[: count * size], dtype=np.float64).reshape(count, size)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return np.asarray(20.0 * np.log10(np.maximum(rms, 1e-7)), dtype=np.float64)


def quiet_threshold_db(levels: npt.NDArray[np.float64]) -> float:
    """The level under which a frame is quiet: well under the speech level (95th percentile
    frame), or close to the noise floor (10th percentile) when the recording is noisy.
    Digital silence (such as the silence the bench appends) is left out of both."""
    sounding = levels[levels > DIGITAL_SILENCE_DB]
    if len(sounding) == 0:
        return DIGITAL_SILENCE_DB
    speech = float(np.percentile(sounding, 95))
    floor = float(np.percentile(sounding, 10))
    threshold = max(speech - QUIET_BELOW_SPEECH_DB, floor + QUIET_ABOVE_FLOOR_DB)
    return min(threshold, speech - QUIET_MAX_DB)


def quiet_gaps(
    audio: npt.NDArray[np.float32],
    rate: int = MODEL_RATE,
    *,
    min_gap_ms: int = PHRASE_GAP_MS,
    frame_ms: int = FRAME_MS,
) -> list[QuietGap]:
    """Where the audio goes quiet for at least `min_gap_ms` after some speech: each gap's
    start is a phrase end. Quiet before the first speech, and quiet after a click of
    less than MIN_PHRASE_SPEECH_MS since the last gap, end no phrase."""
    levels = frame_levels_db(audio, rate, frame_ms)
    if len(levels) == 0:
        return []
    quiet = levels < quiet_threshold_db(levels)
    frame_s = frame_ms / 1000.0
    min_frames = math.ceil(min_gap_ms / frame_ms)
    min_speech = max(1, math.ceil(MIN_PHRASE_SPEECH_MS / frame_ms))
    gaps: list[QuietGap] = []
    loud = 0
    k = 0
    while k < len(quiet):
        if not quiet[k]:
            loud += 1
            k += 1
            continue
        run_end = k
        while run_end < len(quiet) and quiet[run_end]:
            run_end += 1
        if run_end - k >= min_frames and loud >= min_speech:
            gaps.append(QuietGap(round(k * frame_s, 3), round(run_end * frame_s, 3)))
            loud = 0
        k = run_end
    return gaps


@dataclass(frozen=True)
class TimedWord:
    """A word of the offline transcript with its time in the file (seconds)."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class PhraseTarget:
    """A phrase end and the offline word that must show for the phrase to count as seen."""

    end_s: float
    """The phrase end (the start of its quiet gap), seconds into the audio sent."""
    word: str
    token: int
    """Index of the word's last normalised token in `offline_tokens(words)`."""


def offline_tokens(words: Sequence[TimedWord]) -> tuple[list[str], list[int | None]]:
    """The normalised tokens of the offline words, and per word the index of its last
    token (None for a word that normalises to nothing, such as a lone dash)."""
    tokens: list[str] = []
    last: list[int | None] = []
    for word in words:
        parts = normalise_words(word.word)
        tokens.extend(parts)
        last.append(len(tokens) - 1 if parts else None)
    return tokens, last


def phrase_targets(gaps: Sequence[QuietGap], words: Sequence[TimedWord]) -> list[PhraseTarget]:
    """Each phrase end's last word: the last offline word before the gap. A word belongs
    before a gap when its midpoint is before the gap's midpoint (Whisper's word ends may
    run into the pause, and the next word's start may be pulled back into it). A phrase
    whose last word is the previous phrase's (a breath, a cough) gets no target."""
    _, last_token = offline_tokens(words)
    targets: list[PhraseTarget] = []
    w = 0
    chosen: int | None = None
    for gap in gaps:
        middle = (gap.start + gap.end) / 2.0
        before = chosen
        while w < len(words) and (words[w].start + words[w].end) / 2.0 < middle:
            if last_token[w] is not None:
                chosen = w
            w += 1
        if chosen is not None and chosen != before:
            token = last_token[chosen]
            assert token is not None
            targets.append(PhraseTarget(gap.start, words[chosen].word, token))
    return targets


def matched_positions(reference: Sequence[str], hypothesis: Sequence[str]) -> set[int]:
    """Indices of `reference` tokens that an alignment with `hypothesis` matches."""
    if not reference or not hypothesis:
        return set()
    matcher = difflib.SequenceMatcher(None, list(reference), list(hypothesis), autojunk=False)
    return {a + i for a, _, size in matcher.get_matching_blocks() for i in range(size)}


@dataclass(frozen=True)
class TextEvent:
    """A text event as a client received it (perf_counter seconds)."""

    time: float
    kind: str
    item_id: str
    text: str


def text_snapshots(events: Sequence[TextEvent]) -> list[tuple[float, str, str]]:
    """(time, stable text, any text) after each text event: stable is every item's
    committed deltas (replaced by its transcript once completed), any adds each open
    item's latest tentative text. Items keep the order of their speech_started (events
    of that kind carry no text and make no snapshot; an item without one takes its place
    at its first text), so an item that completes late still reads in its place."""
    committed: dict[str, str] = {}
    tentative: dict[str, str] = {}
    snapshots: list[tuple[float, str, str]] = []
    for event in events:
        if event.kind == STARTED:
            committed.setdefault(event.item_id, "")
            continue
        if event.kind == DELTA:
            committed[event.item_id] = committed.get(event.item_id, "") + event.text
        elif event.kind == COMPLETED:
            committed[event.item_id] = event.text
            tentative.pop(event.item_id, None)
        elif event.kind == TENTATIVE:
            committed.setdefault(event.item_id, "")
            tentative[event.item_id] = event.text
        else:
            continue
        stable = " ".join(committed.values())
        shown = " ".join(f"{text} {tentative.get(item, '')}" for item, text in committed.items())
        snapshots.append((event.time, stable, shown))
    return snapshots


def first_holding_times(
    timeline: Sequence[tuple[float, str]], reference: Sequence[str], targets: Sequence[int]
) -> list[float | None]:
    """For each target token index of `reference`, the time of the first (time, text) of
    `timeline` whose text, aligned with `reference`, matches that token; None if never."""
    found: list[float | None] = [None] * len(targets)
    previous: str | None = None
    for when, text in timeline:
        if text == previous:
            continue
        previous = text
        pending = [i for i, t in enumerate(found) if t is None]
        if not pending:
            break
        matched = matched_positions(reference, normalise_words(text))
        for i in pending:
            if targets[i] in matched:
                found[i] = when
    return found


def phrase_end_send_times(
    targets: Sequence[PhraseTarget], send_times: Sequence[float], chunk_ms: int
) -> list[float | None]:
    """When the client sent the frame holding each phrase's last sample before its quiet."""
    chunk = MODEL_RATE * chunk_ms // 1000
    times: list[float | None] = []
    for target in targets:
        last_sample = max(0, round(target.end_s * MODEL_RATE) - 1)
        k = last_sample // chunk
        times.append(send_times[k] if k < len(send_times) else None)
    return times


@dataclass
class PhraseLatencies:
    """One stream's phrase end -> text latencies (seconds; None: the word never showed)."""

    stable: list[float | None] = field(default_factory=list)
    any: list[float | None] = field(default_factory=list)
    early_stable: int = 0
    """Phrases whose word was stable before the phrase end was sent (counted as 0)."""
    early_any: int = 0


def _latency(seen: float | None, sent_at: float | None) -> tuple[float | None, bool]:
    """(seconds from sending to seeing, clamped at 0; whether it was seen before sending)."""
    if seen is None or sent_at is None:
        return None, False
    return max(0.0, seen - sent_at), seen < sent_at


def phrase_latencies(
    events: Sequence[TextEvent],
    targets: Sequence[PhraseTarget],
    reference: Sequence[str],
    sent: Sequence[float | None],
) -> PhraseLatencies:
    """From each phrase end's send time to the first event after which the stable (or any)
    text holds the phrase's last word; text already there when it was sent counts as 0.
    Any text includes stable text, so a phrase is never later in any text than in stable."""
    snapshots = text_snapshots(events)
    tokens = [t.token for t in targets]
    stable = first_holding_times([(w, s) for w, s, _ in snapshots], reference, tokens)
    shown = first_holding_times([(w, a) for w, _, a in snapshots], reference, tokens)
    result = PhraseLatencies()
    for sent_at, stable_at, shown_at in zip(sent, stable, shown, strict=True):
        if shown_at is None or (stable_at is not None and stable_at < shown_at):
            shown_at = stable_at
        latency, early = _latency(stable_at, sent_at)
        result.stable.append(latency)
        result.early_stable += early
        latency, early = _latency(shown_at, sent_at)
        result.any.append(latency)
        result.early_any += early
    return result


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
    send_times: list[float] = field(default_factory=list)
    """When each frame went out (perf_counter seconds), by frame number."""
    text_events: list[TextEvent] = field(default_factory=list)
    max_send_lag: float = 0.0
    counters: dict[str, float] | None = None
    tentative_refused: bool = False
    """The server answered the tentative opt-in with an error (asked again without it)."""
    errors: list[str] = field(default_factory=list)

    @property
    def first_send(self) -> float | None:
        return self.send_times[0] if self.send_times else None

    @property
    def started_items(self) -> list[ItemTimes]:
        return [item for item in self.items.values() if item.started is not None]

    @property
    def missing(self) -> int:
        """Started items that neither completed nor failed."""
        return sum(1 for item in self.started_items if item.ended is None)

    @property
    def tentative_events(self) -> int:
        return sum(1 for event in self.text_events if event.kind == TENTATIVE)

    @property
    def transcript(self) -> str:
        return " ".join(
            item.transcript.strip()
            for item in self.items.values()
            if item.ended is not None and not item.failed and item.transcript.strip()
        )


def _numeric_counters(counters: object) -> dict[str, float]:
    """The numbers of a stats event's `counters` (ints stay ints: decode_seconds is a float)."""
    if not isinstance(counters, dict):
        return {}
    return {
        str(k): v
        for k, v in counters.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


class StreamClient:
    """One Realtime transcription session driven at a steady pace."""

    def __init__(self, index: int, url: str) -> None:
        self.url = url
        self.record = StreamRecord(index)
        self._ws: ClientConnection | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._stats_waiters: list[asyncio.Future[dict[str, Any] | None]] = []
        self._closed: str | None = None

    async def open(self, *, tentative: bool = True) -> None:
        """Connect, wait for session.created, switch the input rate to 16 kHz and opt in
        to tentative text (asking again without it if the server refuses the field)."""
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
            await ws.send(json.dumps(transcription_update(MODEL_RATE, tentative=tentative)))
            try:
                await asyncio.wait_for(self._expect(ws, "session.updated"), HANDSHAKE_TIMEOUT_S)
            except BenchError:
                if not tentative:
                    raise
                self.record.tentative_refused = True
                await ws.send(json.dumps(transcription_update(MODEL_RATE)))
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

    async def send_audio(
        self, pcm: bytes, chunk_ms: int, start_at: float, pace: float | None
    ) -> None:
        """Send `pcm` in chunk_ms frames; frame k is due at start_at + k * chunk_ms / pace
        (as fast as possible when pace is None)."""
        ws = self._ws
        assert ws is not None
        chunk_bytes = MODEL_RATE * chunk_ms // 1000 * 2
        step_s = chunk_ms / 1000.0 / pace if pace else 0.0
        record = self.record
        try:
            for k in range(math.ceil(len(pcm) / chunk_bytes)):
                if pace:
                    due = start_at + k * step_s
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    record.max_send_lag = max(record.max_send_lag, time.perf_counter() - due)
                await ws.send(pcm[k * chunk_bytes : (k + 1) * chunk_bytes])
                record.send_times.append(time.perf_counter())
        except ConnectionClosed as exc:
            record.errors.append(f"connection closed while sending: {exc}")

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
            self.record.counters = _numeric_counters(stats.get("counters"))
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
        if isinstance(kind, str) and kind in TEXT_FIELDS:
            name = TEXT_FIELDS[kind]
            text = event.get(name) if name is not None else ""
            self.record.text_events.append(
                TextEvent(now, kind, item_id, text if isinstance(text, str) else "")
            )
            if kind == TENTATIVE:
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
    url: str,
    pcm: bytes,
    streams: int,
    chunk_ms: int,
    *,
    pace: float | None = 1.0,
    stagger_s: float = 0.0,
    tentative: bool = True,
) -> list[StreamRecord]:
    """Run `streams` clients at once; their records. Client i starts i * stagger_s after
    the first, or, in phase (stagger_s 0), spread over one frame."""
    clients = [StreamClient(i, url) for i in range(streams)]
    try:
        async with asyncio.TaskGroup() as group:
            for client in clients:
                group.create_task(client.open(tentative=tentative))
        offset = stagger_s if stagger_s > 0 else chunk_ms / 1000.0 / streams
        start = time.perf_counter() + 0.05
        async with asyncio.TaskGroup() as group:
            for i, client in enumerate(clients):
                group.create_task(_run_one(client, pcm, chunk_ms, start + i * offset, pace))
    except BaseExceptionGroup as group_error:
        first = group_error.exceptions[0]
        raise first from None
    finally:
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
    return [client.record for client in clients]


async def _run_one(
    client: StreamClient, pcm: bytes, chunk_ms: int, start_at: float, pace: float | None
) -> None:
    await client.send_audio(pcm, chunk_ms, start_at, pace)
    await client.settle(time.perf_counter() + SETTLE_TIMEOUT_S)
    await client.finish()


@dataclass(frozen=True)
class Offline:
    """One offline pass of the file on the same server: the yardstick of a level."""

    text: str
    words: tuple[TimedWord, ...]
    wall_seconds: float
    audio_seconds: float
    reference: str | None
    """The reference transcript, None when none was given (WER is then against `text`)."""
    targets: tuple[PhraseTarget, ...] = ()
    phrases: int = 0
    """Phrase ends found in the audio sent (targets are those with a word of their own)."""

    @property
    def tokens(self) -> list[str]:
        return offline_tokens(self.words)[0]

    @property
    def wer_reference(self) -> str:
        return self.reference if self.reference is not None else self.text

    @property
    def wer(self) -> float | None:
        """The offline transcript's WER against the reference (None without one)."""
        if self.reference is None:
            return None
        return word_error_rate(self.reference, self.text)

    @property
    def seconds_per_audio_second(self) -> float | None:
        if self.audio_seconds <= 0:
            return None
        return self.wall_seconds / self.audio_seconds


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _ms(values: Sequence[float | None]) -> list[float]:
    return [1000.0 * v for v in values if v is not None]


def level_figures(
    records: Sequence[StreamRecord],
    audio_seconds: float,
    offline: Offline | None = None,
    chunk_ms: int = 20,
) -> dict[str, Any]:
    """The figures of one level from its streams' records (WER, phrase latencies and the
    decode ratio need the offline pass)."""
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
    counters: dict[str, float] = {}
    for record in records:
        for key, value in (record.counters or {}).items():
            counters[key] = counters.get(key, 0) + value
    stats_missing = sum(1 for record in records if record.counters is None)
    # Evicted samples are no loss by themselves: a stream longer than the ring buffer
    # evicts audio transcribed long before. Lost = what a final needed and was gone.
    dropped_samples = counters.get("samples_lost", 0) + (
        counters.get("samples_segmented", 0) - counters.get("samples_transcribed", 0)
    )
    final_figures = percentiles(final)
    p95 = final_figures["p95"]
    audio_dropped_ms = round(1000.0 * dropped_samples / MODEL_RATE, 1)
    ok = (
        p95 is not None
        and p95 <= FINAL_P95_BUDGET_MS
        and audio_dropped_ms == 0
        and failed == 0
        and missing == 0
        and stats_missing == 0
    )
    figures: dict[str, Any] = {
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
        "tentative": {
            "events": sum(r.tentative_events for r in records),
            "refused_by": sum(1 for r in records if r.tentative_refused),
        },
        "decode": decode_figures(records, audio_seconds, offline),
        "counters": {k: round(v, 4) if isinstance(v, float) else v for k, v in counters.items()},
        "errors": sorted({e for r in records for e in r.errors})[:20],
        "ok": ok,
    }
    if offline is not None:
        figures["wer"] = wer_figures(records, offline)
        figures["phrases"] = phrase_figures(records, offline, chunk_ms)
    return figures


def decode_figures(
    records: Sequence[StreamRecord], audio_seconds: float, offline: Offline | None
) -> dict[str, Any]:
    """Decode seconds per audio second, summed over streams, and its ratio to one offline
    pass; None when a session's stats lack `decode_seconds`."""
    offline_rate = None if offline is None else offline.seconds_per_audio_second
    seconds = [(r.counters or {}).get("decode_seconds") for r in records]
    known = [s for s in seconds if s is not None]
    per_audio = None
    if known and len(known) == len(records) and audio_seconds > 0:
        per_audio = sum(known) / (audio_seconds * len(records))
    ratio = None
    if per_audio is not None and offline_rate:
        ratio = per_audio / offline_rate
    return {
        "decode_seconds": _rounded(sum(known) if known else None),
        "per_audio_second": _rounded(per_audio, 4),
        "offline_per_audio_second": _rounded(offline_rate, 4),
        "ratio_to_offline": _rounded(ratio, 2),
    }


def wer_figures(records: Sequence[StreamRecord], offline: Offline) -> dict[str, Any]:
    """Each stream's WER (its finals joined) and the offline pass's, against the same text."""
    streamed = [word_error_rate(offline.wer_reference, r.transcript) for r in records]
    values = [v for v in streamed if v is not None]
    return {
        "against": "reference" if offline.reference is not None else "offline transcript",
        "streamed_mean": _rounded(float(np.mean(values)) if values else None),
        "streamed_max": _rounded(max(values) if values else None),
        "streamed_per_stream": [_rounded(v) for v in streamed],
        "offline": _rounded(offline.wer),
    }


def phrase_figures(
    records: Sequence[StreamRecord], offline: Offline, chunk_ms: int
) -> dict[str, Any]:
    """Phrase end -> stable text and -> any text over every stream's phrases (ms)."""
    tokens = offline.tokens
    stable: list[float | None] = []
    shown: list[float | None] = []
    early_stable = early_any = 0
    first: list[dict[str, Any]] = []
    for record in records:
        sent = phrase_end_send_times(offline.targets, record.send_times, chunk_ms)
        latencies = phrase_latencies(record.text_events, offline.targets, tokens, sent)
        if not first:
            first = [
                {
                    "end_s": round(target.end_s, 3),
                    "last_word": target.word,
                    "stable_ms": None if st is None else round(1000.0 * st),
                    "any_ms": None if an is None else round(1000.0 * an),
                }
                for target, st, an in zip(
                    offline.targets, latencies.stable, latencies.any, strict=True
                )
            ]
        stable += latencies.stable
        shown += latencies.any
        early_stable += latencies.early_stable
        early_any += latencies.early_any
    return {
        "per_stream": len(offline.targets),
        "measured": len(stable),
        "stable_ms": percentiles(_ms(stable)),
        "any_ms": percentiles(_ms(shown)),
        "missing_stable": sum(1 for v in stable if v is None),
        "missing_any": sum(1 for v in shown if v is None),
        "early_stable": early_stable,
        "early_any": early_any,
        "stream_0": first,
    }


def summarise(levels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The largest level that kept p95 final latency within budget and lost nothing."""
    passing = [level["streams"] for level in levels if level["ok"]]
    return {
        SUMMARY_KEY: max(passing) if passing else None,
        "criterion": (
            f"p95 final latency <= {FINAL_P95_BUDGET_MS:.0f} ms, no audio dropped "
            "(segmented but not transcribed, or gone from the ring buffer before its "
            "final), every utterance completed"
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
        return self.http_url("/health")

    def http_url(self, path: str) -> str:
        """`path` on the server's HTTP side (http for ws, https for wss)."""
        parts = urlsplit(self.url)
        scheme = "https" if parts.scheme == "wss" else "http"
        return urlunsplit((scheme, parts.netloc, path, "", ""))

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


def models_settled(health: dict[str, Any] | None) -> bool:
    """Whether a /health answer says the models have finished loading (or failed)."""
    return health is not None and health.get("status") != "loading"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def voxwire_command(*args: str) -> list[str]:
    """The installed `voxwire` console script (or the module) with `args`."""
    script = Path(sys.executable).parent / "voxwire"
    base = (
        [str(script)] if script.exists() else [sys.executable, "-m", "voxwire.transports.cli.main"]
    )
    return [*base, *args]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a spawned server, and kill it when it has not left within 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_command(port: int, model: str | None) -> list[str]:
    """`voxwire serve` on 127.0.0.1:`port` (with `model` as the recogniser, if given)."""
    command = voxwire_command("serve", "--host", "127.0.0.1", "--port", str(port))
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
            serve_command(port, model),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
    handle.process = process
    try:
        with console.status(f"starting voxwire serve on port {port}..."):
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while not models_settled(fetch_health(handle.health_url, timeout=1.0)):
                if process.poll() is not None:
                    tail = " | ".join(log_path.read_text(errors="replace").splitlines()[-3:])
                    raise BenchError(f"voxwire serve exited with code {process.returncode}: {tail}")
                if time.monotonic() > deadline:
                    raise BenchError(f"voxwire serve did not answer /health on port {port}")
                time.sleep(0.2)
        yield handle
    finally:
        stop_process(process)


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


async def offline_pass(
    handle: ServerHandle, name: str, data: bytes
) -> tuple[str, tuple[TimedWord, ...], float]:
    """The whole file posted to `/v1/audio/transcriptions`: once as verbose_json with
    word timestamps (the text and its timed words), then OFFLINE_TIMINGS times as plain
    json, timed (word alignment costs extra, and a streaming session does not pay it).
    The text, the words and the shortest wall time of a plain request, in seconds (the
    least disturbed by whatever else runs on the machine)."""
    import httpx2

    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    url = handle.http_url(TRANSCRIPTIONS)
    fields: dict[str, Any] = {
        "model": "whisper-1",
        "response_format": "verbose_json",
        "timestamp_granularities[]": ["word"],
    }
    async with httpx2.AsyncClient(timeout=OFFLINE_TIMEOUT_S, trust_env=False) as client:
        try:
            response = await client.post(url, files={"file": (name, data, mime)}, data=fields)
            _check_offline(response)
            walls = []
            for _ in range(OFFLINE_TIMINGS):
                started = time.perf_counter()
                timed = await client.post(
                    url,
                    files={"file": (name, data, mime)},
                    data={"model": "whisper-1", "response_format": "json"},
                )
                walls.append(time.perf_counter() - started)
                _check_offline(timed)
        except httpx2.TransportError as exc:
            raise BenchError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    body = response.json()
    words = tuple(
        TimedWord(str(w["word"]).strip(), float(w["start"]), float(w["end"]))
        for w in body.get("words") or []
        if isinstance(w, dict) and {"word", "start", "end"} <= w.keys()
    )
    return str(body.get("text", "")).strip(), words, min(walls)


def _check_offline(response: httpx2.Response) -> None:
    if response.status_code != 200:
        raise BenchError(
            f"the offline pass ({TRANSCRIPTIONS}) failed: HTTP {response.status_code}: "
            f"{response.text[:200]}"
        )


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
    """Run the offline pass and every level, print the table and write the JSON result."""
    if options.pace <= 0:
        raise BenchError("--pace must be above 0")
    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(width=TABLE_WIDTH)  # a file or a pipe gets the whole table
    err = Console(stderr=True)
    audio = decode_audio(options.file)
    audio_seconds = len(audio) / MODEL_RATE
    if audio_seconds == 0:
        raise BenchError(f"{options.file} holds no audio")
    silence = np.zeros(MODEL_RATE * options.silence_ms // 1000, dtype=np.float32)
    sent = np.concatenate([audio, silence])
    pcm = to_pcm16(sent)
    gaps = quiet_gaps(sent)
    with contextlib.ExitStack() as stack:
        url = None if options.url is None else realtime_url(options.url)
        handle = server_under_test(stack, url, options.model, err)
        try:
            health, offline, levels = asyncio.run(
                _run_levels(handle, audio, pcm, gaps, audio_seconds, options, out, err)
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
        "pace": options.pace,
        "stagger": (
            "in phase"
            if not options.stagger
            else "even"
            if options.stagger_s is None
            else f"{options.stagger_s} s"
        ),
        "server": {
            "url": handle.url,
            "spawned": handle.process is not None,
            "model": (health or {}).get("models", {}).get("asr"),
        },
        "machine": machine_info(),
        "offline": {
            "transcript": offline.text,
            "words": len(offline.words),
            "wall_seconds": round(offline.wall_seconds, 3),
            "seconds_per_audio_second": _rounded(offline.seconds_per_audio_second, 4),
            "wer": _rounded(offline.wer),
        },
        "reference": offline.reference,
        "wer_against": "reference" if offline.reference is not None else "offline transcript",
        "phrase_ends": {
            "min_gap_ms": PHRASE_GAP_MS,
            "found": offline.phrases,
            "with_word": len(offline.targets),
            "ends": [{"end_s": round(t.end_s, 3), "last_word": t.word} for t in offline.targets],
        },
        "levels": levels,
        "summary": {**summarise(levels), "targets": target_checks(levels)},
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
    gaps: Sequence[QuietGap],
    audio_seconds: float,
    options: StreamBenchOptions,
    out: Console,
    err: Console,
) -> tuple[dict[str, Any] | None, Offline, list[dict[str, Any]]]:
    """The server's /health before the levels, the offline pass and each level's figures."""
    initial = await asyncio.to_thread(fetch_health, handle.health_url)
    if options.warmup:
        clip = to_pcm16(
            np.concatenate([audio[: int(MODEL_RATE * WARMUP_SECONDS)], np.zeros(MODEL_RATE)])
        )
        with err.status("warm-up..."):
            await run_streams(handle.url, clip, 1, options.chunk_ms, pace=None)
    await _wait_idle(handle)
    with err.status("offline pass (one POST of the whole file)..."):
        data = await asyncio.to_thread(options.file.read_bytes)
        text, words, wall = await offline_pass(handle, options.file.name, data)
    offline = Offline(
        text=text,
        words=words,
        wall_seconds=wall,
        audio_seconds=audio_seconds,
        reference=options.reference,
        targets=tuple(phrase_targets(gaps, words)),
        phrases=len(gaps),
    )
    out.print(f"offline transcript: {text}", markup=False, highlight=False)
    if not words:
        err.print("the offline pass returned no word timestamps: no phrase latencies")
    results: list[dict[str, Any]] = []
    for n in options.levels:
        before = await _wait_idle(handle)
        stagger_s = stagger_seconds(options, audio_seconds, n)
        started = time.perf_counter()
        with err.status(f"{n} stream(s) of {audio_seconds:.1f} s at {options.pace:g}x pace..."):
            records = await run_streams(
                handle.url, pcm, n, options.chunk_ms, pace=options.pace, stagger_s=stagger_s
            )
        wall = time.perf_counter() - started
        after = await _wait_idle(handle)
        figures = level_figures(records, audio_seconds, offline, options.chunk_ms)
        figures["stagger_s"] = round(stagger_s, 3)
        figures["wall_seconds"] = round(wall, 2)
        figures["server_worker"] = _worker_delta(before, after)
        figures["transcript"] = records[0].transcript
        if not results:
            out.print(f"stream 0 transcript: {records[0].transcript}", markup=False)
        lat = figures["final_latency_ms"]
        phrases = figures["phrases"]
        err.print(
            f"{n} stream(s): WER {figures['wer']['streamed_mean']}, "
            f"phrase end -> stable p50 {phrases['stable_ms']['p50']} ms, "
            f"-> any p50 {phrases['any_ms']['p50']} ms, "
            f"final p50/p95 {lat['p50']} / {lat['p95']} ms, "
            f"audio dropped {figures['audio_dropped_ms']} ms, failed {figures['failed']}",
            markup=False,
            highlight=False,
        )
        results.append(figures)
    return initial, offline, results


def target_checks(levels: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets of issue 12 that the levels measured: what, at which N, value, met."""
    checks: list[dict[str, Any]] = []

    def check(streams: int, what: str, value: float | None, limit: float) -> None:
        checks.append(
            {
                "streams": streams,
                "target": what,
                "value": value,
                "limit": round(limit, 3),
                "met": None if value is None else value <= limit,
            }
        )

    for level in levels:
        n = level["streams"]
        wer = level.get("wer", {})
        phrases = level.get("phrases", {})
        if n <= 8 and wer:
            offline = wer.get("offline") or 0.0
            check(n, "streamed WER <= offline WER + 0.02", wer.get("streamed_max"), offline + 0.02)
        if n == 1 and phrases:
            check(n, "phrase end -> stable text p50 (ms)", phrases["stable_ms"]["p50"], 1500)
            check(n, "phrase end -> any text p50 (ms)", phrases["any_ms"]["p50"], 500)
            check(n, "speech_stopped -> completed p95 (ms)", level["final_latency_ms"]["p95"], 250)
        if n == 8:
            check(n, "speech_stopped -> completed p95 (ms)", level["final_latency_ms"]["p95"], 500)
            if phrases:
                check(n, "phrase end -> stable text p95 (ms)", phrases["stable_ms"]["p95"], 3000)
        if n == 16:
            check(n, "audio dropped (ms)", level["audio_dropped_ms"], 0)
            check(n, "speech_stopped -> completed p95 (ms)", level["final_latency_ms"]["p95"], 1000)
        check(n, "decode work / one offline pass", level["decode"]["ratio_to_offline"], 3)
    return checks


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def _ms_cell(figures: dict[str, Any], keys: Sequence[str]) -> str:
    """Milliseconds as whole numbers: "574 / 1208"."""
    return " / ".join("-" if figures.get(key) is None else str(round(figures[key])) for key in keys)


def _decode_cell(decode: dict[str, Any]) -> str:
    per_audio = decode.get("per_audio_second")
    if per_audio is None:
        return "n/a"
    ratio = decode.get("ratio_to_offline")
    return f"{per_audio:.3f} ({ratio}x)" if ratio is not None else f"{per_audio:.3f}"


def print_table(result: dict[str, Any], console: Console) -> None:
    """One row per level, then what the figures are measured against and the summary."""
    stagger = result.get("stagger", "in phase")
    table = Table(
        title=(
            f"voxwire bench stream: {result['file']} ({result['audio_seconds']} s, "
            f"{result['server']['model'] or 'server'}, {result.get('pace', 1.0):g}x pace, "
            f"clients {'in phase' if stagger == 'in phase' else 'staggered ' + stagger})"
        )
    )
    table.add_column("N", justify="right")
    table.add_column("utts", justify="right")
    table.add_column("WER stream/offline", justify="right")
    table.add_column("end->stable p50/p95 ms", justify="right")
    table.add_column("end->any p50/p95 ms", justify="right")
    table.add_column("missed stable/any", justify="right")
    table.add_column("final p50/p95/p99 ms", justify="right")
    table.add_column("decode/audio s (x offline)", justify="right")
    table.add_column("dropped ms", justify="right")
    table.add_column("send lag ms", justify="right")
    table.add_column("ok", justify="center")
    for level in result["levels"]:
        wer = level.get("wer") or {}
        phrases = level.get("phrases") or {}
        table.add_row(
            str(level["streams"]),
            f"{level['completed']}/{level['utterances']}",
            f"{_fmt(wer.get('streamed_mean'))}/{_fmt(wer.get('offline'))}",
            _ms_cell(phrases.get("stable_ms") or {}, ("p50", "p95")),
            _ms_cell(phrases.get("any_ms") or {}, ("p50", "p95")),
            f"{_fmt(phrases.get('missing_stable'))}/{_fmt(phrases.get('missing_any'))}"
            f" of {_fmt(phrases.get('measured'))}",
            _ms_cell(level["final_latency_ms"], ("p50", "p95", "p99")),
            _decode_cell(level.get("decode") or {}),
            str(round(level["audio_dropped_ms"])),
            str(round(level["max_send_lag_ms"])),
            "yes" if level["ok"] else "no",
        )
    console.print(table)
    _print_notes(result, console)


def _print_notes(result: dict[str, Any], console: Console) -> None:
    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    offline = result.get("offline") or {}
    if result.get("wer_against") == "offline transcript":
        say("no --reference given: streamed WER is against the offline transcript")
    else:
        say("WER against the --reference text; offline = one POST of the whole file")
    ends = result.get("phrase_ends") or {}
    say(
        f"phrase ends (quiet >= {ends.get('min_gap_ms', PHRASE_GAP_MS)} ms): "
        f"{_fmt(ends.get('with_word'))} per stream with a last word "
        f"(of {_fmt(ends.get('found'))} found); latency from sending the phrase end"
    )
    tentative = [level.get("tentative") or {} for level in result["levels"]]
    if any(t.get("refused_by") for t in tentative):
        say("the server refused the tentative opt-in: any text = stable text")
    elif tentative and not any(t.get("events") for t in tentative):
        say("the server sent no voxwire.transcription.tentative events: any text = stable text")
    say(
        f"one offline pass: {_fmt(offline.get('wall_seconds'))} s, "
        f"{_fmt(offline.get('seconds_per_audio_second'))} s per audio s"
    )
    missed = [c for c in result["summary"].get("targets", []) if c["met"] is False]
    checks = [c for c in result["summary"].get("targets", []) if c["met"] is not None]
    if checks:
        say(f"issue 12 targets met: {len(checks) - len(missed)}/{len(checks)}")
        for c in missed:
            say(f"  missed at N={c['streams']}: {c['target']}: {c['value']} > {c['limit']}")
    best = result["summary"][SUMMARY_KEY]
    say(
        f"max streams with p95 final latency <= {FINAL_P95_BUDGET_MS:.0f} ms "
        f"and no audio dropped: {_fmt(best)}"
    )
