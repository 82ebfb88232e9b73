"""`POST /v1/realtime/calls`: a Realtime session over WebRTC (aiortc), as OpenAI offers it.

The caller posts an SDP offer (``application/sdp``, or ``multipart/form-data`` with the
fields ``sdp`` and ``session``, the session's options as JSON) and gets the SDP answer
back (201, ``Location: /v1/realtime/calls/{call_id}``). Then:

* the caller's microphone track (Opus, 48 kHz) feeds the same
  :class:`~voxwire.transports.realtime.websocket.RealtimeConnection` as the WebSocket path does;
* reply audio goes back on an audio track paced in real time (20 ms frames);
* the data channel ``oai-events`` carries the Realtime JSON events both ways.

ICE uses host candidates (the LAN addresses, and loopback so a browser on the same
machine connects without one: see :mod:`voxwire.transports.webrtc.ice`) plus the
configured STUN/TURN servers; without any, no STUN lookup is made. A call ends when
the caller closes the data channel or the peer connection, when ICE fails or never
connects, when the microphone track sends nothing for a while, on
``POST /v1/realtime/calls/{call_id}/hangup``, or when the server stops; its session
slot, tasks and tracks are released every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamTrack
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from voxwire.engine.errors import PeerError, UnsupportedMediaType
from voxwire.services.json_limits import JsonTooDeep, loads_bounded
from voxwire.services.reply_handlers import ReplyHandler
from voxwire.services.speakers import SpeakerStore
from voxwire.transports.realtime.protocol import (
    ClassificationConfig,
    ModelCatalogue,
    ProtocolError,
    SessionConfig,
    SessionSettings,
    apply_update,
)
from voxwire.transports.realtime.websocket import (
    RealtimeConnection,
    RealtimeLimits,
    SessionSlots,
)
from voxwire.transports.webrtc.audio import WEBRTC_RATE, CallCounters, MicrophoneReader, ReplyTrack
from voxwire.transports.webrtc.ice import IceServer, include_loopback

if TYPE_CHECKING:
    from voxwire.services.runtime import Runtime

log = logging.getLogger(__name__)

EVENTS_CHANNEL: Final = "oai-events"
CALLS_PATH: Final = "/v1/realtime/calls"
MAX_OFFER_BYTES = 64 * 1024
MAX_INCOMING_MESSAGES = 1024
"""Data-channel messages waiting for the session; a caller that gets further ahead is
disconnected (SCTP cannot be slowed down from here)."""
MAX_BUFFERED_BYTES = 1024 * 1024
"""Outgoing data-channel bytes not yet sent; event writing waits beyond this."""
CONNECT_TIMEOUT_S = 30.0
"""A call whose peer connection is not up this long after the answer is dropped."""


def _release_audio_promptly(receiver: RTCRtpReceiver) -> None:
    """aiortc holds each received audio packet until four more have arrived (80 ms at
    20 ms a packet) although its jitter buffer stops at a missing packet either way;
    one is enough to know a frame is complete, so speech reaches the session 60 ms
    sooner. Left as it is if aiortc's internals differ."""
    attribute = "_RTCRtpReceiver__jitter_buffer"
    current = getattr(receiver, attribute, None)
    if isinstance(current, JitterBuffer) and getattr(current, "_prefetch", None) == 4:
        setattr(receiver, attribute, JitterBuffer(capacity=current.capacity, prefetch=1))


# -- errors ----------------------------------------------------------------------------------


class InvalidOffer(PeerError, code="invalid_offer"):
    """The posted SDP offer cannot be used."""


class UnsupportedContentType(UnsupportedMediaType, code="unsupported_content_type"):
    """An offer that is neither application/sdp nor multipart/form-data."""


# -- the data channel --------------------------------------------------------------------------


