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

It needs common.py (in this folder) beside it, which also says what the exit status means.
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
import common
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48_000  # WebRTC audio (Opus) runs at 48 kHz
FRAME_SAMPLES = 960  # 20 ms frames
# Silence after the file. The VAD needs 0.5 s of it to end an utterance, and the server
# is never more than 2 s behind a track (it drops older audio), so after 2.5 s the
# server has heard the end of the file: every utterance has started by then.
TAIL_S = 2.5


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
        raise common.ExampleError(f"the server refused the call ({exc.code}): {message}") from None
    except OSError as exc:  # URLError, refused connection, timeout
        raise common.ExampleError(f"cannot reach {url}: {exc}") from None


async def transcribe(args: argparse.Namespace) -> None:
    pcm = common.read_audio(args.wav, RATE)
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
            raise common.ExampleError("the WebRTC connection did not come up within 20 s") from None
        try:
            async with asyncio.timeout(len(pcm) / 2 / RATE + TAIL_S + args.timeout):
                await print_transcripts(events, player)
        except TimeoutError:
            raise common.ExampleError(f"no final transcript within {args.timeout:g} s") from None
    finally:
        await pc.close()  # hangs up: the server ends the call and frees its session


async def print_transcripts(events: asyncio.Queue[dict[str, Any]], player: FilePlayer) -> None:
    """Print the transcript as it comes; return once the file and its tail of silence
    have been sent and every utterance has its completed (or failed) transcript."""
    transcript = common.Transcript()
    while not (player.seconds_after_the_file >= TAIL_S and transcript.finished):
        try:
            event = await asyncio.wait_for(events.get(), 0.1)
        except TimeoutError:
            continue  # look at the clock again
        if event.get("type") == "closed":
            raise common.ExampleError("the server ended the call before the last transcript")
        transcript.handle(event)


if __name__ == "__main__":
    sys.exit(common.main(__doc__, transcribe, pace=False))
