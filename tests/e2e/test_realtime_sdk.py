"""The official `openai` SDK's realtime client, unchanged, against a live voxwire server."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import jiwer
from openai import AsyncOpenAI

from tests import speech
from tests.e2e.console import normalise
from tests.live_server import LiveServer
from tests.realtime_client import pcm16

RATE = 24_000
"""OpenAI's input rate, which the SDK's users send."""


async def transcribe_with_sdk(server: LiveServer, audio_24k: bytes, utterances: int) -> list[Any]:
    client = AsyncOpenAI(api_key="unused", base_url=server.http_url + "/v1")
    events: list[Any] = []
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        await connection.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": RATE},
                        "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    }
                },
            }
        )

        async def send() -> None:
            chunk = RATE // 10 * 2  # 100 ms
            for i in range(0, len(audio_24k), chunk):
                await connection.input_audio_buffer.append(
                    audio=base64.b64encode(audio_24k[i : i + chunk]).decode()
                )
                await asyncio.sleep(0.05)  # twice real time

        sender = asyncio.create_task(send())
        done = 0
        async with asyncio.timeout(120):
            async for event in connection:
                events.append(event)
                if event.type == "error":
                    raise AssertionError(f"server error: {event.error}")
                if event.type == "conversation.item.input_audio_transcription.completed":
                    done += 1
                    if done == utterances:
                        break
        await sender
    return events


def test_openai_sdk_transcription_session(server: LiveServer) -> None:
    audio = speech.utterances(list(speech.SENTENCES), lead_s=0.5, tail_s=1.5)
    events = asyncio.run(transcribe_with_sdk(server, pcm16(audio, RATE), len(speech.SENTENCES)))

    kinds = [e.type for e in events]
    assert kinds[0] == "session.created"
    assert events[0].session.type == "transcription"
    assert "session.updated" in kinds
    assert kinds.count("input_audio_buffer.speech_started") == 3
    assert kinds.count("input_audio_buffer.speech_stopped") == 3
    assert kinds.count("input_audio_buffer.committed") == 3
    completed = [
        e for e in events if e.type == "conversation.item.input_audio_transcription.completed"
    ]
    for e in completed:
        deltas = [
            d.delta
            for d in events
            if d.type == "conversation.item.input_audio_transcription.delta"
            and d.item_id == e.item_id
        ]
        assert deltas, "every item streams deltas"
        assert "".join(deltas) == e.transcript
        assert e.usage.type == "duration" and e.usage.seconds > 1.0
    # Deltas come while the person is still speaking, not only at the end.
    first_delta = kinds.index("conversation.item.input_audio_transcription.delta")
    assert first_delta < kinds.index("input_audio_buffer.speech_stopped")
    said = " ".join(speech.SENTENCES)
    heard = " ".join(e.transcript for e in completed)
    assert jiwer.wer(normalise(said), normalise(heard)) <= 0.10