class DataChannelPeer:
    """The ``oai-events`` data channel as an :class:`~voxwire.transports.realtime.peer.EventPeer`.

    The channel opens some time after the answer (once ICE, DTLS and SCTP are up), so
    events sent before then wait; messages that arrive before the session reads them
    wait in a bounded queue.
    """

    def __init__(self, on_end: Callable[[str], None], *, expects_channel: bool, name: str) -> None:
        """`on_end(reason)` ends the call. `expects_channel`: whether the offer has a
        data channel at all (without one, events are dropped)."""
        self._on_end = on_end
        self.expects_channel = expects_channel
        self.name = name
        self.channel: RTCDataChannel | None = None
        self._incoming: deque[str | bytes] = deque()
        self._arrived = asyncio.Event()
        self._writable = asyncio.Event()
        self._finished = False
        self.received = 0
        self.sent = 0
        self.dropped = 0
        """Events that could not be sent (no data channel in the offer)."""

    def attach(self, channel: RTCDataChannel) -> None:
        """Use `channel` (the caller's ``oai-events``)."""
        self.channel = channel
        channel.bufferedAmountLowThreshold = MAX_BUFFERED_BYTES // 2
        channel.on("open", self._writable.set)
        channel.on("bufferedamountlow", self._writable.set)
        channel.on("message", self._on_message)
        channel.on("close", self._on_close)
        self._writable.set()

    def _on_message(self, message: str | bytes) -> None:
        if self._finished:
            return
        if len(self._incoming) >= MAX_INCOMING_MESSAGES:
            log.warning(
                "%s: %d data-channel messages unread; ending the call",
                self.name,
                MAX_INCOMING_MESSAGES,
            )
            self._on_end("the caller sent messages faster than the session could read them")
            return
        self.received += 1
        self._incoming.append(message)
        self._arrived.set()

    def _on_close(self) -> None:
        self._writable.set()
        self._on_end("the caller closed the data channel")

    def finish(self) -> None:
        """The call is over: `receive` returns None once the queue is read, and `send`
        raises."""
        self._finished = True
        self._incoming.clear()
        self._arrived.set()
        self._writable.set()

    async def receive(self) -> str | bytes | None:
        while True:
            if self._incoming:
                return self._incoming.popleft()
            if self._finished:
                return None
            self._arrived.clear()
            await self._arrived.wait()

    async def send(self, text: str) -> None:
        while True:
            if self._finished:
                raise ConnectionError("the call has ended")
            if not self.expects_channel:
                self.dropped += 1
                return
            channel = self.channel
            if channel is not None and channel.readyState == "open":
                if channel.bufferedAmount <= MAX_BUFFERED_BYTES:
                    channel.send(text)
                    self.sent += 1
                    return
            elif channel is not None and channel.readyState == "closed":
                raise ConnectionError("the data channel is closed")
            self._writable.clear()
            await self._writable.wait()

    async def close(self, code: int, reason: str) -> None:
        """The session closes the channel (a limit or an internal error): end the call."""
        log.info("%s: closing the call (%d): %s", self.name, code, reason)
        self._on_end(f"closed by the server: {reason}")

    def abort(self) -> None:
        """The session gave up on the caller (a send that never completed): end the call."""
        self._on_end("aborted by the server: the caller stopped reading")


# -- one call ------------------------------------------------------------------------------------


