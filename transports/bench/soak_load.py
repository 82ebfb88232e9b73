"""The clients of `voxwire bench soak`: a realistic mixed load, run until a deadline.

* transcription streams: Realtime sessions (classifiers on) that speak the file at
  real-time pace and wait for every utterance's transcript; even-numbered ones hang up
  after each pass and reconnect, odd-numbered ones keep one session for the whole run;
* reply streams: long-lived Realtime sessions with spoken replies; the file's next
  sentence starts while the reply to the last one still plays, so replies are barged
  in on;
* HTTP: transcriptions, speech, Hugging Face classification (text and audio), in turn;
* abusive clients, in turn: one that vanishes mid-utterance, one that stops reading,
  one that sends malformed events, an oversized upload, an oversized frame and a
  decompression bomb; each must be refused the documented way.

Every client reports to a :class:`Ledger`: what it did (operations) and anything that
went wrong (errors): a 5xx or other unexpected status, a socket closed unexpectedly
(1011 above all), an `error` event on a well-formed session, a failed transcription,
a reply that failed, a refusal other than the documented one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import struct
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from voxwire.engine.audio import MODEL_RATE
from voxwire.transports.bench.stream import to_pcm16, transcription_update

CHUNK_S = 0.02
OPEN_TIMEOUT_S = 15.0
SETTLE_TIMEOUT_S = 30.0
"""How long the last transcripts and replies may take after the speech, beyond the
speech's own length (an echoed reply is spoken at real-time pace)."""
GAP_S = 1.5
"""Silence after each pass of the speech."""
HTTP_TIMEOUT_S = 120.0
MAX_ERRORS_KEPT = 50
COMPLETED = "conversation.item.input_audio_transcription.completed"
FAILED = "conversation.item.input_audio_transcription.failed"
STARTED = "input_audio_buffer.speech_started"
CLASSIFIERS = ["wake_word", "sentiment", "intent"]
SPEECH_TEXT = "The soak test keeps talking. Nothing may leak, nothing may be lost."
INTENT_TEXT = "what's the weather like tomorrow"
MiB = 1024 * 1024
WAIT_FOR_MODEL = {"x-wait-for-model": "true"}
"""Hugging Face clients' way to wait for a model still loading (instead of a 503)."""
OVERSIZED_UPLOAD_MB = 26
"""Above the default 25 MiB upload limit: answered 413."""
UPLOAD_HEADERS_ONLY_S = 3.0
"""How long the oversized upload waits for the 413 before it sends its body."""
OVERSIZED_FRAME_MB = 9
"""Above the default 8 MiB WebSocket message limit: closed with 1009."""


