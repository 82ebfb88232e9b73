"""`voxwire bench webrtc`: end-of-speech-to-final latency over WebRTC beside the WebSocket.

One server (spawned, or `--url`), the same speech file, one stream at a time at
real-time pace, alternating between the two transports for `--repeats` passes each:

* WebSocket: binary PCM16 frames of 20 ms at 16 kHz to `/v1/realtime`;
* WebRTC: an aiortc peer posts its offer to `/v1/realtime/calls`, sends the file on its
  microphone track (Opus, 48 kHz, 20 ms frames) and reads the events on `oai-events`.

For every transcribed utterance the client knows when the frame that carried the last
spoken sample left it (the speech end is found in the file by energy, just before the
utterance end the server reports), so the figure is the time from the end of speech to
the completed transcript, as a person would feel it: the turn detector's silence,
transport and decoding together. Also reported: completed - speech_stopped (both
receive times), as `voxwire bench stream` does. p50/p95 per transport; JSON like the
other bench commands.

This module also holds the small aiortc client (:class:`RealtimeCall`) the bench and the
tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import math
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import av
import numpy as np
import numpy.typing as npt
import soxr
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import connect

from voxwire.engine.audio import MODEL_RATE
from voxwire.services.media import decode_audio
from voxwire.transports.bench.stream import (
    BenchError,
    fetch_health,
    machine_info,
    percentiles,
    server_under_test,
    to_pcm16,
    transcription_update,
)
from voxwire.transports.webrtc.audio import FRAME_SAMPLES, WEBRTC_RATE, frame_to_mono

log = logging.getLogger(__name__)

CHUNK_MS = 20
CONNECT_TIMEOUT_S = 20.0
SETTLE_TIMEOUT_S = 30.0
MAX_EVENTS = 100_000
MAX_REPLY_SECONDS = 120.0

COMPLETED = "conversation.item.input_audio_transcription.completed"
STOPPED = "input_audio_buffer.speech_stopped"
STARTED = "input_audio_buffer.speech_started"

DEFAULT_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please turn on the lights in the kitchen.",
    "What time does the train leave tomorrow morning?",
)
"""Spoken by Piper when no file is given, 1.5 s apart."""


# -- an aiortc client -------------------------------------------------------------------------


class CallError(Exception):
    """The server refused the call or it could not be set up."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        body: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.headers = headers or {}


def post_offer(
    url: str,
    body: bytes,
    content_type: str,
    api_key: str | None = None,
    timeout: float = CONNECT_TIMEOUT_S,
) -> tuple[int, dict[str, str], str]:
    """POST `body` to `url`; (status, headers with lower-case names, text), error
    statuses included."""
    headers = {"Content-Type": content_type}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        headers = {k.lower(): v for k, v in exc.headers.items()}
        return exc.code, headers, exc.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as exc:
        raise CallError(f"cannot reach {url}: {exc}") from exc


def multipart_body(fields: dict[str, str]) -> tuple[bytes, str]:
    """`fields` as multipart/form-data; (body, content type)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        )
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


class SpeechSource(MediaStreamTrack):
    """A microphone for aiortc: plays queued audio in 20 ms frames at 48 kHz, paced
    against an absolute clock, and silence in between. Remembers when each frame left."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        self._start: float | None = None
        self.frames = 0
        self.frame_times: list[float] = []
        """perf_counter time at which frame k was handed to the sender."""
        self._drained = asyncio.Event()

    def play(self, audio: npt.NDArray[np.float32], rate: int = WEBRTC_RATE) -> int:
        """Queue `audio`; returns the stream position (48 kHz samples) where it starts."""
        if rate != WEBRTC_RATE:
            audio = np.asarray(soxr.resample(audio, rate, WEBRTC_RATE), dtype=np.float32)
        padded = math.ceil(len(audio) / FRAME_SAMPLES) * FRAME_SAMPLES
        audio = np.concatenate([audio, np.zeros(padded - len(audio), dtype=np.float32)])
        start = self.frames * FRAME_SAMPLES + len(self._pending) // 2
        self._pending += to_pcm16(audio)
        return start

    @property
    def playing(self) -> bool:
        return bool(self._pending)

    async def drained(self) -> None:
        """Wait until everything queued has been sent."""
        while self._pending:
            self._drained.clear()
            await self._drained.wait()

    def sent_at(self, position: int) -> float | None:
        """When the frame holding stream sample `position` (48 kHz) was sent."""
        frame = position // FRAME_SAMPLES
        return self.frame_times[frame] if frame < len(self.frame_times) else None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            delay = self._start + self.frames * CHUNK_MS / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        wanted = FRAME_SAMPLES * 2
        chunk = bytes(self._pending[:wanted])
        del self._pending[:wanted]
        if not self._pending:
            self._drained.set()
        chunk += bytes(wanted - len(chunk))
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(chunk)
        frame.sample_rate = WEBRTC_RATE
        frame.pts = self.frames * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, WEBRTC_RATE)
        self.frame_times.append(time.perf_counter())
        self.frames += 1
        return frame


