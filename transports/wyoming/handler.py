"""One Wyoming connection: reads events within limits, runs the programs (describe,
transcribe, synthesize, detect) and answers with the `wyoming` package's events.

Errors: a peer mistake inside a well-framed event (bad audio format, unknown voice,
audio before audio-start) gets an `error` event `{text, code}`, ends the request in
progress and leaves the connection open; a broken frame (malformed header or data, a
length over the limits) gets an `error` event and the connection is closed, since the
stream cannot be resynchronised. A client that sends nothing for `idle_timeout_s` or does
not read for `write_timeout_s` is dropped. Every error is counted by code in /metrics;
local failures tell the peer only that the server failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from wyoming.asr import Transcribe
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.server import AsyncEventHandler
from wyoming.wake import Detect

from voxwire.engine.errors import Overloaded, PeerError, VoxwireError, describe
from voxwire.transports.wyoming.asr import TranscriptionStream
from voxwire.transports.wyoming.framing import MalformedEvent, read_event
from voxwire.transports.wyoming.info import build_info
from voxwire.transports.wyoming.service import WyomingService
from voxwire.transports.wyoming.tts import StreamedSynthesis, synthesize
from voxwire.transports.wyoming.wake import DetectionStream

log = logging.getLogger(__name__)

_ids = itertools.count(1)

KNOWN = frozenset(
    {
        "describe",
        "transcribe",
        "detect",
        "audio-start",
        "audio-chunk",
        "audio-stop",
        "synthesize",
        "synthesize-start",
        "synthesize-chunk",
        "synthesize-stop",
        "ping",
    }
)


class UnexpectedEvent(PeerError, code="unexpected_event"):
    """An event that makes no sense where it came (audio-chunk before audio-start)."""


class WyomingConnection(AsyncEventHandler):
    """The event handler of one client."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        service: WyomingService,
    ) -> None:
        super().__init__(reader, writer)
        self.service = service
        self.name = f"wyoming_{next(_ids):06d}"
        self._request: Event | None = None
        """The last transcribe or detect: what the next audio-start is for."""
        self._stream: TranscriptionStream | DetectionStream | None = None
        self._slot = False
        self._streams = 0
        self._in_audio = False
        """Between an audio-start and its audio-stop."""
        self._dropping = False
        """A stream failed: its remaining audio events are dropped without answer."""
        self._synthesis: StreamedSynthesis | None = None

    # -- the connection ------------------------------------------------------------------

    async def run(self) -> None:
        """Read events within the limits until the peer leaves, errs or idles."""
        stats = self.service.stats
        limits = self.service.limits
        if stats.connections_active >= limits.max_connections:
            stats.connections_refused += 1
            log.warning("%s: refused, %d connections open", self.name, limits.max_connections)
            with contextlib.suppress(Exception):
                await self._error(Overloaded("too many Wyoming connections; try again later"))
            self.writer.close()
            return
        stats.connections_opened += 1
        stats.connections_active += 1
        peer = self.writer.get_extra_info("peername")
        log.info("%s: connected (%s)", self.name, peer or "local")
        self._is_running = True
        try:
            while self._is_running:
                try:
                    async with asyncio.timeout(limits.idle_timeout_s):
                        event = await read_event(self.reader, limits)
                except TimeoutError:
                    stats.errors["idle_timeout"] += 1
                    log.info("%s: idle for %.0f s, closing", self.name, limits.idle_timeout_s)
                    break
                except PeerError as exc:  # broken framing: say why, then close
                    await self._error(exc)
                    break
                if event is None or not await self.handle_event(event):
                    break
        except (ConnectionError, TimeoutError) as exc:
            log.info("%s: connection lost: %r", self.name, exc)
        finally:
            stats.connections_active -= 1
            await self.disconnect()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
            log.info("%s: closed", self.name)

    async def write_event(self, event: Event) -> None:
        """Send an event; a client that does not read it in time is dropped."""
        async with asyncio.timeout(self.service.limits.write_timeout_s):
            await async_write_event(event, self.writer)

    async def disconnect(self) -> None:
        """Free what the connection holds: its decodes, its session slot."""
        await self._end_stream()
        self._synthesis = None

    # -- events --------------------------------------------------------------------------

    async def handle_event(self, event: Event) -> bool:
        stats = self.service.stats
        stats.events_received[event.type if event.type in KNOWN else "unknown"] += 1
        try:
            await self._dispatch(event)
        except (ConnectionError, TimeoutError):
            raise
        except (KeyError, TypeError) as exc:  # a field missing or of the wrong type
            await self._fail(MalformedEvent(f"{event.type}: missing or invalid field {exc}"))
        except Exception as exc:
            await self._fail(exc)
        return True

    async def _fail(self, error: BaseException) -> None:
        """End the request in progress and say why; the rest of a failed audio stream
        is then dropped quietly up to its audio-stop."""
        self._dropping = self._dropping or self._stream is not None or self._in_audio
        await self._end_stream()
        self._synthesis = None
        await self._error(error)

    async def _dispatch(self, event: Event) -> None:
        kind = event.type
        if kind == "describe":
            await self.service.runtime.wait_streaming()  # bounded: then a model_loading error
            await self.write_event(build_info(self.service).event())
        elif kind in ("transcribe", "detect"):
            await self._end_stream()
            self._request = event
        elif kind == "audio-start":
            self._dropping = False
            self._in_audio = True
            await self._start_stream(event)
        elif kind in ("audio-chunk", "audio-stop") and self._dropping and self._stream is None:
            if kind == "audio-stop":
                self._dropping = self._in_audio = False
            self.service.stats.events_dropped += 1
        elif kind == "audio-chunk":
            await self._require_stream(kind).chunk(event)
        elif kind == "audio-stop":
            self._in_audio = False
            stream = self._require_stream(kind)
            try:
                await stream.stop()
            finally:
                await self._end_stream()
        elif kind == "synthesize":
            if self._synthesis is None:  # during a stream it repeats the text: ignored
                await synthesize(self.service, event, self.write_event)
        elif kind == "synthesize-start":
            from wyoming.tts import SynthesizeStart

            start = SynthesizeStart.from_event(event)
            self._synthesis = StreamedSynthesis(self.service, start.voice, self.write_event)
        elif kind == "synthesize-chunk":
            if self._synthesis is None:
                raise UnexpectedEvent("synthesize-chunk before synthesize-start")
            await self._synthesis.chunk(event)
        elif kind == "synthesize-stop":
            if self._synthesis is None:
                raise UnexpectedEvent("synthesize-stop before synthesize-start")
            synthesis, self._synthesis = self._synthesis, None
            await synthesis.stop()
        elif kind == "ping":
            from wyoming.ping import Pong

            await self.write_event(Pong(text=event.data.get("text")).event())
        else:
            log.debug("%s: ignored event %r", self.name, kind)

    async def _start_stream(self, event: Event) -> None:
        await self._end_stream()
        request, self._request = self._request, None
        if request is not None and request.type == "detect":
            self._stream = DetectionStream(
                self.service, Detect.from_event(request), event, self.write_event
            )
            return
        # While the recogniser loads: wait (bounded), then a model_loading error.
        await self.service.runtime.wait_streaming()
        if not self.service.slots.try_reserve():
            raise Overloaded("too many audio sessions at once; try again later")
        self._slot = True
        transcribe = Transcribe.from_event(request) if request is not None else Transcribe()
        self._streams += 1
        self._stream = TranscriptionStream(
            self.service, transcribe, event, self.write_event, name=f"{self.name}_{self._streams}"
        )

    def _require_stream(self, kind: str) -> TranscriptionStream | DetectionStream:
        if self._stream is None:
            raise UnexpectedEvent(f"{kind} without audio-start")
        return self._stream

    async def _end_stream(self) -> None:
        stream, self._stream = self._stream, None
        try:
            if isinstance(stream, TranscriptionStream):
                await stream.close()
        finally:
            if self._slot:
                self._slot = False
                self.service.slots.release()

    async def _error(self, error: BaseException) -> None:
        desc = describe(error)
        self.service.stats.errors[desc.code] += 1
        if isinstance(error, VoxwireError) and desc.is_peer_error:
            log.info("%s: %s: %s", self.name, desc.code, desc.message)
        else:
            log.warning("%s: request failed", self.name, exc_info=error)
        await self.write_event(Error(text=desc.message, code=desc.code).event())