@dataclass
class Ledger:
    """What the clients did and what went wrong, with when (seconds since the start)."""

    started: float = field(default_factory=time.monotonic)
    operations: Counter[str] = field(default_factory=Counter)
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    """The first MAX_ERRORS_KEPT errors."""

    def count(self, what: str, n: int = 1) -> None:
        self.operations[what] += n

    def error(self, client: str, what: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            t = round(time.monotonic() - self.started, 1)
            self.errors.append({"t": t, "client": client, "error": what[:600]})


@dataclass(frozen=True)
class LoadMix:
    """How many clients of each kind talk to the server, and how often the periodic ones
    come (0: never)."""

    transcription_streams: int = 2
    reply_streams: int = 1
    classifiers: bool = True
    """Live classifiers on the streams."""
    http_every_s: float = 15.0
    abuse_every_s: float = 20.0


@dataclass(frozen=True)
class LoadPlan:
    """Who talks to the server, and how often."""

    ws_url: str
    """ws://host:port/v1/realtime"""
    http_url: str
    """http://host:port"""
    speech: bytes
    """PCM16 LE mono at 16 kHz, spoken at real-time pace by every stream."""
    clip_wav: bytes
    """A few seconds of the speech as WAV, for HTTP transcriptions and classification."""
    mix: LoadMix = field(default_factory=LoadMix)
    stagger_s: float = 7.0


class Load:
    """Runs a :class:`LoadPlan` until `stop_at` (monotonic seconds)."""

    def __init__(self, plan: LoadPlan, ledger: Ledger, stop_at: float) -> None:
        self.plan = plan
        self.ledger = ledger
        self.stop_at = stop_at
        self._http: httpx2.AsyncClient | None = None

    def stopping(self) -> bool:
        return time.monotonic() >= self.stop_at

    async def run(self) -> None:
        """Every client at once, until the deadline; then wait for them to finish."""
        async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT_S, trust_env=False) as http:
            self._http = http
            plan = self.plan
            clients: list[Awaitable[None]] = []
            delays = (i * plan.stagger_s for i in itertools.count())
            for i in range(plan.mix.transcription_streams):
                clients.append(self._later(next(delays), self._transcription_stream(i)))
            for i in range(plan.mix.reply_streams):
                clients.append(self._later(next(delays), self._reply_stream(i)))
            if plan.mix.http_every_s > 0:
                clients.append(self._every(plan.mix.http_every_s, self._http_round()))
            if plan.mix.abuse_every_s > 0:
                clients.append(self._every(plan.mix.abuse_every_s, self._abuse_round()))
            await asyncio.gather(*clients)

    async def _later(self, delay: float, client: Awaitable[None]) -> None:
        await asyncio.sleep(min(delay, max(0.0, self.stop_at - time.monotonic())))
        await client

    async def _every(self, period: float, steps: Any) -> None:
        """Call the next of `steps` (an endless iterator of coroutine functions) each
        `period` seconds; the first one at once."""
        next_at = time.monotonic()
        while not self.stopping():
            step: Callable[[], Awaitable[None]] = next(steps)
            await step()
            next_at += period
            await asyncio.sleep(max(0.0, min(next_at, self.stop_at) - time.monotonic()))

    # -- Realtime streams -----------------------------------------------------------------

    async def _transcription_stream(self, index: int) -> None:
        name = f"transcription-{index}"
        update = transcription_update(MODEL_RATE)
        if self.plan.mix.classifiers:
            update["session"]["voxwire.classifiers"] = CLASSIFIERS
        url = f"{self.plan.ws_url}?intent=transcription"
        while not self.stopping():
            await self._session(name, url, update, long_lived=index % 2 == 1)

    async def _reply_stream(self, index: int) -> None:
        update = {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": MODEL_RATE}}},
            },
        }
        while not self.stopping():
            url = f"{self.plan.ws_url}?model=voxwire"
            await self._session(f"replies-{index}", url, update, long_lived=True)

    async def _session(
        self, name: str, url: str, update: dict[str, Any], *, long_lived: bool
    ) -> None:
        """One session: speak the file at real-time pace, wait for every transcript (and
        reply), and hang up normally, or (`long_lived`) speak it again and again until
        the deadline. Anything unexpected is an error."""
        ledger = self.ledger
        try:
            async with connect(url, max_size=None, open_timeout=OPEN_TIMEOUT_S) as ws:
                ledger.count(f"{name.split('-')[0]}.sessions")
                reader = _SessionReader(name, ledger)
                await ws.send(json.dumps(update))
                task = asyncio.create_task(reader.run(ws))
                try:
                    while True:
                        await _send_paced(ws, self.plan.speech, self.stop_at + 5.0)
                        # A pause long enough to end the turn (and start its reply); a
                        # long-lived session then speaks on, over the reply (barge-in).
                        await _send_paced(ws, _silence(GAP_S), self.stop_at + 10.0)
                        if not long_lived or self.stopping():
                            break
                    within = SETTLE_TIMEOUT_S + len(self.plan.speech) / (2 * MODEL_RATE)
                    if not await _settle(ws, reader, within):
                        ledger.error(name, f"not settled in {within:.0f} s: {reader}")
                finally:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        except ConnectionClosed as exc:
            ledger.error(name, f"closed unexpectedly: {exc}")
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            ledger.error(name, f"cannot connect or send: {exc!r}")
            await asyncio.sleep(1.0)

    # -- HTTP -------------------------------------------------------------------------------

    def _http_round(self) -> Any:
        return itertools.cycle(
            [
                self._transcribe,
                self._classify_text,
                self._speak,
                self._classify_audio,
                self._classify_intent,
            ]
        )

    async def _post(self, name: str, path: str, expect: int = 200, **kwargs: Any) -> None:
        """POST and check the status; the response must be `expect`."""
        assert self._http is not None
        self.ledger.count(name)
        try:
            response = await self._http.post(self.plan.http_url + path, **kwargs)
        except httpx2.HTTPError as exc:
            self.ledger.error(name, f"POST {path}: {exc!r}")
            return
        if response.status_code != expect:
            self.ledger.error(name, f"POST {path}: {response.status_code} {response.text[:200]}")

    async def _transcribe(self) -> None:
        await self._post(
            "http.transcriptions",
            "/v1/audio/transcriptions",
            data={"model": "whisper-1"},
            files={"file": ("clip.wav", self.plan.clip_wav, "audio/wav")},
        )

    async def _speak(self) -> None:
        body = {"model": "tts-1", "voice": "alloy", "input": SPEECH_TEXT, "response_format": "mp3"}
        await self._post("http.speech", "/v1/audio/speech", json=body)

    async def _classify_text(self) -> None:
        body = {"inputs": SPEECH_TEXT}
        await self._post("http.classify", "/models/vader", json=body, headers=WAIT_FOR_MODEL)

    async def _classify_intent(self) -> None:
        body = {"inputs": INTENT_TEXT}
        await self._post("http.classify", "/models/intent", json=body, headers=WAIT_FOR_MODEL)

    async def _classify_audio(self) -> None:
        headers = {"Content-Type": "audio/wav", **WAIT_FOR_MODEL}
        await self._post(
            "http.classify", "/models/silero-speech", content=self.plan.clip_wav, headers=headers
        )

    # -- abusive clients ----------------------------------------------------------------------

    def _abuse_round(self) -> Any:
        return itertools.cycle(
            [
                self._vanish,
                self._malformed,
                self._stall,
                self._oversized_upload,
                self._bomb,
                self._oversized_frame,
            ]
        )

    async def _abuse(self, name: str, body: Callable[[ClientConnection], Awaitable[None]]) -> None:
        """Open a transcription session and misbehave in it; a failure to connect, or a
        close other than the one `body` expects, is an error."""
        self.ledger.count(name)
        url = f"{self.plan.ws_url}?intent=transcription"
        try:
            async with connect(url, max_size=None, open_timeout=OPEN_TIMEOUT_S) as ws:
                await body(ws)
        except ConnectionClosed as exc:
            self.ledger.error(name, f"closed unexpectedly: {exc}")
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.ledger.error(name, f"cannot connect or send: {exc!r}")

    async def _vanish(self) -> None:
        """Speak half a sentence, then drop the TCP connection without a close frame."""

        async def body(ws: ClientConnection) -> None:
            await ws.send(json.dumps(transcription_update(MODEL_RATE)))
            await _send_paced(ws, self.plan.speech[: 2 * MODEL_RATE * 3], self.stop_at + 5.0)
            ws.transport.abort()

        await self._abuse("abuse.vanish", body)

    async def _stall(self) -> None:
        """Ask for many events (each a malformed one answered by an `error`) and read
        none for 10 s; the server may end the session (1008, or abort it), never fail."""

        async def body(ws: ClientConnection) -> None:
            ws.transport.pause_reading()
            try:
                async with asyncio.timeout(10.0):
                    for _ in range(3000):
                        await ws.send('{"type": "voxwire.no_such_event"}')
                    await asyncio.sleep(10.0)
            except TimeoutError:
                pass  # the server stopped reading us: as intended
            ws.transport.abort()

        await self._abuse("abuse.stall", body)

    async def _malformed(self) -> None:
        """Malformed events, each answered by an `error` event; the session still works."""
        bad = [
            "not json {",
            '{"type": "input_audio_buffer.append", "audio": "***not base64***"}',
            '{"type": "voxwire.no_such_event"}',
            '{"type": "session.update", "session": ' + "[" * 5000 + "]" * 5000 + "}",
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "transcription",
                        "audio": {"input": {"turn_detection": {"silence_duration_ms": 1e9}}},
                    },
                }
            ),
        ]

        async def body(ws: ClientConnection) -> None:
            for message in bad:
                await ws.send(message)
            await ws.send(json.dumps(transcription_update(MODEL_RATE)))
            errors = 0
            async with asyncio.timeout(20.0):
                async for raw in ws:
                    kind = json.loads(raw).get("type")
                    errors += kind == "error"
                    if kind == "session.updated":
                        break
            if errors != len(bad):
                self.ledger.error("abuse.malformed", f"{errors} error events for {len(bad)}")

        await self._abuse("abuse.malformed", body)

    async def _oversized_frame(self) -> None:
        """A binary frame over the message limit: the server closes with 1009."""
        name = "abuse.oversized_frame"
        self.ledger.count(name)
        try:
            async with connect(
                f"{self.plan.ws_url}?intent=transcription",
                max_size=None,
                open_timeout=OPEN_TIMEOUT_S,
            ) as ws:
                await ws.send(bytes(OVERSIZED_FRAME_MB * MiB))
                async with asyncio.timeout(20.0):
                    async for _ in ws:
                        pass
            self.ledger.error(name, "the session was not closed")
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code != 1009:
                self.ledger.error(name, f"closed with {exc}, not 1009")
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.ledger.error(name, f"{exc!r}")

    async def _oversized_upload(self) -> None:
        """A 26 MiB upload: 413, answered before the body is read (the client may still
        be sending it, so this one speaks HTTP/1.1 on a socket of its own)."""
        name = "abuse.oversized_upload"
        self.ledger.count(name)
        parts = urlsplit(self.plan.http_url)
        size = OVERSIZED_UPLOAD_MB * MiB
        head = (
            f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: multipart/form-data; boundary=soak\r\n"
            f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
            '--soak\r\nContent-Disposition: form-data; name="file"; filename="huge.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()

        async def send_body(writer: asyncio.StreamWriter) -> None:
            writer.write(head)
            await asyncio.sleep(UPLOAD_HEADERS_ONLY_S)  # the answer comes before the body
            for _ in range(OVERSIZED_UPLOAD_MB):
                writer.write(bytes(MiB))
                await writer.drain()

        try:
            async with asyncio.timeout(30.0):
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                sender = asyncio.create_task(send_body(writer))
                try:
                    status_line = await reader.readline()
                finally:
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError, OSError):
                        await sender
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except (OSError, TimeoutError) as exc:
            self.ledger.error(name, f"no answer: {exc!r}")
            return
        if status_line.split()[1:2] != [b"413"]:
            self.ledger.error(name, f"answered {status_line[:100]!r}, not 413")

    async def _bomb(self) -> None:
        """27 KiB of WAV that decodes to hours of audio: 413, within seconds."""
        await self._post(
            "abuse.bomb",
            "/v1/audio/transcriptions",
            expect=413,
            data={"model": "whisper-1"},
            files={"file": ("bomb.wav", bomb_wav(), "audio/wav")},
        )


