"""Live transcription over the Realtime WebSocket with binary PCM frames (a voxwire extension).

Any WebSocket client can stream raw PCM16 LE mono as binary frames, without JSON or
base64: each frame counts as an `input_audio_buffer.append` at the session's input rate.
This reads an audio file (a WAV of any rate and channel count, or anything FFmpeg
decodes), sends it as 20 ms binary frames at 16 kHz, prints the transcript as it is
recognised and exits once every utterance has its final transcript.

    voxwire serve                                   # in another terminal
    python examples/realtime_binary_pcm.py speech.wav
    python examples/realtime_binary_pcm.py speech.wav --pace fast --url http://HOST:8000

It needs common.py (in this folder) beside it, which also says what the exit status means.
"""

from __future__ import annotations

import argparse
import sys

import common
from websockets.asyncio.client import ClientConnection

RATE = 16_000  # the session's input rate (what the recogniser uses, so no resampling there)
FRAME_S = 0.02  # 20 ms per binary frame, as a microphone would send


async def send_audio(ws: ClientConnection, pcm: bytes, realtime: bool) -> None:
    """Send the audio as binary frames, in real time or as fast as the server reads
    (it reads the next frame only when it has processed the last, so TCP slows us)."""
    async for frame in common.paced(pcm, RATE, FRAME_S, realtime):
        await ws.send(frame)  # bytes -> a binary frame


async def transcribe(args: argparse.Namespace) -> None:
    # Binary frames carry PCM16 at the session's input rate: set it before sending.
    audio_input = {
        "format": {"type": "audio/pcm", "rate": RATE},
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
    }
    await common.transcribe_over_websocket(args, RATE, audio_input, send_audio)


if __name__ == "__main__":
    sys.exit(common.main(__doc__, transcribe))
