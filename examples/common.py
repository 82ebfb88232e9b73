"""What the example clients share: reading an audio file, pacing it, opening a Realtime
WebSocket, printing transcripts and the command line. Not an example itself: each script
in this folder imports it, so keep it beside them (`python examples/X.py` finds it there).

An example exits with status 0 on success; 1 with a one-line message on stderr when the
file cannot be read, the server cannot be reached or it reports an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import av
import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

T = TypeVar("T")
Transcriber = Callable[[argparse.Namespace], Coroutine[Any, Any, None]]
WAV_HELP = "audio file to stream (WAV of any rate, or any format)"


class ExampleError(Exception):
    """Something the user should read: printed as one line, exit status 1."""


def read_audio(path: str, rate: int) -> bytes:
    """Decode `path` to PCM16 LE mono at `rate`: PyAV decodes any rate, sample format
    and channel count, the channels are averaged and soxr resamples."""
    try:
        with av.open(path) as container:
            stream = container.streams.audio[0]
            to_float = av.AudioResampler(format="fltp")  # planar float: (channels, samples)
            chunks = [
                converted.to_ndarray()
                for frame in container.decode(stream)
                for converted in to_float.resample(frame)
            ]
            source_rate = stream.rate
    except (OSError, av.FFmpegError, IndexError) as exc:
        raise ExampleError(f"cannot read {path}: {exc}") from None
    if not chunks:
        raise ExampleError(f"{path} holds no audio")
    mono = np.concatenate(chunks, axis=1).mean(axis=0)
    audio = np.asarray(soxr.resample(mono, source_rate, rate), dtype=np.float32)
    return (np.clip(audio, -1.0, 1.0) * 32767).round().astype("<i2").tobytes()


async def paced(pcm: bytes, rate: int, chunk_s: float, realtime: bool) -> AsyncIterator[bytes]:
    """`pcm` (PCM16 mono at `rate`) in chunks of `chunk_s`, each yielded when a microphone
    would have it (`realtime`) or at once."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    step = int(rate * chunk_s) * 2  # bytes per chunk (2 bytes per sample)
    for n, i in enumerate(range(0, len(pcm), step)):
        yield pcm[i : i + step]
        if realtime:  # pace against an absolute clock, so the delays do not add up
            await asyncio.sleep(max(0.0, start + (n + 1) * chunk_s - loop.time()))


@asynccontextmanager
async def realtime_socket(
    base_url: str, query: str, api_key: str | None
) -> AsyncIterator[ClientConnection]:
    """A WebSocket on the server's `/v1/realtime?{query}` once its `session.created` has
    come; the network and protocol failures inside become ExampleErrors."""
    url = base_url.replace("http", "ws", 1).rstrip("/") + "/v1/realtime?" + query
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    try:
        async with connect(url, additional_headers=headers, open_timeout=10) as ws:
            created = json.loads(await ws.recv())
            if created.get("type") != "session.created":
                raise ExampleError(f"expected session.created, got {created}")
            yield ws
    except (OSError, InvalidHandshake) as exc:
        raise ExampleError(f"cannot connect to {url}: {exc}") from None
    except ConnectionClosed as exc:
        raise ExampleError(f"the server closed the connection: {exc}") from None


async def send_event(ws: ClientConnection, kind: str, **fields: Any) -> None:
    """Send one client event as JSON text."""
    await ws.send(json.dumps({"type": kind, **fields}))


async def while_sending(
    sending: Coroutine[Any, Any, None],
    receiving: Coroutine[Any, Any, T],
    audio_s: float,
    timeout_s: float,
    awaited: str,
) -> T:
    """Await `receiving` while `sending` runs as a task beside it; what it returns. It
    may take the audio's length (`audio_s`) and `timeout_s` more; then an ExampleError:
    no `awaited` within `timeout_s`."""
    sender = asyncio.create_task(sending)
    try:
        async with asyncio.timeout(audio_s + timeout_s):
            return await receiving
    except TimeoutError:
        raise ExampleError(f"no {awaited} within {timeout_s:g} s") from None
    finally:
        sender.cancel()