class Call:
    """One WebRTC peer connection and the Realtime session it carries."""

    def __init__(
        self,
        call_id: str,
        session_id: str,
        ice_servers: Sequence[IceServer],
        *,
        media_timeout_s: float,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.call_id = call_id
        self.session_id = session_id
        self.media_timeout_s = media_timeout_s
        self.connect_timeout_s = connect_timeout_s
        # An explicit (possibly empty) list: aiortc's default would ask Google's STUN.
        configuration = RTCConfiguration(iceServers=[server.to_rtc() for server in ice_servers])
        self.pc = RTCPeerConnection(configuration)
        self.counters = CallCounters()
        self.reply = ReplyTrack(self.counters)
        self.peer = DataChannelPeer(self.end, expects_channel=False, name=session_id)
        self.connection: RealtimeConnection | None = None
        self.mic_track: MediaStreamTrack | None = None
        self.mic: MicrophoneReader | None = None
        self.end_reason: str | None = None
        self.opened_at = time.monotonic()
        self._ending = asyncio.Event()
        self._connected = asyncio.Event()
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("datachannel", self._on_channel)
        self.pc.on("track", self._on_track)

    @property
    def sends_audio(self) -> bool:
        """Whether the answer sends the caller audio (replies go on the reply track)."""
        return any(
            t.kind == "audio" and t.currentDirection in ("sendrecv", "sendonly")
            for t in self.pc.getTransceivers()
        )

    def end(self, reason: str) -> None:
        """Ask the call to end (idempotent; the first reason is kept)."""
        if self.end_reason is None:
            self.end_reason = reason
            log.info("%s: call %s ending: %s", self.session_id, self.call_id, reason)
        self._ending.set()

    # -- negotiation -----------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """Apply the caller's offer; the SDP answer (with every host candidate)."""
        if "\nm=" not in "\n" + offer_sdp.replace("\r\n", "\n"):
            raise InvalidOffer("the offer has no media section", param="sdp")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except (ValueError, KeyError, IndexError, AttributeError) as exc:
            raise InvalidOffer(f"the offer is not usable SDP ({exc})", param="sdp") from None
        except Exception as exc:  # aiortc's InvalidStateError, OperationError
            raise InvalidOffer(f"the offer cannot be answered: {exc}", param="sdp") from None
        kinds = [t.kind for t in self.pc.getTransceivers()]
        self.peer.expects_channel = self.pc.sctp is not None
        if "audio" not in kinds and not self.peer.expects_channel:
            raise InvalidOffer("the offer has neither audio nor a data channel", param="sdp")
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind != "audio":
                transceiver.direction = "inactive"  # no video: nobody would read it
        if "audio" in kinds:
            self.pc.addTrack(self.reply)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return str(self.pc.localDescription.sdp)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        log.debug("%s: peer connection %s", self.session_id, state)
        if state == "connected":
            self._connected.set()
        elif state == "failed":
            self.end("the peer connection failed (ICE or DTLS)")
        elif state == "closed":
            self.end("the peer connection closed")

    def _on_channel(self, channel: RTCDataChannel) -> None:
        if channel.label == EVENTS_CHANNEL and self.peer.channel is None:
            self.peer.attach(channel)
            log.info("%s: data channel %r open", self.session_id, channel.label)
        else:
            log.info("%s: ignoring data channel %r", self.session_id, channel.label)
            channel.close()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self.mic_track is None:
            self.mic_track = track
            for transceiver in self.pc.getTransceivers():
                if transceiver.receiver.track is track:
                    _release_audio_promptly(transceiver.receiver)
        else:
            track.stop()

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, slots: SessionSlots, on_done: Callable[[Call], None]) -> None:
        """Serve the session until the call ends, then release everything."""
        connection = self.connection
        assert connection is not None
        loop = asyncio.get_running_loop()
        serving = loop.create_task(connection.serve(), name=f"{self.session_id}:webrtc-session")
        watchdog = loop.create_task(self._watch(), name=f"{self.session_id}:webrtc-watch")
        try:
            if self.mic_track is not None:
                self.mic = MicrophoneReader(
                    self.mic_track,
                    connection.feed_audio,
                    lambda: connection.config.input_rate,
                    self.counters,
                    self.end,
                    name=f"{self.session_id}:webrtc-mic",
                    media_timeout_s=self.media_timeout_s,
                    first_frame_timeout_s=self.connect_timeout_s,
                )
            ending = loop.create_task(self._ending.wait(), name=f"{self.session_id}:webrtc-end")
            done, _ = await asyncio.wait({serving, ending}, return_when=asyncio.FIRST_COMPLETED)
            if serving in done:
                self.end("the session closed")
            ending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ending
            # Audio stops before the session closes, so nothing feeds a closed session.
            if self.mic is not None:
                await self.mic.close()
            self.peer.finish()
            await serving
        finally:
            if not serving.done():  # cancelled (the server stops): let the session close
                self.peer.finish()
                with contextlib.suppress(Exception):
                    await asyncio.shield(serving)
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            if self.mic is not None:
                await self.mic.close()
            await self.close_media()
            slots.retire(self.session_id)
            slots.release()
            on_done(self)
            c = self.counters
            log.info(
                "%s: call %s ended after %.1f s (%s): %d microphone frames (%d dropped), "
                "%d data-channel messages in, %d events out, reply %.1f s sent / %.1f s "
                "discarded",
                self.session_id,
                self.call_id,
                time.monotonic() - self.opened_at,
                self.end_reason,
                c.mic_frames,
                c.mic_frames_dropped,
                self.peer.received,
                self.peer.sent,
                c.reply_samples_sent / WEBRTC_RATE,
                c.reply_samples_discarded / WEBRTC_RATE,
            )

    async def close_media(self) -> None:
        """Stop the tracks and close the peer connection (idempotent)."""
        self.reply.stop()
        if self.mic_track is not None:
            self.mic_track.stop()
        self.peer.finish()
        await self.pc.close()

    async def _watch(self) -> None:
        try:
            await asyncio.wait_for(self._connected.wait(), self.connect_timeout_s)
        except TimeoutError:
            self.end(f"the caller did not connect within {self.connect_timeout_s:g} s")


