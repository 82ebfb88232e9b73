"""Live transcription over WebRTC from Python, with aiortc as the client.

As OpenAI's WebRTC API works: the client POSTs its SDP offer to `/v1/realtime/calls`
and gets the SDP answer back; the audio goes on a microphone track (Opus, 48 kHz) and
the events come on the data channel `oai-events`. Here the "microphone" plays an audio
file (a WAV of any rate and channel count, or anything FFmpeg decodes) in real time, then
silence, so the server's voice activity detector ends the last utterance. The script
prints the transcript as it is recognised and exits once every utterance is final.

    voxwire serve                                   # in another terminal
    python examples/webrtc_aiortc.py speech.wav
    python examples/webrtc_aiortc.py speech.wav --url http://HOST:8000 --api-key KEY

A media track plays in real time (the server keeps at most 2 s of backlog), so there is
no fast pace here: use a WebSocket example to send faster than real time.

Exit status 0 on success; 1 with a one-line message on stderr when the file cannot be
read, the call cannot be set up or the server reports an error.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import sys
import urllib.error
import urllib.request
from typing import Any

import av
import numpy as np
import soxr
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48_000  # WebRTC audio (Opus) runs at 48 kHz
FRAME_SAMPLES = 960  # 20 ms frames
# Silence after the file. The VAD needs 0.5 s of it to end an utterance, and the server
# is never more than 2 s behind a track (it drops older audio), so after 2.5 s the
# server has heard the end of the file: every utterance has started by then.
TAIL_S = 2.5


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


class FilePlayer(MediaStreamTrack):
    """A microphone track that plays PCM16 48 kHz audio in real time, then silence.

    aiortc's sender calls `recv()` for each frame and sends it at once, so the track
    paces itself: frame n leaves at start + n x 20 ms (an absolute clock, no drift)."""

    kind = "audio"

    def __init__(self, pcm: bytes) -> None:
        super().__init__()
        self.pcm = pcm
        self.frames = 0
        self.start: float | None = None

    @property
    def seconds_after_the_file(self) -> float:
        """How much silence has been sent since the file ended."""
        return max(0.0, (self.frames * FRAME_SAMPLES * 2 - len(self.pcm)) / 2 / RATE)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        await asyncio.sleep(max(0.0, self.start + self.frames * FRAME_SAMPLES / RATE - loop.time()))
        offset = self.frames * FRAME_SAMPLES * 2
        chunk = self.pcm[offset : offset + FRAME_SAMPLES * 2]
        chunk += bytes(FRAME_SAMPLES * 2 - len(chunk))  # silence after the end of the file
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(chunk)
        frame.sample_rate = RATE
        frame.pts = self.frames * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self.frames += 1
        return frame


def post_offer(url: str, offer: str, api_key: str | None) -> str:
    """POST the SDP offer; the SDP answer (201), or an ExampleError with the server's
    message (OpenAI's error shape) or the network error."""
    headers = {"Content-Type": "application/sdp"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=offer.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            message = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = body[:200]
        raise ExampleError(f"the server refused the call ({exc.code}): {message}") from None
    except OSError as exc:  # URLError, refused connection, timeout
        raise ExampleError(f"cannot reach {url}: {exc}") from None


async def transcribe(args: argparse.Namespace) -> None:
    pcm = read_audio(args.wav, RATE)
    # No STUN/TURN servers: on one machine or a LAN the host candidates are enough (and
    # nothing is asked of a server on the internet).
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    player = FilePlayer(pcm)
    pc.addTransceiver(player, direction="sendonly")  # a transcription call: no reply audio
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    channel = pc.createDataChannel("oai-events")  # the Realtime events, as JSON text
    opened = asyncio.Event()
    channel.on("open", opened.set)
    channel.on("close", lambda: events.put_nowait({"type": "closed"}))

    @channel.on("message")
    def on_message(message: str | bytes) -> None:
        if isinstance(message, str):
            events.put_nowait(json.loads(message))

    try:
        await pc.setLocalDescription(await pc.createOffer())  # gathers the ICE candidates
        url = args.url.rstrip("/") + "/v1/realtime/calls?intent=transcription"
        answer = await asyncio.to_thread(post_offer, url, pc.localDescription.sdp, args.api_key)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        try:
            await asyncio.wait_for(opened.wait(), 20)
        except TimeoutError:
            raise ExampleError("the WebRTC connection did not come up within 20 s") from None
        try:
            async with asyncio.timeout(len(pcm) / 2 / RATE + TAIL_S + args.timeout):
                await print_transcripts(events, player)
        except TimeoutError:
            raise ExampleError(f"no final transcript within {args.timeout:g} s") from None
    finally:
        await pc.close()  # hangs up: the server ends the call and frees its session


async def print_transcripts(events: asyncio.Queue[dict[str, Any]], player: FilePlayer) -> None:
    """Print the transcript as it comes; return once the file and its tail of silence
    have been sent and every utterance has its completed (or failed) transcript."""
    transcript = Transcript()
    while not (player.seconds_after_the_file >= TAIL_S and transcript.finished):
        try:
            event = await asyncio.wait_for(events.get(), 0.1)
        except TimeoutError:
            continue  # look at the clock again
        kind = event.get("type")
        if kind == "error":
            raise ExampleError(f"server error: {event['error']['message']}")
        elif kind == "closed":
            raise ExampleError("the server ended the call before the last transcript")
        elif kind == "input_audio_buffer.speech_started":
            transcript.start(event["item_id"])
        elif kind == "conversation.item.input_audio_transcription.delta":
            transcript.delta(event["item_id"], event["delta"])
        elif kind == "conversation.item.input_audio_transcription.completed":
            transcript.complete(event["item_id"], event["transcript"])
        elif kind == "conversation.item.input_audio_transcription.failed":
            print(f"[transcription failed: {event['error']['message']}]", file=sys.stderr)
            transcript.complete(event["item_id"], None)


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
