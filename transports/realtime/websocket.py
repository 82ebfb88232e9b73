"""`GET /v1/realtime`: one WebSocket connection speaking the OpenAI Realtime API.

The connection translates frames into Session calls (through the SessionDriver,
so audio work runs off the event loop and decodes on the shared workers) and
session events into frames. It reads the next frame only when the last one has
been handled, so a fast client is paced by the engine rather than buffered;
events wait in a bounded queue, and a client that stops reading them is closed.
A session is released the moment it is condemned: a send (event or close frame)
that does not complete within `send_timeout_s` aborts the connection rather than
wait for a peer that does not read, and the reader, the writer and the slot are
freed at once; why each session ended is counted (`SessionSlots.ended`).
Audio passes through the session's :class:`~voxwire.transports.realtime.classifiers.LiveClassifiers`
(wake words, the wake-word gate, classification of finished items).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket

from voxwire.engine.audio import MODEL_RATE, Float32Array, pcm16_to_float32
from voxwire.engine.driver import SessionDriver
from voxwire.engine.errors import VoxwireError, describe
from voxwire.engine.events import Event
from voxwire.engine.session import Session, SessionCounters
from voxwire.services.reply_handlers import EchoHandler, ReplyHandler
from voxwire.services.runtime import Runtime
from voxwire.services.slots import Slots
from voxwire.services.speakers import SpeakerStore
from voxwire.transports.realtime.classifiers import LiveClassifiers
from voxwire.transports.realtime.peer import AudioSink, EventPeer, WebSocketPeer
from voxwire.transports.realtime.protocol import (
    AudioAppend,
    AudioClear,
    AudioCommit,
    ClientEvent,
    ItemCreate,
    ItemDelete,
    ItemTruncate,
    ModelCatalogue,
    OutputAudioClear,
    ProtocolError,
    ResponseCancel,
    ResponseCreate,
    SessionConfig,
    SessionUpdate,
    StatsRequest,
    apply_update,
    client_event_id,
    decode_base64_bytes,
    input_pcm16,
    parse_client_event,
)
from voxwire.transports.realtime.responses import RealtimeResponses, ReplyCounters
from voxwire.transports.realtime.server_events import (
    ErrorDetails,
    ErrorEvent,
    ServerEvent,
    SessionCreated,
    SessionEvent,
    SessionStats,
    SessionUpdated,
)

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
CLASSIFICATION_WAIT_S = 1.0
"""Longest a reply waits for the classifications of the turn it answers."""


@dataclass(frozen=True)
class RealtimeLimits:
    """Per-server bounds of the Realtime endpoint."""

    max_sessions: int = 64
    max_message_bytes: int = 8 * 1024 * 1024
    """Larger frames are refused by the WebSocket layer (close code 1009)."""
    max_queued_events: int = 1024
    """Events waiting for a slow reader; beyond this the client is disconnected."""
    reply_audio_lead_s: float = 1.0
    """How far ahead of real time reply audio is sent as events; what is not sent yet
    is dropped at once by barge-in."""
    send_timeout_s: float = 10.0
    """A send (event or close frame) that cannot complete this long means the client
    stopped reading: the connection is aborted and the session freed."""

    def __post_init__(self) -> None:
        if self.max_sessions < 1 or self.max_queued_events < 1:
            raise ValueError("max_sessions and max_queued_events must be at least 1")
        if self.send_timeout_s <= 0:
            raise ValueError("send_timeout_s must be positive")


class SessionSlots(Slots):
    """The :class:`Slots` of the Realtime API (WebSocket sessions and WebRTC calls, and
    Wyoming streams beside them), with the live sessions and the counters of those that
    have ended."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.active: dict[str, RealtimeConnection] = {}
        self.opened = 0
        """Sessions opened since start (metrics)."""
        self.finished = SessionCounters()
        """The counters of every session that has ended, summed (metrics add the live ones)."""
        self.finished_replies = ReplyCounters()
        """The reply counters of every session that has ended, summed."""
        self.ended: dict[str, int] = {}
        """Sessions ended since start, by reason (see `RealtimeConnection.end_reason`)."""

    def register(self, connection: RealtimeConnection) -> None:
        """A session is open: count it and make its live counters visible."""
        self.active[connection.config.session_id] = connection
        self.opened += 1

    def retire(self, session_id: str) -> None:
        """A session has ended: fold its counters into `finished` (no await in between,
        so a scrape sees each session exactly once)."""
        connection = self.active.pop(session_id, None)
        if connection is not None:
            _add_counters(self.finished, connection.session.counters)
            _add_counters(self.finished_replies, connection.replies.counters)
            reason = connection.end_reason
            self.ended[reason] = self.ended.get(reason, 0) + 1