# -- the HTTP side ---------------------------------------------------------------------------------


class CallRegistry:
    """The calls in progress, so a hangup finds them and shutdown ends them."""

    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, call: Call, slots: SessionSlots) -> None:
        self.calls[call.call_id] = call
        task = asyncio.get_running_loop().create_task(
            call.run(slots, self._done), name=f"{call.session_id}:webrtc-call"
        )
        task.add_done_callback(_log_failure)
        self.tasks[call.call_id] = task

    def _done(self, call: Call) -> None:
        self.calls.pop(call.call_id, None)
        self.tasks.pop(call.call_id, None)

    async def close_all(self) -> None:
        """End every call and wait until each has released its session."""
        tasks = list(self.tasks.values())
        for call in list(self.calls.values()):
            call.end("the server is stopping")
        if tasks:
            log.info("ending %d WebRTC call(s)", len(tasks))
            await asyncio.gather(*tasks, return_exceptions=True)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", task.get_name(), exc_info=task.exception())


async def _read_offer(request: Request) -> tuple[str, dict[str, Any] | None]:
    """The SDP offer and the posted session options (None when there are none)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/sdp":
        body = await request.body()
        return _offer_text(body), None
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        async with request.form(max_part_size=MAX_OFFER_BYTES) as form:
            sdp = await _form_text(form.get("sdp"))
            session = await _form_text(form.get("session"))
        if sdp is None:
            raise InvalidOffer("the form has no 'sdp' field", param="sdp")
        return _offer_text(sdp.encode()), _session_json(session)
    raise UnsupportedContentType(
        f"send the SDP offer as application/sdp or as multipart/form-data with the fields "
        f"'sdp' and 'session', not {content_type or 'no content type'}"
    )


async def _form_text(value: str | UploadFile | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    data = await value.read(MAX_OFFER_BYTES + 1)
    if len(data) > MAX_OFFER_BYTES:
        raise InvalidOffer(f"a form field is larger than {MAX_OFFER_BYTES} bytes")
    return data.decode("utf-8", "replace")


def _offer_text(body: bytes) -> str:
    if len(body) > MAX_OFFER_BYTES:
        raise InvalidOffer(f"the offer is larger than {MAX_OFFER_BYTES} bytes", param="sdp")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidOffer("the offer is not UTF-8 text", param="sdp") from None
    if not text.strip():
        raise InvalidOffer("the offer is empty", param="sdp")
    return text


def _session_json(text: str | None) -> dict[str, Any] | None:
    if text is None or not text.strip():
        return None
    try:
        session = loads_bounded(text)
    except JsonTooDeep as exc:
        raise ProtocolError(exc.message, code=exc.code, param="session") from None
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            f"session is not valid JSON: {exc.msg}", code="invalid_json", param="session"
        ) from None
    if not isinstance(session, dict):
        raise ProtocolError("session must be a JSON object", code="invalid_value", param="session")
    return session


def call_config(
    runtime: Runtime, query: dict[str, str], session: dict[str, Any] | None
) -> SessionConfig:
    """The session configuration of a new call: a realtime session unless the options
    (or ``?intent=transcription``) say transcription; input at the track's 48 kHz."""
    try:
        settings = SessionSettings.model_validate(session or {})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        param = ".".join(str(p) for p in ("session", *first["loc"]))
        raise ProtocolError(f"{param}: {first['msg']}", code="invalid_value", param=param) from None
    kind = settings.type or (
        "transcription" if query.get("intent") == "transcription" else "realtime"
    )
    model = (session or {}).get("model")
    initial = SessionConfig(
        type=kind,
        session_id=f"sess_{secrets.token_hex(10)}",
        model=runtime.asr_name,
        realtime_model=None
        if kind == "transcription"
        else str(model or query.get("model") or "voxwire"),
        input_rate=WEBRTC_RATE,
    )
    catalogue = ModelCatalogue(
        asr_name=runtime.asr.name, multilingual=bool(getattr(runtime.asr, "multilingual", True))
    )
    return apply_update(initial, settings, catalogue)