class _SessionReader:
    """Reads a well-behaved session's events: counts utterances and replies, and
    reports errors, failed transcriptions and failed replies."""

    def __init__(self, name: str, ledger: Ledger) -> None:
        self.name = name
        self.ledger = ledger
        self.open_items: set[str] = set()
        self.open_replies: set[str] = set()
        self.last_events: deque[str] = deque(maxlen=8)

    def __repr__(self) -> str:
        return (
            f"{len(self.open_items)} items, {len(self.open_replies)} replies open; "
            f"last events {list(self.last_events)}"
        )

    async def run(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                if isinstance(raw, str):
                    self._handle(json.loads(raw))

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind != "response.output_audio.delta":
            self.last_events.append(kind)
        kinds = self.name.split("-")[0]
        ledger = self.ledger
        if kind == STARTED:
            self.open_items.add(event["item_id"])
        elif kind == COMPLETED:
            self.open_items.discard(event["item_id"])
            ledger.count(f"{kinds}.utterances")
        elif kind == FAILED:
            self.open_items.discard(event["item_id"])
            ledger.error(self.name, f"transcription failed: {event.get('error')}")
        elif kind == "response.created":
            self.open_replies.add(event["response"]["id"])
        elif kind == "response.done":
            response = event["response"]
            self.open_replies.discard(response["id"])
            status = response.get("status")
            ledger.count(f"{kinds}.replies_{status}")
            if status not in ("completed", "cancelled"):
                ledger.error(self.name, f"reply {status}: {response.get('status_details')}")
        elif kind == "voxwire.classification":
            ledger.count(f"{kinds}.classifications")
        elif kind == "error":
            ledger.error(self.name, f"error event: {event.get('error')}")

    @property
    def settled(self) -> bool:
        """Every utterance has its transcript and every reply is done."""
        return not self.open_items and not self.open_replies


async def _settle(ws: ClientConnection, reader: _SessionReader, within_s: float) -> bool:
    """Send silence, as an open microphone does, until `reader` has settled."""
    deadline = time.monotonic() + within_s
    while not reader.settled:
        if time.monotonic() >= deadline:
            return False
        await _send_paced(ws, _silence(0.1), deadline)
    return True


def _silence(seconds: float) -> bytes:
    return bytes(2 * int(MODEL_RATE * seconds))


async def _send_paced(ws: ClientConnection, pcm: bytes, hard_stop: float) -> None:
    """Send PCM16 at 16 kHz in 20 ms frames against an absolute clock."""
    step = int(MODEL_RATE * CHUNK_S) * 2
    clock = time.monotonic()
    for offset in range(0, len(pcm), step):
        if time.monotonic() >= hard_stop:
            return
        await ws.send(pcm[offset : offset + step])
        clock += CHUNK_S
        delay = clock - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def _wav_header(rate: int, data_bytes: int) -> bytes:
    """The 44-byte header of mono PCM16 WAV with `data_bytes` of samples."""
    header = b"RIFF" + struct.pack("<I", data_bytes + 36) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return header + b"data" + struct.pack("<I", data_bytes)


def bomb_wav(body_bytes: int = 27 * 1024) -> bytes:
    """27 KiB of PCM16 at 1 Hz: 3.8 hours once decoded (221 M samples at 16 kHz)."""
    return _wav_header(1, body_bytes) + bytes(body_bytes)


def wav_bytes(pcm: bytes, rate: int = MODEL_RATE) -> bytes:
    """PCM16 mono as a WAV file."""
    return _wav_header(rate, len(pcm)) + pcm


__all__ = ["Ledger", "Load", "LoadMix", "LoadPlan", "bomb_wav", "to_pcm16", "wav_bytes"]
