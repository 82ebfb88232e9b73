"""The live microphone client behind `voxwire mic`: a Realtime WebSocket client.

It opens a session on voxwire's OpenAI-compatible Realtime endpoint, asks for
server VAD (and live classifiers), streams microphone audio as binary frames of
raw PCM16 (voxwire's extension of `input_audio_buffer.append`), and shows what
comes back: transcript deltas and finals, classifications, and the spoken reply,
which it plays. `--input-file` stands in for the microphone: the file is sent at
real-time pace, then silence closes the last turn, and the client waits for every
turn's transcript and reply before it returns.

This module is the session side: the connection, the server's events and the
bookkeeping of turns and replies. Capture, playback, pacing and the half-duplex gate
live in :mod:`voxwire.demos.mic_audio`; the options and :class:`MicError` in
:mod:`voxwire.demos.mic_options`. Half duplex by default: microphone blocks are dropped
while a reply plays (a file pauses instead). Full duplex keeps sending; the
server's barge-in then cancels the reply and its queued audio is dropped. Every
queue and buffer is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from voxwire.demos.mic_audio import (
    ClockPlayback,
    DevicePlayback,
    DuplexGate,
    Playback,
    check_devices,
    level_dbfs,
    load_input_file,
    microphone,
    stream_pcm,
)
from voxwire.demos.mic_options import MicError, MicOptions, MicSummary

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from voxwire.demos.mic_display import MicView

DEFAULT_OUTPUT_RATE: Final = 24_000
"""The rate of reply audio unless the session says otherwise."""
MIC_QUEUE_BLOCKS: Final = 50
"""Microphone blocks waiting to be sent (1 s); beyond that the oldest is dropped."""
TAIL_SILENCE_S: Final = 1.5
"""Silence sent after an input file, so that the server's VAD closes the last turn."""
SETTLE_S: Final = 10.0
"""With nothing in flight, how long to wait for a reply that may never be created."""
STALL_S: Final = 60.0
"""With a transcript or reply in flight, how long the server may stay silent."""
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
"""Largest server event accepted (a long reply sentence is a large audio delta)."""
SESSION_UPDATE_ID: Final = "event_voxwire_mic_session_update"
FINISHED_REPLIES_KEPT: Final = 64
"""Finished replies remembered, so that late deltas of a cancelled one are ignored."""


# -- conversation bookkeeping ---------------------------------------------------------------


@dataclass
class TurnTracker:
    """Which user turns and replies are still in flight (sans-I/O, bounded: finished
    turns are counted, not kept).

    Finished when every turn the server committed has its transcript (or failed),
    no reply is open and, when the session answers turns, every turn that said
    something has had its `response.done`.
    """

    expect_replies: bool = False
    speaking: set[str] = field(default_factory=set)
    pending: dict[str, None] = field(default_factory=dict)
    """Committed items waiting for their transcript, oldest first."""
    open_responses: set[str] = field(default_factory=set)
    spoken_turns: int = 0
    """Turns whose transcript has words."""
    responses_done: int = 0

    def speech_started(self, item_id: str) -> None:
        self.speaking.add(item_id)

    def commit(self, item_id: str) -> None:
        self.speaking.discard(item_id)
        self.pending[item_id] = None

    def transcribed(self, item_id: str, transcript: str | None) -> None:
        """The item's completed transcript, or None when its transcription failed."""
        self.speaking.discard(item_id)
        self.pending.pop(item_id, None)
        if transcript and transcript.strip():
            self.spoken_turns += 1

    def response_created(self, response_id: str) -> None:
        self.open_responses.add(response_id)

    def response_done(self, response_id: str) -> None:
        self.open_responses.discard(response_id)
        self.responses_done += 1

    @property
    def pending_transcripts(self) -> list[str]:
        return list(self.pending)

    @property
    def in_flight(self) -> bool:
        """The server owes us something it has started on."""
        return bool(self.speaking or self.pending or self.open_responses)

    @property
    def missing_replies(self) -> int:
        """Turns with words that have not been answered yet (0 without replies)."""
        if not self.expect_replies:
            return 0
        return max(0, self.spoken_turns - self.responses_done)

    @property
    def finished(self) -> bool:
        return not self.in_flight and self.missing_replies == 0


