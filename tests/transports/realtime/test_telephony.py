"""A G.711 call end to end: mu-law or A-law 8 kHz audio in, transcripts and a spoken
(echoed) reply in the same format out, heard again by the recogniser."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import jiwer
import numpy as np
import pytest
import soxr

from tests import speech
from tests.e2e.console import normalise
from tests.live_server import LiveServer
from tests.realtime_client import pcm16, realtime
from voxwire.models.interfaces import TranscribeOptions
from voxwire.services.g711 import decode, encode

SAID = speech.SENTENCES[1]


async def _call(server: LiveServer, fmt: str) -> tuple[dict[str, Any], str, bytes]:
    async with realtime(server.ws_url, "?model=gpt-realtime") as client:
        await client.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {
                        "input": {"format": {"type": fmt}},
                        "output": {"format": {"type": fmt}},
                    },
                },
            }
        )
        updated = (await client.next("session.updated"))["session"]
        audio = np.concatenate([speech.silence(0.5), speech.synthesize(SAID), speech.silence(1.0)])
        line = encode(pcm16(audio, 8000), fmt)  # type: ignore[arg-type]
        # 20 ms packets, as a telephone line sends them.
        for i in range(0, len(line), 160):
            await client.append(line[i : i + 160], binary=False)
        transcript = (await client.transcripts(1))[0]
        done = await client.next("response.done", within=60)
        assert done["response"]["status"] == "completed", done
        reply = b"".join(
            base64.b64decode(e["delta"])
            for e in client.received
            if e["type"] == "response.output_audio.delta"
        )
        return updated, transcript, reply


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
def test_g711_call_in_and_out(server: LiveServer, fmt: str) -> None:
    updated, transcript, reply = asyncio.run(_call(server, fmt))
    assert updated["audio"]["input"]["format"] == {"type": fmt}
    assert updated["audio"]["output"]["format"] == {"type": fmt}
    assert jiwer.wer(normalise(SAID), normalise(transcript)) <= 0.15
    # The reply is G.711: one byte per 8 kHz sample, and it says the transcript back.
    pcm = np.frombuffer(decode(reply, fmt), dtype="<i2").astype(np.float32) / 32768  # type: ignore[arg-type]
    assert len(reply) > 8000  # over a second of speech
    heard = server.runtime.asr.transcribe(
        soxr.resample(pcm, 8000, 16000).astype(np.float32), TranscribeOptions(language="en")
    ).text
    assert jiwer.wer(normalise(transcript), normalise(heard)) <= 0.25