def _at_limit(slots: SessionSlots) -> JSONResponse:
    log.warning("refused a WebRTC call: %d sessions are open", slots.limit)
    return JSONResponse(
        {
            "error": {
                "message": f"server is at its limit of {slots.limit} sessions; try again later",
                "type": "server_error",
                "param": None,
                "code": "too_many_sessions",
            }
        },
        status_code=503,
        headers={"Retry-After": "1"},
    )


def router(
    runtime: Runtime,
    *,
    limits: RealtimeLimits,
    slots: SessionSlots,
    registry: CallRegistry,
    reply_handler: ReplyHandler,
    speakers: SpeakerStore | None,
    ice_servers: tuple[IceServer, ...] = (),
    media_timeout_s: float = 10.0,
) -> APIRouter:
    """`POST /v1/realtime/calls` and `POST /v1/realtime/calls/{call_id}/hangup`, sharing
    the WebSocket path's session `slots` and `limits`; the calls in progress are kept in
    `registry`. Installs the loopback ICE candidates
    (:func:`~voxwire.transports.webrtc.ice.include_loopback`) once, here at server start."""
    include_loopback()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await registry.close_all()

    api = APIRouter(lifespan=lifespan)

    @api.post(
        CALLS_PATH,
        status_code=201,
        response_class=Response,
        summary="Start a Realtime session over WebRTC: post an SDP offer, get the answer",
        responses={
            201: {"content": {"application/sdp": {}}, "description": "the SDP answer"},
            400: {"description": "an unusable offer or session"},
            415: {"description": "neither application/sdp nor multipart/form-data"},
            503: {"description": "the server is at its session limit"},
        },
    )
    async def create_call(request: Request) -> Response:
        offer, session = await _read_offer(request)
        await runtime.wait_streaming()  # bounded; then 503 with Retry-After
        config = call_config(runtime, dict(request.query_params), session)
        if not slots.try_reserve():
            return _at_limit(slots)
        call_id = f"rtc_{secrets.token_hex(12)}"
        call = Call(
            call_id,
            config.session_id,
            ice_servers,
            media_timeout_s=media_timeout_s,
        )
        connection: RealtimeConnection | None = None
        try:
            answer = await call.answer(offer)
            connection = RealtimeConnection(
                call.peer,
                runtime,
                config,
                limits,
                speakers=speakers,
                audio_sink=call.reply if call.sends_audio else None,
                reply_handler=reply_handler,
            )
            call.connection = connection
            if config.classification != ClassificationConfig():
                entries = await connection.live.prepare(config.classification)
                await connection.live.apply(config.classification, entries)
        except BaseException:
            if connection is not None:
                await connection.live.close()
                await connection.driver.close()
            await call.close_media()
            slots.release()
            raise
        slots.register(connection)
        registry.start(call, slots)
        log.info(
            "%s: WebRTC call %s answered (%s session, microphone %s, reply track %s, "
            "data channel %s)",
            config.session_id,
            call_id,
            config.type,
            "yes" if call.mic_track is not None else "no",
            "yes" if call.sends_audio else "no",
            "yes" if call.peer.expects_channel else "no",
        )
        return Response(
            answer,
            status_code=201,
            media_type="application/sdp",
            headers={"Location": f"{CALLS_PATH}/{call_id}"},
        )

    @api.post(
        CALLS_PATH + "/{call_id}/hangup",
        summary="End a WebRTC call",
        responses={404: {"description": "no such call"}},
    )
    async def hangup(call_id: str) -> Response:
        call = registry.calls.get(call_id)
        task = registry.tasks.get(call_id)
        if call is None or task is None:
            return JSONResponse(
                {
                    "error": {
                        "message": f"no call {call_id!r} is in progress",
                        "type": "invalid_request_error",
                        "param": "call_id",
                        "code": "call_not_found",
                    }
                },
                status_code=404,
            )
        call.end("hung up by request")
        await asyncio.shield(task)
        return Response(status_code=200)

    return api