# -- the client ---------------------------------------------------------------------------


class MicClient:
    """One session: turns server events into display updates, playback and bookkeeping."""

    def __init__(
        self,
        ws: ClientConnection,
        options: MicOptions,
        view: MicView,
        playback: Playback,
        session: dict[str, Any],
    ) -> None:
        self.ws = ws
        self.options = options
        self.view = view
        self.playback = playback
        self.session = session
        self.gate = DuplexGate(playback, full_duplex=options.full_duplex)
        self.tracker = TurnTracker(expect_replies=expects_replies(session))
        self.summary = MicSummary()
        self.last_event_at = time.monotonic()
        self.closing = False
        self._finished_responses: deque[str] = deque(maxlen=FINISHED_REPLIES_KEPT)
        self._reply_text: dict[str, str] = {}

    # -- events from the server ------------------------------------------------------------

    async def receive(self) -> None:
        """Handle server events until the connection closes."""
        async for message in self.ws:
            if isinstance(message, str):
                self.handle(json.loads(message))

    def handle(self, event: dict[str, Any]) -> None:
        """Act on one server event."""
        self.last_event_at = time.monotonic()
        kind = str(event.get("type", ""))
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(self, event)

    def _speech_started(self, event: dict[str, Any]) -> None:
        self.tracker.speech_started(str(event.get("item_id")))
        self.view.speech_started(str(event.get("item_id")))

    def _committed(self, event: dict[str, Any]) -> None:
        self.tracker.commit(str(event.get("item_id")))

    def _transcript_delta(self, event: dict[str, Any]) -> None:
        self.view.partial(str(event.get("item_id")), str(event.get("delta", "")))

    def _transcript_tentative(self, event: dict[str, Any]) -> None:
        self.view.tentative(str(event.get("item_id")), str(event.get("text", "")))

    def _transcript_completed(self, event: dict[str, Any]) -> None:
        item_id = str(event.get("item_id"))
        transcript = str(event.get("transcript", ""))
        self.tracker.transcribed(item_id, transcript)
        self.summary.turns += 1
        self.view.final(item_id, transcript)

    def _transcript_failed(self, event: dict[str, Any]) -> None:
        item_id = str(event.get("item_id"))
        self.tracker.transcribed(item_id, None)
        self.view.failed(item_id, _error_message(event.get("error")))

    def _wake_word(self, event: dict[str, Any]) -> None:
        self.view.wake_word(
            str(event.get("name")), float(event.get("score", 0.0)), int(event.get("audio_ms", 0))
        )

    def _speaker(self, event: dict[str, Any]) -> None:
        if event.get("error"):
            self.view.classification_failed(
                str(event.get("item_id")), "speaker", _error_message(event.get("error"))
            )
            return
        self.view.speaker(
            str(event.get("item_id")), str(event.get("speaker")), float(event.get("score", 0.0))
        )

    def _classification(self, event: dict[str, Any]) -> None:
        item_id = str(event.get("item_id"))
        classifier = str(event.get("classifier"))
        if event.get("error"):
            self.view.classification_failed(item_id, classifier, _error_message(event.get("error")))
            return
        labels = [
            (str(entry.get("label")), float(entry.get("score", 0.0)))
            for entry in event.get("labels") or []
            if isinstance(entry, dict)
        ]
        self.view.classification(item_id, classifier, labels)

    def _response_created(self, event: dict[str, Any]) -> None:
        response_id = _response_id(event)
        self.tracker.response_created(response_id)
        self._reply_text[response_id] = ""
        self.view.reply_started(response_id)

    def _audio_delta(self, event: dict[str, Any]) -> None:
        response_id = str(event.get("response_id"))
        if response_id in self._finished_responses:
            return  # a cancelled reply's stragglers
        self.gate.reply_audio(response_id)
        try:
            pcm = base64.b64decode(str(event.get("delta", "")), validate=True)
        except ValueError:
            self.view.notice("ignored a reply audio delta that is not base64")
            return
        self.playback.write(pcm[: len(pcm) - len(pcm) % 2])

    def _audio_done(self, event: dict[str, Any]) -> None:
        self.gate.reply_audio_done(str(event.get("response_id")))

    def _reply_delta(self, event: dict[str, Any]) -> None:
        response_id = str(event.get("response_id"))
        if response_id in self._finished_responses:
            return
        delta = str(event.get("delta", ""))
        self._reply_text[response_id] = self._reply_text.get(response_id, "") + delta
        self.view.reply_delta(response_id, delta)

    def _reply_transcript_done(self, event: dict[str, Any]) -> None:
        response_id = str(event.get("response_id"))
        transcript = event.get("transcript")
        if isinstance(transcript, str):
            self._reply_text[response_id] = transcript

    def _response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        response_id = _response_id(event)
        status = str(response.get("status", "completed"))
        self._finished_responses.append(response_id)
        self.gate.reply_audio_done(response_id)
        if status == "cancelled":
            self.playback.clear()  # barge-in: stop talking at once
        self.tracker.response_done(response_id)
        self.summary.replies += 1
        text = self._reply_text.pop(response_id, "")
        reason = _status_reason(response.get("status_details"))
        self.view.reply_done(response_id, text, status, reason)

    def _error(self, event: dict[str, Any]) -> None:
        error = event.get("error") or {}
        message = _error_message(error)
        if isinstance(error, dict) and error.get("event_id") == SESSION_UPDATE_ID:
            raise MicError(f"the server refused the session settings: {message}")
        self.view.notice(f"server error: {message}")

    _handlers: Final[dict[str, Callable[[MicClient, dict[str, Any]], None]]] = {
        "input_audio_buffer.speech_started": _speech_started,
        "input_audio_buffer.committed": _committed,
        "conversation.item.input_audio_transcription.delta": _transcript_delta,
        "voxwire.transcription.tentative": _transcript_tentative,
        "conversation.item.input_audio_transcription.completed": _transcript_completed,
        "conversation.item.input_audio_transcription.failed": _transcript_failed,
        "voxwire.wake_word.detected": _wake_word,
        "voxwire.speaker.identified": _speaker,
        "voxwire.classification": _classification,
        "response.created": _response_created,
        "response.output_audio.delta": _audio_delta,
        "response.output_audio.done": _audio_done,
        "response.output_audio_transcript.delta": _reply_delta,
        "response.output_audio_transcript.done": _reply_transcript_done,
        "response.done": _response_done,
        "error": _error,
    }

    # -- audio to the server ---------------------------------------------------------------

    async def send_audio(self, block: bytes) -> None:
        await self.ws.send(block)
        self.summary.seconds_sent += len(block) / 2 / self.options.rate

    async def stream_file(self, pcm: bytes) -> None:
        """Send a file, then silence, pausing while replies play (half duplex)."""
        tail = bytes(int(self.options.rate * TAIL_SILENCE_S) * 2)

        async def send(block: bytes) -> None:
            self.view.level(level_dbfs(block))
            await self.send_audio(block)

        self.summary.seconds_paused += await stream_pcm(
            pcm + tail,
            send,
            self.gate,
            rate=self.options.rate,
            block_ms=self.options.block_ms,
            on_wait=self.check_stall,
        )

    async def stream_microphone(self) -> None:
        """Send microphone blocks until cancelled; blocks are dropped while a reply plays."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(MIC_QUEUE_BLOCKS)
        rate = self.options.rate

        def push(block: bytes) -> None:
            if queue.full():
                dropped = queue.get_nowait()
                self.summary.seconds_dropped += len(dropped) / 2 / rate
            queue.put_nowait(block)

        with microphone(rate, self.options.block_ms, self.options.device, push):
            while True:
                block = await queue.get()
                self.view.level(level_dbfs(block))
                if self.gate.open:
                    await self.send_audio(block)
                else:
                    self.summary.seconds_dropped += len(block) / 2 / rate

    # -- the end -----------------------------------------------------------------------------

    def check_stall(self) -> None:
        """Raise when the server has owed us something for too long."""
        idle = time.monotonic() - self.last_event_at
        if (self.tracker.in_flight or self.gate.replying) and idle > STALL_S:
            raise MicError(f"the server has not answered for {idle:.0f} s; giving up")

    async def wait_finished(self) -> None:
        """Wait until every turn has its transcript and reply, and the reply was heard."""
        while not self.tracker.finished:
            self.check_stall()
            idle = time.monotonic() - self.last_event_at
            if not self.tracker.in_flight and idle > SETTLE_S:
                missing = self.tracker.missing_replies
                self.summary.missing_replies = missing
                self.view.notice(f"{missing} turn(s) got no reply within {SETTLE_S:.0f} s")
                break
            await asyncio.sleep(0.05)
        await self.playback.drain()


def expects_replies(session: dict[str, Any]) -> bool:
    """Whether the session answers each committed turn (a realtime session with server
    VAD and `create_response`)."""
    if session.get("type") != "realtime":
        return False
    audio_input = (session.get("audio") or {}).get("input") or {}
    turn = audio_input.get("turn_detection")
    return isinstance(turn, dict) and turn.get("create_response", True) is not False


def output_rate(session: dict[str, Any]) -> int:
    """The rate of the session's reply audio."""
    fmt = ((session.get("audio") or {}).get("output") or {}).get("format") or {}
    rate = fmt.get("rate") if isinstance(fmt, dict) else None
    return int(rate) if isinstance(rate, int) and rate > 0 else DEFAULT_OUTPUT_RATE