@dataclass
class EventLog:
    """Server events as they arrived: (perf_counter time, event)."""

    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    overflow: int = 0

    def add(self, event: dict[str, Any]) -> None:
        if len(self.events) >= MAX_EVENTS:
            self.overflow += 1
            return
        self.events.append((time.perf_counter(), event))
        self.changed.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for _, event in self.events if event.get("type") == kind]

    async def wait_for(
        self, check: Callable[[dict[str, Any]], bool] | str, within: float, start: int = 0
    ) -> dict[str, Any]:
        """The first event from index `start` on that matches (a type or a predicate),
        waiting at most `within` seconds."""
        predicate = (lambda e: e.get("type") == check) if isinstance(check, str) else check
        deadline = time.monotonic() + within
        index = start
        while True:
            while index < len(self.events):
                event = self.events[index][1]
                index += 1
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event within {within:g} s: {check}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


class RealtimeCall:
    """A Realtime session over WebRTC from Python (aiortc): a microphone track that
    plays what it is given, the ``oai-events`` channel, and the reply track recorded."""

    def __init__(
        self,
        base_url: str,
        *,
        session: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        api_key: str | None = None,
        multipart: bool | None = None,
        microphone: bool = True,
    ) -> None:
        """`base_url`: http://host:port. `multipart`: post the offer as a form (default:
        when there is a `session`)."""
        self.url = base_url.rstrip("/") + "/v1/realtime/calls"
        if query:
            self.url += "?" + urlencode(query)
        self.session = session
        self.api_key = api_key
        self.multipart = session is not None if multipart is None else multipart
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic: SpeechSource | None = SpeechSource() if microphone else None
        self.log = EventLog()
        self.call_id: str | None = None
        self.location: str | None = None
        self.answer_headers: dict[str, str] = {}
        self.reply = bytearray()
        """Reply audio received, PCM16 mono 48 kHz (at most MAX_REPLY_SECONDS)."""
        self.reply_frames = 0
        self._reply_task: asyncio.Task[None] | None = None
        self._opened = asyncio.Event()
        self._closed = asyncio.Event()
        self.channel = self.pc.createDataChannel("oai-events")
        self.channel.on("open", self._opened.set)
        self.channel.on("close", self._closed.set)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    async def __aenter__(self) -> RealtimeCall:
        await self.open()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def open(self, within: float = CONNECT_TIMEOUT_S) -> None:
        """Post the offer, apply the answer, wait until the data channel is open."""
        if self.mic is not None:
            self.pc.addTrack(self.mic)
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp
        if self.multipart:
            fields = {"sdp": offer}
            if self.session is not None:
                fields["session"] = json.dumps(self.session)
            body, content_type = multipart_body(fields)
        else:
            body, content_type = offer.encode(), "application/sdp"
        status, headers, text = await asyncio.to_thread(
            post_offer, self.url, body, content_type, self.api_key
        )
        if status != 201:
            await self.close()
            raise CallError(f"the server answered {status}: {text[:300]}", status, text, headers)
        self.answer_headers = headers
        self.location = headers.get("location")
        self.call_id = (self.location or "").rsplit("/", 1)[-1] or None
        await self.pc.setRemoteDescription(RTCSessionDescription(text, "answer"))
        try:
            await asyncio.wait_for(self._opened.wait(), within)
        except TimeoutError:
            await self.close()
            raise CallError(f"the data channel did not open within {within:g} s") from None

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            with contextlib.suppress(ValueError):
                event = json.loads(message)
                if isinstance(event, dict):
                    self.log.add(event)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reply_task is None:
            self._reply_task = asyncio.get_running_loop().create_task(
                self._read_reply(track), name="webrtc-client-reply"
            )

    async def _read_reply(self, track: MediaStreamTrack) -> None:
        limit = int(MAX_REPLY_SECONDS * WEBRTC_RATE) * 2
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                self.reply_frames += 1
                samples = frame_to_mono(frame)
                if frame.sample_rate != WEBRTC_RATE:
                    samples = soxr.resample(samples, frame.sample_rate, WEBRTC_RATE)
                if len(self.reply) < limit:
                    self.reply += to_pcm16(np.asarray(samples, dtype=np.float32))

    def send(self, event: dict[str, Any]) -> None:
        """Send a client event on the data channel."""
        self.channel.send(json.dumps(event))

    @property
    def channel_closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self, within: float) -> None:
        await asyncio.wait_for(self._closed.wait(), within)

    async def close(self) -> None:
        """Close the peer connection (the server sees the caller hang up)."""
        if self.mic is not None:
            self.mic.stop()
        await self.pc.close()
        if self._reply_task is not None:
            self._reply_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reply_task