def _add_counters(total: Any, more: Any) -> None:
    """Add the fields of the counters dataclass `more` to `total`."""
    for item in dataclasses.fields(total):
        setattr(total, item.name, getattr(total, item.name) + getattr(more, item.name))


async def serve_realtime(
    websocket: WebSocket,
    runtime: Runtime,
    slots: SessionSlots,
    limits: RealtimeLimits,
    reply_handler: ReplyHandler | None = None,
    speakers: SpeakerStore | None = None,
) -> None:
    """Handle one `GET /v1/realtime` connection from handshake to cleanup; `speakers`:
    who speaker identification may name."""
    subprotocol = "realtime" if "realtime" in websocket.scope.get("subprotocols", []) else None
    if not slots.try_reserve():
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(
            CLOSE_TRY_AGAIN_LATER, f"server is at its limit of {slots.limit} sessions"
        )
        log.warning("refused a realtime connection: %d sessions are open", slots.limit)
        return
    try:
        await websocket.accept(subprotocol=subprotocol)
        if not await _streaming_ready(websocket, runtime):
            return
        config = _initial_config(websocket, runtime)
        connection = RealtimeConnection(
            WebSocketPeer(websocket),
            runtime,
            config,
            limits,
            speakers=speakers,
            reply_handler=reply_handler,
        )
        slots.register(connection)
        try:
            await connection.serve()
        finally:
            slots.retire(config.session_id)
    finally:
        slots.release()


async def _streaming_ready(websocket: WebSocket, runtime: Runtime) -> bool:
    """Wait (bounded: the runtime's model wait) for the recogniser; if it is still
    loading then, or failed, send one `error` event and close (1013: try again later)."""
    try:
        await runtime.wait_streaming()
    except VoxwireError as exc:
        desc = describe(exc)
        await websocket.send_text(json.dumps(ErrorEvent.describing(exc).to_wire()))
        await websocket.close(desc.ws_close_code, desc.message[:120])
        log.warning("refused a realtime connection: %s", desc.message)
        return False
    return True


def _initial_config(websocket: WebSocket, runtime: Runtime) -> SessionConfig:
    query = websocket.query_params
    session_id = f"sess_{secrets.token_hex(10)}"
    if query.get("intent") == "transcription" or "model" not in query:
        return SessionConfig(type="transcription", session_id=session_id, model=runtime.asr_name)
    return SessionConfig(
        type="realtime",
        session_id=session_id,
        model=runtime.asr_name,
        realtime_model=query["model"],
    )