def session_update(session_type: str, options: MicOptions) -> dict[str, Any]:
    """The client's `session.update`: input format, server VAD, classifiers."""
    audio: dict[str, Any] = {
        "input": {
            "format": {"type": "audio/pcm", "rate": options.rate},
            "turn_detection": {"type": "server_vad"},
        }
    }
    session: dict[str, Any] = {
        "type": session_type,
        "audio": audio,
        "voxwire": {"tentative_transcripts": True},
    }
    if session_type == "realtime":
        audio["output"] = {"format": {"type": "audio/pcm", "rate": DEFAULT_OUTPUT_RATE}}
    if options.classifiers:
        session["voxwire.classifiers"] = list(options.classifiers)
    return {"type": "session.update", "event_id": SESSION_UPDATE_ID, "session": session}


def _response_id(event: dict[str, Any]) -> str:
    response = event.get("response")
    if isinstance(response, dict) and response.get("id"):
        return str(response["id"])
    return str(event.get("response_id", ""))


def _error_message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "unknown error")
    return str(error) if error else "unknown error"


def _status_reason(details: Any) -> str:
    if not isinstance(details, dict):
        return ""
    if details.get("error"):
        return _error_message(details["error"])
    return str(details.get("reason") or "")


# -- running a session ----------------------------------------------------------------------


