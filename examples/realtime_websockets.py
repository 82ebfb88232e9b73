"""Live transcription over the Realtime WebSocket API with the plain `websockets` package.

Reads an audio file (a WAV of any rate and channel count, or anything FFmpeg decodes),
streams it to voxwire's `/v1/realtime` as JSON `input_audio_buffer.append` events with
base64 PCM16 at 24 kHz (OpenAI's rate), prints the transcript as it is recognised and
exits once every utterance has its final transcript.

    voxwire serve                                   # in another terminal
    python examples/realtime_websockets.py speech.wav
    python examples/realtime_websockets.py speech.wav --pace fast --url http://HOST:8000

It needs common.py (in this folder) beside it, which also says what the exit status means.
"""

from __future__ import annotations

import argparse
import base64
import sys

import common
from websockets.asyncio.client import ClientConnection

RATE = 24_000  # the session's input rate: 8000, 16000, 24000, 44100 or 48000
CHUNK_S = 0.1  # 100 ms of audio per append


async def send_audio(ws: ClientConnection, pcm: bytes, realtime: bool) -> None:
    """Append the audio in 100 ms chunks, in real time or as fast as the server reads."""
    async for chunk in common.paced(pcm, RATE, CHUNK_S, realtime):
        audio = base64.b64encode(chunk).decode()
        await common.send_event(ws, "input_audio_buffer.append", audio=audio)


async def transcribe(args: argparse.Namespace) -> None:
    # PCM16 at 24 kHz, server VAD cuts the utterances, English transcription.
    audio_input = {
        "format": {"type": "audio/pcm", "rate": RATE},
        "transcription": {"model": "whisper-1", "language": "en"},
        "turn_detection": {"type": "server_vad"},
    }
    await common.transcribe_over_websocket(args, RATE, audio_input, send_audio)


if __name__ == "__main__":
    sys.exit(common.main(__doc__, transcribe))