class RealtimeConnection:
    """One client's session: reads client events, writes server events."""

    def __init__(
        self,
        peer: EventPeer,
        runtime: Runtime,
        config: SessionConfig,
        limits: RealtimeLimits,
        *,
        speakers: SpeakerStore | None = None,
        audio_sink: AudioSink | None = None,
        reply_handler: ReplyHandler | None = None,
    ) -> None:
        """`speakers`: who speaker identification may name (none: everyone is unknown).
        `audio_sink`: where reply audio goes on a transport with a media track (WebRTC);
        without one it goes out as `response.output_audio.delta` events.
        `reply_handler`: what writes the replies of realtime sessions (default: echo)."""
        self.peer = peer
        self.audio_sink = audio_sink
        self.runtime = runtime
        self.config = config
        self.limits = limits
        self.catalogue = ModelCatalogue(
            asr_name=runtime.asr.name,
            multilingual=bool(getattr(runtime.asr, "multilingual", True)),
            voices=_tts_voices(runtime),
        )
        self.session: Session = runtime.new_session(
            config.session_options(), session_id=config.session_id
        )
        self.driver: SessionDriver = runtime.driver(self.session, self._on_session_events)
        self.live = LiveClassifiers(
            runtime, self.driver, self._send, session_id=config.session_id, speakers=speakers
        )
        self.replies = RealtimeResponses(
            runtime,
            reply_handler or EchoHandler(),
            self._send,
            lambda: self.config,
            session_id=config.session_id,
            classifications=lambda item_id: self.live.results.wait(item_id, CLASSIFICATION_WAIT_S),
            item_audio=self.session.item_audio,
            audio_sink=audio_sink,
            lead_s=limits.reply_audio_lead_s,
        )
        self._outgoing: asyncio.Queue[ServerEvent | None] = asyncio.Queue(limits.max_queued_events)
        self._closing: asyncio.Task[None] | None = None
        self._condemned = asyncio.Event()
        self.end_reason = "client_closed"
        """Why the session ended: client_closed, unread_events (the queue filled),
        send_timeout (a send or the close never completed: aborted), internal_error."""
        self.opened_at = time.monotonic()

    # -- lifecycle -----------------------------------------------------------------------

    async def serve(self) -> None:
        log.info("%s: %s session opened", self.config.session_id, self.config.type)
        name = self.config.session_id
        writer = asyncio.create_task(self._write_events(), name=f"{name}:writer")
        self._send(SessionCreated(session=self.config.to_wire()))
        reader = asyncio.create_task(self._read_events(), name=f"{name}:reader")
        condemned = asyncio.create_task(self._condemned.wait(), name=f"{name}:condemned")
        try:
            await asyncio.wait((reader, condemned), return_when=asyncio.FIRST_COMPLETED)
            if reader.done():
                reader.result()  # what the reader raised, if anything
        finally:
            for task in (reader, condemned):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.replies.close()
            await self.live.close()
            await self.driver.close()
            self.session.abandon()
            if self._closing is not None:
                await self._closing
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            c = self.session.counters
            log.info(
                "%s: closed after %.1f s: %.1f s of audio in, %.1f s transcribed, "
                "%d partial and %d final decodes, %d jobs dropped, %d samples evicted",
                self.config.session_id,
                time.monotonic() - self.opened_at,
                c.samples_resampled / MODEL_RATE,
                c.samples_transcribed / MODEL_RATE,
                c.partial_decodes,
                c.final_decodes,
                c.jobs_dropped,
                c.evicted_samples,
            )

    async def _read_events(self) -> None:
        while self._closing is None:
            message = await self.peer.receive()
            if message is None:
                return
            text = message if isinstance(message, str) else None
            try:
                if isinstance(message, bytes):
                    await self._append(message, param=None)
                else:
                    await self._handle(parse_client_event(message))
            except VoxwireError as exc:
                self._send_error(exc, client_event_id(text) if text is not None else None)
            except Exception:
                log.exception("%s: internal error; closing the session", self.config.session_id)
                self.end_reason = "internal_error"
                self._send(
                    ErrorEvent(
                        error=ErrorDetails(
                            type="server_error",
                            code="internal_error",
                            message="internal server error",
                        )
                    )
                )
                self._close_soon(CLOSE_INTERNAL_ERROR, "internal server error")
                return

    # -- client events -------------------------------------------------------------------

    async def _handle(self, event: ClientEvent) -> None:
        if isinstance(event, AudioAppend):
            await self._append(decode_base64_bytes(event.audio))
        elif isinstance(event, AudioCommit):
            await self.driver.run(Session.commit)
        elif isinstance(event, AudioClear):
            self.live.clear()
            await self.driver.run(Session.clear)
        elif isinstance(event, SessionUpdate):
            await self._update(event)
        elif isinstance(event, ResponseCreate):
            self._realtime_only(event.type)
            self.replies.create(event.response)
        elif isinstance(event, ResponseCancel):
            self.replies.cancel(event.response_id)
        elif isinstance(event, ItemTruncate):
            self.replies.truncate(event.item_id, event.content_index, event.audio_end_ms)
        elif isinstance(event, ItemCreate):
            self._realtime_only(event.type)
            self.replies.create_item(event)
        elif isinstance(event, ItemDelete):
            self._realtime_only(event.type)
            self.replies.delete_item(event.item_id)
        elif isinstance(event, OutputAudioClear):
            self.replies.clear_output_audio()
        elif isinstance(event, StatsRequest):
            self._send(
                SessionStats(
                    session_id=self.config.session_id,
                    counters=dataclasses.asdict(self.session.counters),
                    open_items=self.session.open_items,
                    classifiers=self.live.stats(),
                    replies=self.replies.stats(),
                )
            )

    def _realtime_only(self, kind: str) -> None:
        if not self.config.responds:
            raise ProtocolError(
                f"{kind} needs a realtime session; this is a transcription session "
                "(connect with ?model=... for spoken replies)",
                code="invalid_request_error",
                param="type",
            )

    async def _append(self, data: bytes, *, param: str | None = "audio") -> None:
        """Input audio in the session's format: PCM16, or G.711 decoded to PCM16 here."""
        pcm = input_pcm16(data, self.config.input_encoding, param=param)
        if pcm:
            await self.feed_audio(pcm16_to_float32(pcm), self.config.input_rate)

    async def feed_audio(self, samples: Float32Array, rate: int) -> None:
        """Microphone audio; `rate` must be the session's input rate (the WebRTC path
        resamples its track to it first)."""
        await self.live.feed(samples, rate)

    async def _update(self, event: SessionUpdate) -> None:
        new = apply_update(self.config, event.session, self.catalogue)
        changed = new.classification != self.config.classification
        # Load and check the classifiers' models first: a failure leaves all unchanged.
        entries = await self.live.prepare(new.classification) if changed else {}
        options = new.session_options(self.session.options)
        await self.driver.run(lambda session: session.reconfigure(options))
        self.config = new
        if changed:
            await self.live.apply(new.classification, entries)
        self._send(SessionUpdated(session=new.to_wire()))

    # -- server events -------------------------------------------------------------------

    def _on_session_events(self, events: Sequence[Event], _facts: dict[str, float]) -> None:
        for event in events:
            self._send(SessionEvent.of(event))
        # After the events are queued: classifications of an item follow its transcript.
        self.live.on_events(events)
        if self.config.responds:
            self.replies.on_events(events)

    def _send_error(self, exc: VoxwireError, event_id: str | None) -> None:
        desc = describe(exc)
        log.info("%s: client error %s: %s", self.config.session_id, desc.code, desc.message)
        self._send(ErrorEvent.describing(exc, event_id=event_id))

    def _send(self, event: ServerEvent) -> None:
        if self._closing is not None:
            return
        try:
            self._outgoing.put_nowait(event)
        except asyncio.QueueFull:
            log.warning(
                "%s: %d events unread; closing the connection",
                self.config.session_id,
                self.limits.max_queued_events,
            )
            self.end_reason = "unread_events"
            self._close_soon(CLOSE_POLICY_VIOLATION, "client is not reading events")

    def _close_soon(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        """Close gracefully if the peer takes the close frame in time, else abort; the
        session ends either way (the reader may be waiting on a silent peer)."""
        try:
            async with asyncio.timeout(self.limits.send_timeout_s):
                await self.peer.close(code, reason)
        except TimeoutError:
            self._condemn("the close frame was not taken")
        self._condemned.set()

    def _condemn(self, why: str) -> None:
        """Abort the connection and end the session now."""
        log.warning(
            "%s: %s within %g s; aborting the connection",
            self.config.session_id,
            why,
            self.limits.send_timeout_s,
        )
        self.end_reason = "send_timeout"
        self.peer.abort()
        self._condemned.set()

    async def _write_events(self) -> None:
        while True:
            event = await self._outgoing.get()
            if event is None:
                return
            try:
                async with asyncio.timeout(self.limits.send_timeout_s):
                    await self.peer.send(json.dumps(event.to_wire(), separators=(",", ":")))
            except TimeoutError:
                self._condemn("an event could not be sent")
                return
            except Exception:  # the peer is gone; the reader sees the disconnect
                return


def _tts_voices(runtime: Runtime) -> tuple[str, ...]:
    """The default TTS model's own voice names, if it is loaded."""
    try:
        entry = runtime.resolve(None, "text-to-speech")
    except VoxwireError:
        return ()
    return tuple(getattr(entry.model, "voices", ()) or ())