async def _next_event(ws: ClientConnection, within: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            message = await ws.recv()
            if isinstance(message, str):
                event: dict[str, Any] = json.loads(message)
                return event


async def open_session(ws: ClientConnection, options: MicOptions) -> dict[str, Any]:
    """Read session.created, send the client's settings, return session.updated's session."""
    created = await _next_event(ws)
    if created.get("type") == "error":
        error = created.get("error") or {}
        hint = ""
        if isinstance(error, dict) and error.get("code") == "invalid_api_key":
            hint = "; pass --api-key KEY (or set VOXWIRE_API_KEY)"
        raise MicError(f"the server refused the session: {_error_message(error).rstrip('.')}{hint}")
    if created.get("type") != "session.created":
        raise MicError(f"the server did not open a session (it sent {created.get('type')!r})")
    session_type = str((created.get("session") or {}).get("type", "transcription"))
    await ws.send(json.dumps(session_update(session_type, options)))
    while True:
        event = await _next_event(ws)
        if event.get("type") == "session.updated":
            session: dict[str, Any] = event.get("session") or {}
            return session
        if event.get("type") == "error":
            error = event.get("error") or {}
            raise MicError(f"the server refused the session settings: {_error_message(error)}")


@contextlib.asynccontextmanager
async def connect(options: MicOptions) -> AsyncIterator[ClientConnection]:
    """Open the WebSocket, turning every way it can fail into one MicError."""
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else None
    try:
        ws = await ws_connect(
            options.url,
            additional_headers=headers,
            max_size=MAX_MESSAGE_BYTES,
            open_timeout=10,
        )
    except InvalidURI:
        raise MicError(
            f"{options.url!r} is not a WebSocket URL (ws://HOST:PORT/v1/realtime?model=NAME)"
        ) from None
    except InvalidStatus as exc:
        status = exc.response.status_code
        hint = ""
        if status == 401:
            hint = "; pass --api-key KEY"
        elif status in (403, 404):
            hint = " (is the path /v1/realtime?)"
        raise MicError(f"{options.url} refused the WebSocket with HTTP {status}{hint}") from None
    except InvalidHandshake as exc:
        raise MicError(f"{options.url}: WebSocket handshake failed ({exc})") from None
    except TimeoutError:
        raise MicError(f"timed out connecting to {options.url}") from None
    except OSError as exc:
        if isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        else:
            reason = exc.strerror or str(exc) or type(exc).__name__
        raise MicError(
            f"cannot connect to {options.url}: {reason} (is `voxwire serve` running?)"
        ) from None
    try:
        yield ws
    finally:
        await ws.close()


def describe_close(code: int | None, reason: str | None) -> str:
    """A one-line reason for a connection the server closed (or that broke)."""
    if code is None or code == 1006:
        return "the connection to the server was lost"
    why = f": {reason}" if reason else ""
    return f"the server closed the connection (code {code}{why})"


async def run_mic(options: MicOptions, view: MicView) -> MicSummary:
    """Run the client until the input file is done (or, live, until cancelled)."""
    from websockets.exceptions import ConnectionClosed

    pcm = load_input_file(options.input_file, options.rate) if options.input_file else None
    check_devices(options)
    client: MicClient | None = None
    playback: Playback | None = None
    try:
        async with connect(options) as ws:
            try:
                session = await open_session(ws, options)
            except TimeoutError:
                raise MicError(f"{options.url} did not open a Realtime session") from None
            rate = output_rate(session)
            playback = DevicePlayback(rate, options.device) if options.playback else None
            playback = playback or ClockPlayback(rate)
            client = MicClient(ws, options, view, playback, session)
            view.connected(options, session)
            await _converse(client, pcm)
    except ConnectionClosed as exc:
        code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, None)
        raise MicError(describe_close(code, reason)) from None
    finally:
        if playback is not None:
            playback.close()
    assert client is not None and playback is not None
    summary = client.summary
    summary.playback_dropped_s = playback.dropped_samples / playback.rate
    return summary


async def _converse(client: MicClient, pcm: bytes | None) -> None:
    """Send audio and handle events side by side; the first to fail stops both."""

    async def work() -> None:
        if pcm is None:
            await client.stream_microphone()
        else:
            await client.stream_file(pcm)
            await client.wait_finished()

    async def tick() -> None:
        while True:
            client.view.tick(client.summary, paused=not client.gate.open)
            await asyncio.sleep(0.1)

    receiver = asyncio.create_task(client.receive(), name="mic-receive")
    worker = asyncio.create_task(work(), name="mic-send")
    ticker = asyncio.create_task(tick(), name="mic-tick")
    try:
        done, _ = await asyncio.wait({receiver, worker}, return_when=asyncio.FIRST_COMPLETED)
        if worker in done:
            worker.result()
            return
        exc = receiver.exception()
        if exc is not None:
            raise exc
        raise MicError(describe_close(client.ws.close_code, client.ws.close_reason))
    finally:
        for task in (receiver, worker, ticker):
            task.cancel()
        await asyncio.gather(receiver, worker, ticker, return_exceptions=True)
