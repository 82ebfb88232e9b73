"""A voice assistant with a custom Python reply handler, and a client that talks to it.

This one file is both halves:

* the server side: `reply(turn)` below is a reply handler. voxwire calls it for every
  user turn of a realtime session and speaks what it yields, sentence by sentence, with
  its embedded Piper voice. Serve it (from the repository root) with

      PYTHONPATH=examples voxwire serve --assistant assistant:reply

* the client side: `python examples/assistant.py question.wav` opens a realtime session
  on `/v1/realtime` (raw `websockets`, OpenAI's GA events), speaks the audio file (a WAV
  of any rate and channel count, or anything FFmpeg decodes) into it at 24 kHz, prints
  what it heard and the reply text as it streams, counts the reply's audio bytes
  (`--save-reply reply.wav` keeps them) and exits once every reply is done. It needs
  common.py (in this folder) beside it: the file reading and command line the examples
  share.

Exit status 0 on success; 1 with a one-line message on stderr when the file cannot be
read, the server cannot be reached, it reports an error or a reply fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
import wave
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import common
from websockets.asyncio.client import ClientConnection

if TYPE_CHECKING:  # only the server has voxwire installed; the client does not need it
    from voxwire.services.reply_handlers import Turn

RATE = 24_000  # input and output audio: PCM16 mono at 24 kHz (OpenAI's rate)
CHUNK_S = 0.1  # 100 ms of audio per append
TAIL_S = 1.0  # silence after the file: the VAD needs 0.5 s to end the turn, plus margin


# -- the reply handler (runs inside `voxwire serve`) ---------------------------------------


async def reply(turn: Turn) -> AsyncIterator[str]:
    """Answer one user turn. `turn.transcript` is what was heard; `turn.history`,
    `turn.instructions` and `turn.classifications` (intent, sentiment, speaker when the
    session asked for them) are there too. Yield text: each sentence is synthesised as
    soon as it is complete, so the first is spoken while the rest is still being written
    (an LLM call would go here). Return a plain string instead if you prefer; a sync
    function runs in a thread."""
    heard = turn.transcript.strip()
    if not heard:
        yield "Sorry, I did not catch that."
        return
    yield f"You said {len(heard.split())} words."
    if "time" in heard.lower():
        yield f" It is {time.strftime('%H:%M')} here."
    else:
        yield " Ask me what time it is."


# -- the client ----------------------------------------------------------------------------


async def send_audio(ws: ClientConnection, pcm: bytes, realtime: bool) -> None:
    """Speak the file, then TAIL_S of silence so the server's VAD ends the turn (and
    answers it); then an empty `session.update`, whose `session.updated` comes after the
    events of all the audio: from then on no new turn can start."""
    pcm += bytes(int(RATE * TAIL_S) * 2)
    async for chunk in common.paced(pcm, RATE, CHUNK_S, realtime):
        await common.send_event(
            ws, "input_audio_buffer.append", audio=base64.b64encode(chunk).decode()
        )
    await common.send_event(ws, "session.update", session={"type": "realtime"})


async def converse(args: argparse.Namespace) -> None:
    """Speak the file to the assistant; keep the reply audio (PCM16 24 kHz mono) if asked."""
    pcm = common.read_audio(args.wav, RATE)
    # ?model=... opens a realtime session: it transcribes and answers every turn out loud.
    async with common.realtime_socket(args.url, "model=gpt-realtime", args.api_key) as ws:
        session = {
            "type": "realtime",
            "instructions": "Answer briefly.",  # the handler sees them as turn.instructions
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": RATE},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                },
                "output": {"format": {"type": "audio/pcm", "rate": RATE}},
            },
        }
        await common.send_event(ws, "session.update", session=session)
        audio = await common.while_sending(
            send_audio(ws, pcm, args.pace == "realtime"),
            print_conversation(ws),
            len(pcm) / 2 / RATE,
            args.timeout,
            "complete reply",
        )
    if args.save_reply:
        save_wav(args.save_reply, audio)
        print(f"reply audio saved to {args.save_reply}")


async def print_conversation(ws: ClientConnection) -> bytes:
    """Print each turn's transcript and its reply; return the reply audio once the file
    has been heard and no turn or reply is in progress any more."""
    updates = 0  # the first session.updated answers our set-up, the second the end
    turns: set[str] = set()  # user turns waiting for their transcript
    replies: dict[str, int] = {}  # responses in progress: audio bytes received
    said: set[str] = set()  # responses whose text has begun
    audio = bytearray()
    while True:
        idle = updates >= 2 and not turns and not replies
        try:
            # Once idle, wait a moment more: a reply queued behind another one is created
            # right after the one before it is done.
            message = await asyncio.wait_for(ws.recv(), 0.5 if idle else None)
        except TimeoutError:
            return bytes(audio)
        event: dict[str, Any] = json.loads(message)
        kind = event["type"]
        if kind == "error":
            raise common.ExampleError(f"server error: {event['error']['message']}")
        elif kind == "session.updated":
            updates += 1
        elif kind == "input_audio_buffer.speech_started":
            turns.add(event["item_id"])
        elif kind == "conversation.item.input_audio_transcription.completed":
            print(f"you: {event['transcript'].strip()}", flush=True)
            turns.discard(event["item_id"])
        elif kind == "conversation.item.input_audio_transcription.failed":
            print(f"you: [not transcribed: {event['error']['message']}]", flush=True)
            turns.discard(event["item_id"])
        elif kind == "response.created":
            replies[event["response"]["id"]] = 0
        elif kind == "response.output_audio_transcript.delta":
            if event["response_id"] not in said:  # the reply's first sentence
                said.add(event["response_id"])
                print("assistant:", end="", flush=True)
            print(" " + event["delta"].strip(), end="", flush=True)  # a sentence at a time
        elif kind == "response.output_audio.delta":
            chunk = base64.b64decode(event["delta"])  # PCM16 at RATE: play it, or keep it
            replies[event["response_id"]] = replies.get(event["response_id"], 0) + len(chunk)
            audio += chunk
        elif kind == "response.done":
            response = event["response"]
            size = replies.pop(response["id"], 0)
            end = "\n" if response["id"] in said else ""  # end the reply's line
            print(
                f"{end}[reply {response['status']}: {size} bytes, {size / 2 / RATE:.1f} s of audio]"
            )
            if response["status"] == "failed":
                raise common.ExampleError(f"the reply failed: {response.get('status_details')}")


def save_wav(path: str, pcm: bytes) -> None:
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(RATE)
        f.writeframes(pcm)


def main() -> int:
    parse = common.parser(__doc__, wav_help="audio file to speak (WAV of any rate, or any format)")
    parse.add_argument("--save-reply", metavar="WAV", help="write the reply audio to this file")
    return common.run(converse(parse.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
