"""Spoken replies through the official `openai` SDK's realtime client, unchanged."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import jiwer
import numpy as np
import soxr
from openai import AsyncOpenAI

from tests import speech
from tests.e2e.console import normalise
from tests.live_server import LiveServer
from tests.realtime_client import pcm16
from voxwire.engine.audio import pcm16_to_float32
from voxwire.models.interfaces import TranscribeOptions

RATE = 24_000
QUESTION = "What time does the train leave tomorrow morning?"

RESPONSE_ORDER = [
    "response.created",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_audio.delta",
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.done",
]


async def ask(server: LiveServer, question_24k: bytes) -> list[Any]:
    """Speak a question into a realtime session; the events up to its response.done."""
    client = AsyncOpenAI(api_key="unused", base_url=server.http_url + "/v1")
    events: list[Any] = []
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.session.update(
            session={
                "type": "realtime",
                "instructions": "Answer briefly.",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": RATE},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": RATE}, "voice": "marin"},
                },
            }
        )

        async def send() -> None:
            chunk = RATE // 10 * 2
            for i in range(0, len(question_24k), chunk):
                await connection.input_audio_buffer.append(
                    audio=base64.b64encode(question_24k[i : i + chunk]).decode()
                )
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(send())
        async with asyncio.timeout(120):
            async for event in connection:
                events.append(event)
                assert event.type != "error", event
                if event.type == "response.done":
                    break
        await sender
    return events


def test_a_spoken_question_gets_a_spoken_echo(server: LiveServer) -> None:
    audio = speech.utterances([QUESTION], lead_s=0.5, tail_s=1.5)
    events = asyncio.run(ask(server, pcm16(audio, RATE)))
    kinds = [e.type for e in events]

    assert kinds[0] == "session.created" and events[0].session.type == "realtime"
    heard = next(
        e.transcript
        for e in events
        if e.type == "conversation.item.input_audio_transcription.completed"
    )
    # The events of the reply, in OpenAI's order.
    response_kinds = [k for k in kinds if k.startswith("response.")]
    firsts = [response_kinds.index(k) for k in RESPONSE_ORDER]
    assert firsts == sorted(firsts), response_kinds
    assert response_kinds[-1] == "response.done"
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("response.created")
    first_audio = response_kinds.index("response.output_audio.delta")
    assert response_kinds.index("response.output_audio_transcript.delta") < first_audio + 2
    done = events[-1].response
    assert done.status == "completed" and done.usage is not None and done.usage.output_tokens
    assert done.output[0].content[0].transcript == heard  # the echo handler says it back

    # The reply's audio, transcribed by the engine's own ASR, is the echo's text.
    said = next(e.transcript for e in events if e.type == "response.output_audio_transcript.done")
    pcm = b"".join(
        base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"
    )
    reply = soxr.resample(pcm16_to_float32(pcm), RATE, 16_000).astype(np.float32)
    text = server.runtime.asr.transcribe(reply, TranscribeOptions(language="en")).text
    assert jiwer.wer(normalise(said), normalise(text)) <= 0.10, (said, text)
    assert jiwer.wer(normalise(QUESTION), normalise(said)) <= 0.10
