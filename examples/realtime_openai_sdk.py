"""Live transcription with the official `openai` SDK's Realtime client, pointed at voxwire.

Nothing voxwire-specific: `AsyncOpenAI(base_url=...)` and `client.realtime.connect()` as
for OpenAI's own service (`pip install "openai[realtime]"`). Reads an audio file (a WAV
of any rate and channel count, or anything FFmpeg decodes), streams it as 24 kHz PCM16
`input_audio_buffer.append` events, prints the transcript as it is recognised and exits
once every utterance has its final transcript.

    voxwire serve                                   # in another terminal
    python examples/realtime_openai_sdk.py speech.wav
    python examples/realtime_openai_sdk.py speech.wav --pace fast --url http://HOST:8000

It needs common.py (in this folder) beside it, which also says what the exit status means.
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import Final

import common
import openai
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import RealtimeTranscriptionSessionCreateRequestParam
from websockets.exceptions import ConnectionClosed, InvalidHandshake

RATE: Final = 24_000  # OpenAI's input rate; voxwire also takes 8000, 16000, 44100 and 48000
CHUNK_S = 0.1  # 100 ms of audio per append


async def send_audio(connection: AsyncRealtimeConnection, pcm: bytes, realtime: bool) -> None:
    """Append the audio in 100 ms chunks, in real time or as fast as the server reads."""
    async for chunk in common.paced(pcm, RATE, CHUNK_S, realtime):
        await connection.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())
    # The end of the stream. Switching turn detection off commits the utterance still in
    # progress (if any), and the `session.updated` that answers it comes after the events
    # of all the audio above: from then on no new utterance can start.
    end: RealtimeTranscriptionSessionCreateRequestParam = {
        "type": "transcription",
        "audio": {"input": {"turn_detection": None}},
    }
    await connection.session.update(session=end)


async def transcribe(args: argparse.Namespace) -> None:
    pcm = common.read_audio(args.wav, RATE)
    # The SDK wants a key; voxwire ignores it unless it was started with API keys.
    client = AsyncOpenAI(api_key=args.api_key or "unused", base_url=args.url.rstrip("/") + "/v1")
    try:
        # ?intent=transcription opens a transcription session (no spoken replies).
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
            # PCM16 at 24 kHz, server VAD cuts the utterances, English transcription.
            session: RealtimeTranscriptionSessionCreateRequestParam = {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": RATE},
                        "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    }
                },
            }
            await connection.session.update(session=session)
            await common.while_sending(
                send_audio(connection, pcm, args.pace == "realtime"),
                print_transcripts(connection),
                len(pcm) / 2 / RATE,
                args.timeout,
                "final transcript",
            )
    except (OSError, InvalidHandshake, openai.OpenAIError) as exc:
        raise common.ExampleError(f"cannot talk to {args.url}: {exc}") from None
    except ConnectionClosed as exc:
        raise common.ExampleError(f"the server closed the connection: {exc}") from None


async def print_transcripts(connection: AsyncRealtimeConnection) -> None:
    """Print the transcript as it comes; return when every utterance has its completed
    (or failed) transcript after the end of the stream."""
    updates = 0  # the first session.updated answers our set-up, the second the end
    transcript = common.Transcript()
    async for event in connection:  # typed events (pydantic models)
        if event.type == "error":
            raise common.ExampleError(f"server error: {event.error.message}")
        elif event.type == "session.updated":
            updates += 1
        elif event.type == "input_audio_buffer.speech_started":
            transcript.start(event.item_id)
        elif event.type == "conversation.item.input_audio_transcription.delta":
            transcript.delta(event.item_id, event.delta or "")
        elif event.type == "conversation.item.input_audio_transcription.completed":
            transcript.complete(event.item_id, event.transcript)
        elif event.type == "conversation.item.input_audio_transcription.failed":
            transcript.fail(event.item_id, event.error.message)
        if updates >= 2 and transcript.finished:
            return
    raise common.ExampleError("the server closed the connection before the last transcript")


if __name__ == "__main__":
    sys.exit(common.main(__doc__, transcribe))