# -- the bench --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebRTCBenchOptions:
    """What `voxwire bench webrtc` was asked to do."""

    output: Path
    file: Path | None = None
    url: str | None = None
    model: str | None = None
    repeats: int = 3
    silence_ms: int = 1500


@dataclass
class Pass:
    """One stream of the file over one transport: what the client saw."""

    transport: str
    events: list[tuple[float, dict[str, Any]]]
    sent_at: Callable[[int], float | None]
    """When the 16 kHz file sample n left the client."""
    offset: int = 0
    """Where the file starts on the session's clock (16 kHz samples): a WebRTC microphone
    sends silence before the file."""
    errors: list[str] = field(default_factory=list)


def default_speech() -> npt.NDArray[np.float32]:
    """:data:`DEFAULT_SENTENCES` spoken by the embedded Piper voice, 16 kHz, 1.5 s apart."""
    from voxwire.models.piper_tts import PiperTts

    tts = PiperTts()
    gap = np.zeros(MODEL_RATE * 3 // 2, dtype=np.float32)
    parts: list[npt.NDArray[np.float32]] = [gap[: MODEL_RATE // 2]]
    for sentence in DEFAULT_SENTENCES:
        spoken = np.concatenate(list(tts.synthesize(sentence)))
        parts += [np.asarray(soxr.resample(spoken, tts.sample_rate, MODEL_RATE), np.float32), gap]
    return np.concatenate(parts)


def speech_end(audio: npt.NDArray[np.float32], before: int, window_s: float = 1.5) -> int:
    """The sample just after the last spoken 10 ms frame in the `window_s` before
    sample `before` (the utterance end the server reported, padding included)."""
    frame = MODEL_RATE // 100
    stop = min(len(audio), before + MODEL_RATE // 5) // frame * frame
    start = max(0, stop - int(window_s * MODEL_RATE)) // frame * frame
    if stop <= start:
        return min(before, len(audio))
    frames = audio[start:stop].reshape(-1, frame)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = np.sqrt(np.mean(audio.astype(np.float64) ** 2)) or 1.0
    spoken = np.flatnonzero(rms > 0.1 * loud)  # 20 dB under the file's mean level
    if spoken.size == 0:
        return min(before, len(audio))
    return start + (int(spoken[-1]) + 1) * frame


def pass_figures(record: Pass, audio: npt.NDArray[np.float32]) -> dict[str, Any]:
    """Per-utterance latencies of one pass."""
    stopped: dict[str, float] = {}
    after_speech: list[float] = []
    after_stopped: list[float] = []
    turn_detection: list[float] = []
    transcripts: list[str] = []
    for at, event in record.events:
        kind = event.get("type")
        if kind == STOPPED:
            stopped[str(event.get("item_id"))] = at
        elif kind == COMPLETED:
            transcripts.append(str(event.get("transcript", "")).strip())
            item = str(event.get("item_id"))
            if item in stopped:
                after_stopped.append(1000.0 * (at - stopped[item]))
            timings = event.get("voxwire.timings") or {}
            end_ms = timings.get("audio_end_ms")
            if isinstance(end_ms, int | float):
                end = int(end_ms * MODEL_RATE / 1000) - record.offset
                spoken_end = speech_end(audio, end)
                turn_detection.append(1000.0 * (end - spoken_end) / MODEL_RATE)
                sent = record.sent_at(spoken_end)
                if sent is not None:
                    after_speech.append(1000.0 * (at - sent))
    return {
        "utterances": len(transcripts),
        "end_of_speech_to_final_ms": after_speech,
        "speech_stopped_to_final_ms": after_stopped,
        "utterance_end_after_speech_ms": turn_detection,
        "transcript": " ".join(t for t in transcripts if t),
    }


async def _settle(events: EventLog, within: float) -> None:
    """Wait until every started item has completed (at most `within` seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        started = {e.get("item_id") for e in events.of_type(STARTED)}
        ended = {e.get("item_id") for _, e in events.events if e.get("type") in _ENDINGS}
        if started <= ended:
            return
        events.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(events.changed.wait(), deadline - time.monotonic())


_ENDINGS = (COMPLETED, "conversation.item.input_audio_transcription.failed")


async def websocket_pass(ws_url: str, audio: npt.NDArray[np.float32], api_key: str | None) -> Pass:
    """Stream `audio` (16 kHz) as 20 ms binary frames at real-time pace."""
    pcm = to_pcm16(audio)
    chunk = MODEL_RATE * CHUNK_MS // 1000
    times: list[float] = []
    log_ = EventLog()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    async with connect(
        ws_url, max_size=None, ping_interval=None, proxy=None, additional_headers=headers
    ) as ws:

        async def receive() -> None:
            async for message in ws:
                log_.add(json.loads(message))

        reader = asyncio.create_task(receive())
        try:
            await log_.wait_for("session.created", CONNECT_TIMEOUT_S)
            await ws.send(json.dumps(transcription_update(MODEL_RATE)))
            await log_.wait_for("session.updated", CONNECT_TIMEOUT_S)
            loop = asyncio.get_running_loop()
            start = loop.time()
            for k in range(math.ceil(len(audio) / chunk)):
                delay = start + k * CHUNK_MS / 1000 - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                times.append(time.perf_counter())
                await ws.send(pcm[2 * k * chunk : 2 * (k + 1) * chunk])
            await _settle(log_, SETTLE_TIMEOUT_S)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    def sent_at(n: int) -> float | None:
        k = n // chunk
        return times[k] if k < len(times) else None

    return Pass("websocket", log_.events, sent_at)


async def webrtc_pass(base_url: str, audio: npt.NDArray[np.float32], api_key: str | None) -> Pass:
    """Play `audio` on an aiortc microphone track at real-time pace."""
    call = RealtimeCall(
        base_url,
        session={"type": "transcription"},
        query={"intent": "transcription"},
        api_key=api_key,
    )
    await call.open()
    try:
        await call.log.wait_for("session.created", CONNECT_TIMEOUT_S)
        mic = call.mic
        assert mic is not None
        offset = mic.play(audio, MODEL_RATE)
        await mic.drained()
        await _settle(call.log, SETTLE_TIMEOUT_S)
    finally:
        await call.close()
    scale = WEBRTC_RATE // MODEL_RATE

    def sent_at(n: int) -> float | None:
        return mic.sent_at(offset + n * scale)

    return Pass("webrtc", call.log.events, sent_at, offset=offset // scale)


def _base_urls(url: str) -> tuple[str, str]:
    """(ws://.../v1/realtime?intent=transcription, http://host:port) from either form."""
    parts = urlsplit(url)
    secure = parts.scheme in ("https", "wss")
    if parts.scheme not in ("http", "https", "ws", "wss"):
        raise BenchError(f"--url must be an http:// or ws:// URL, not {url!r}")
    ws = urlunsplit(
        ("wss" if secure else "ws", parts.netloc, "/v1/realtime", "intent=transcription", "")
    )
    return ws, urlunsplit(("https" if secure else "http", parts.netloc, "", "", ""))


def run_webrtc_bench(options: WebRTCBenchOptions, api_key: str | None = None) -> dict[str, Any]:
    """Run the passes, print the table, write the JSON; the result."""
    out = Console()
    err = Console(stderr=True)
    if options.file is not None:
        audio = decode_audio(options.file)
        source = str(options.file)
    else:
        with err.status("synthesising speech with Piper..."):
            audio = default_speech()
        source = "Piper: " + " ".join(DEFAULT_SENTENCES)
    if len(audio) == 0:
        raise BenchError(f"{options.file} holds no audio")
    audio = np.concatenate([audio, np.zeros(MODEL_RATE * options.silence_ms // 1000, np.float32)])
    with contextlib.ExitStack() as stack:
        url = None if options.url is None else _base_urls(options.url)[0]
        handle = server_under_test(stack, url, options.model, err)
        ws_url, http_url = _base_urls(handle.url)
        health = fetch_health(handle.health_url)
        passes = asyncio.run(_run_passes(ws_url, http_url, audio, options, api_key, err))
        problems = handle.problems()
    result = bench_result(passes, audio, options, source, handle.url, health)
    result["server"]["spawned"] = handle.process is not None
    result["server_log_problems"] = problems
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result, out)
    for transport in ("websocket", "webrtc"):
        text = result["transports"][transport]["transcript"]
        out.print(f"{transport} transcript: {text}", markup=False, highlight=False)
    out.print(f"wrote {options.output}")
    return result


async def _run_passes(
    ws_url: str,
    http_url: str,
    audio: npt.NDArray[np.float32],
    options: WebRTCBenchOptions,
    api_key: str | None,
    err: Console,
) -> list[Pass]:
    with err.status("warm-up..."):  # the first decodes load lazily; keep them out
        silence = np.zeros(MODEL_RATE * 3 // 2, dtype=np.float32)
        await websocket_pass(ws_url, np.concatenate([audio[: MODEL_RATE * 3], silence]), api_key)
    passes: list[Pass] = []
    seconds = len(audio) / MODEL_RATE
    for i in range(options.repeats):
        for transport in ("websocket", "webrtc"):
            with err.status(f"pass {i + 1}/{options.repeats}: {transport}, {seconds:.1f} s..."):
                if transport == "websocket":
                    record = await websocket_pass(ws_url, audio, api_key)
                else:
                    record = await webrtc_pass(http_url, audio, api_key)
            passes.append(record)
    return passes


def bench_result(
    passes: Sequence[Pass],
    audio: npt.NDArray[np.float32],
    options: WebRTCBenchOptions,
    source: str,
    url: str,
    health: dict[str, Any] | None,
) -> dict[str, Any]:
    """The JSON result: per transport, latency percentiles over every utterance."""
    transports: dict[str, Any] = {}
    for transport in ("websocket", "webrtc"):
        figures = [pass_figures(p, audio) for p in passes if p.transport == transport]
        after_speech = [v for f in figures for v in f["end_of_speech_to_final_ms"]]
        after_stopped = [v for f in figures for v in f["speech_stopped_to_final_ms"]]
        padding = [v for f in figures for v in f["utterance_end_after_speech_ms"]]
        transports[transport] = {
            "passes": len(figures),
            "utterances_per_pass": [f["utterances"] for f in figures],
            "end_of_speech_to_final_ms": percentiles(after_speech),
            "speech_stopped_to_final_ms": percentiles(after_stopped),
            "utterance_end_after_speech_ms": percentiles(padding),
            "transcript": figures[0]["transcript"] if figures else "",
        }
    ws = transports["websocket"]["end_of_speech_to_final_ms"]["p50"]
    rtc = transports["webrtc"]["end_of_speech_to_final_ms"]["p50"]
    return {
        "file": source,
        "audio_seconds": round(len(audio) / MODEL_RATE, 3),
        "repeats": options.repeats,
        "server": {
            "url": url,
            "spawned": None,
            "model": (health or {}).get("models", {}).get("asr"),
        },
        "machine": machine_info(),
        "transports": transports,
        "webrtc_minus_websocket_p50_ms": None if ws is None or rtc is None else round(rtc - ws, 1),
    }


def print_table(result: dict[str, Any], console: Console) -> None:
    """One row per transport."""
    table = Table(
        title=(
            f"voxwire bench webrtc: {result['file']} ({result['audio_seconds']} s, "
            f"{result['server']['model'] or 'server'}, {result['repeats']} pass(es) each)"
        )
    )
    table.add_column("transport")
    table.add_column("utterances per pass", justify="right")
    table.add_column("end of speech -> final p50 / p95 ms", justify="right")
    table.add_column("speech_stopped -> final p50 / p95 ms", justify="right")
    for transport, figures in result["transports"].items():
        a, b = figures["end_of_speech_to_final_ms"], figures["speech_stopped_to_final_ms"]
        table.add_row(
            transport,
            ", ".join(str(n) for n in figures["utterances_per_pass"]),
            f"{_fmt(a['p50'])} / {_fmt(a['p95'])}",
            f"{_fmt(b['p50'])} / {_fmt(b['p95'])}",
        )
    console.print(table)
    console.print(
        f"WebRTC - WebSocket, end of speech -> final p50: "
        f"{_fmt(result['webrtc_minus_websocket_p50_ms'])} ms",
        markup=False,
        highlight=False,
    )


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)