async def transcribe_over_websocket(
    args: argparse.Namespace,
    rate: int,
    audio_input: dict[str, Any],
    send_audio: Callable[[ClientConnection, bytes, bool], Awaitable[None]],
) -> None:
    """The WebSocket examples' transcription session: set `audio_input` up (PCM16 at
    `rate`), stream the file with `send_audio(ws, pcm, realtime)`, end the stream and
    print the transcripts until the last is final."""
    pcm = read_audio(args.wav, rate)
    async with realtime_socket(args.url, "intent=transcription", args.api_key) as ws:
        session = {"type": "transcription", "audio": {"input": audio_input}}
        await send_event(ws, "session.update", session=session)

        async def send() -> None:
            await send_audio(ws, pcm, args.pace == "realtime")
            # The end of the stream. Switching turn detection off commits the utterance
            # still in progress (if any), and the `session.updated` that answers it comes
            # after the events of all the audio: from then on no utterance can start.
            end = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
            await send_event(ws, "session.update", session=end)

        audio_s = len(pcm) / 2 / rate
        await while_sending(
            send(), print_transcripts(ws), audio_s, args.timeout, "final transcript"
        )


async def print_transcripts(ws: ClientConnection) -> None:
    """Print the transcript as it comes; return when every utterance has its completed
    (or failed) transcript after the end of the stream (the client's last
    `session.update`, whose `session.updated` is the second one)."""
    updates = 0  # the first session.updated answers our set-up, the second the end
    transcript = Transcript()
    async for message in ws:
        event: dict[str, Any] = json.loads(message)
        if event["type"] == "session.updated":
            updates += 1
        transcript.handle(event)
        if updates >= 2 and transcript.finished:
            return
    raise ExampleError("the server closed the connection before the last transcript")


class Transcript:
    """Prints one line per utterance, in spoken order. The deltas of the oldest unfinished
    utterance are printed as they come; a later utterance's deltas (several can be in
    flight when sending faster than real time) wait until the ones before it are done."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}  # unfinished utterances, oldest first: text so far
        self.done: set[str] = set()
        self.shown = 0  # characters of the oldest utterance printed so far

    @property
    def finished(self) -> bool:
        return not self.texts

    def handle(self, event: dict[str, Any]) -> None:
        """Follow one server event (JSON, as the WebSocket and the data channel carry it);
        an `error` event raises."""
        kind = event.get("type")
        if kind == "error":
            raise ExampleError(f"server error: {event['error']['message']}")
        elif kind == "input_audio_buffer.speech_started":
            self.start(event["item_id"])
        elif kind == "conversation.item.input_audio_transcription.delta":
            self.delta(event["item_id"], event["delta"])
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.complete(event["item_id"], event["transcript"])
        elif kind == "conversation.item.input_audio_transcription.failed":
            self.fail(event["item_id"], event["error"]["message"])

    def start(self, item_id: str) -> None:
        self.texts.setdefault(item_id, "")

    def delta(self, item_id: str, delta: str) -> None:
        self.texts[item_id] = self.texts.get(item_id, "") + delta  # deltas add up to the final
        self._print()

    def complete(self, item_id: str, transcript: str | None) -> None:
        if transcript is not None:
            self.texts[item_id] = transcript
        self.done.add(item_id)
        self._print()

    def fail(self, item_id: str, message: str | None) -> None:
        print(f"[transcription failed: {message}]", file=sys.stderr)
        self.complete(item_id, None)

    def _print(self) -> None:
        while self.texts:
            item_id, text = next(iter(self.texts.items()))
            print(text[self.shown :], end="", flush=True)
            self.shown = len(text)
            if item_id not in self.done:
                return
            print(flush=True)
            del self.texts[item_id]
            self.shown = 0


def parser(
    doc: str,
    pace: bool = True,
    wav_help: str = "audio file to stream (WAV of any rate, or any format)",
) -> argparse.ArgumentParser:
    """The options every example takes: the audio file, the server, its key, the pace
    (`pace`: a WebRTC track can only play in real time) and how long to wait."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("wav", help=wav_help)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the voxwire server")
    parser.add_argument("--api-key", help="when the server requires one")
    if pace:
        parser.add_argument(
            "--pace",
            choices=["realtime", "fast"],
            default="realtime",
            help="send as a microphone would, or as fast as the server takes it",
        )
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait after the audio")
    return parser


def run(main: Coroutine[Any, Any, None]) -> int:
    """Run `main`; the exit status: 0, or 1 after one line on stderr for an ExampleError."""
    try:
        asyncio.run(main)
    except ExampleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(
    doc: str,
    transcribe: Callable[[argparse.Namespace], Coroutine[Any, Any, None]],
    pace: bool = True,
) -> int:
    """A transcribing example's command line (`parser`): run `transcribe` with its
    arguments; the exit status."""
    return run(transcribe(parser(doc, pace).parse_args()))
