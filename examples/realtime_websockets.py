"""Live transcription over the Realtime WebSocket API with the plain `websockets` package.

Reads an audio file (a WAV of any rate and channel count, or anything FFmpeg decodes),
streams it to voxwire's `/v1/realtime` as JSON `input_audio_buffer.append` events with
base64 PCM16 at 24 kHz (OpenAI's rate), prints the transcript as it is recognised and
exits once every utterance has its final transcript.

    voxwire serve                                   # in another terminal
    python examples/realtime_websockets.py speech.wav
    python examples/realtime_websockets.py speech.wav --pace fast --url http://HOST:8000

Exit status 0 on success; 1 with a one-line message on stderr when the file cannot be
read, the server cannot be reached or it reports an error.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from typing import Any

import av
import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

RATE = 24_000  # the session's input rate: 8000, 16000, 24000, 44100 or 48000
CHUNK_S = 0.1  # 100 ms of audio per append


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


async def send_audio(ws: ClientConnection, pcm: bytes, realtime: bool) -> None:
    """Append the audio in 100 ms chunks, in real time or as fast as the server reads."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    step = int(RATE * CHUNK_S) * 2  # bytes per chunk (2 bytes per sample)
    for n, i in enumerate(range(0, len(pcm), step)):
        audio = base64.b64encode(pcm[i : i + step]).decode()
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
        if realtime:  # pace against an absolute clock, so the delays do not add up
            await asyncio.sleep(max(0.0, start + (n + 1) * CHUNK_S - loop.time()))
    # The end of the stream. Switching turn detection off commits the utterance still in
    # progress (if any), and the `session.updated` that answers it comes after the events
    # of all the audio above: from then on no new utterance can start.
    end = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
    await ws.send(json.dumps({"type": "session.update", "session": end}))


async def transcribe(args: argparse.Namespace) -> None:
    pcm = read_audio(args.wav, RATE)
    url = args.url.replace("http", "ws", 1).rstrip("/") + "/v1/realtime?intent=transcription"
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else None
    try:
        async with connect(url, additional_headers=headers, open_timeout=10) as ws:
            created = json.loads(await ws.recv())
            if created.get("type") != "session.created":
                raise ExampleError(f"expected session.created, got {created}")
            # PCM16 at 24 kHz, server VAD cuts the utterances, English transcription.
            await ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "type": "transcription",
                            "audio": {
                                "input": {
                                    "format": {"type": "audio/pcm", "rate": RATE},
                                    "transcription": {"model": "whisper-1", "language": "en"},
                                    "turn_detection": {"type": "server_vad"},
                                }
                            },
                        },
                    }
                )
            )
            sender = asyncio.create_task(send_audio(ws, pcm, args.pace == "realtime"))
            try:
                audio_s = len(pcm) / 2 / RATE
                async with asyncio.timeout(args.timeout + audio_s):
                    await print_transcripts(ws)
            except TimeoutError:
                raise ExampleError(f"no final transcript within {args.timeout:g} s") from None
            finally:
                sender.cancel()
    except (OSError, InvalidHandshake) as exc:
        raise ExampleError(f"cannot connect to {url}: {exc}") from None
    except ConnectionClosed as exc:
        raise ExampleError(f"the server closed the connection: {exc}") from None


async def print_transcripts(ws: ClientConnection) -> None:
    """Print the transcript as it comes; return when every utterance has its completed
    (or failed) transcript after the end of the stream."""
    updates = 0  # the first session.updated answers our set-up, the second the end
    transcript = Transcript()
    async for message in ws:
        event: dict[str, Any] = json.loads(message)
        kind = event["type"]
        if kind == "error":
            raise ExampleError(f"server error: {event['error']['message']}")
        elif kind == "session.updated":
            updates += 1
        elif kind == "input_audio_buffer.speech_started":
            transcript.start(event["item_id"])
        elif kind == "conversation.item.input_audio_transcription.delta":
            transcript.delta(event["item_id"], event["delta"])
        elif kind == "conversation.item.input_audio_transcription.completed":
            transcript.complete(event["item_id"], event["transcript"])
        elif kind == "conversation.item.input_audio_transcription.failed":
            print(f"[transcription failed: {event['error']['message']}]", file=sys.stderr)
            transcript.complete(event["item_id"], None)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wav", help="audio file to stream (WAV of any rate, or any format)")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the voxwire server")
    parser.add_argument("--api-key", help="when the server requires one")
    parser.add_argument(
        "--pace",
        choices=["realtime", "fast"],
        default="realtime",
        help="send as a microphone would, or as fast as the server takes it",
    )
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait after the audio")
    args = parser.parse_args()
    try:
        asyncio.run(transcribe(args))
    except ExampleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
