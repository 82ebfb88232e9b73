"""A small Realtime API test client on the `websockets` package: send events and
audio, wait for events by type."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr
from websockets.asyncio.client import ClientConnection, connect

from tests.speech import SAMPLE_RATE


def pcm16(audio: npt.NDArray[np.float32], rate: int = SAMPLE_RATE) -> bytes:
    """16 kHz float audio as PCM16 bytes at `rate`."""
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, SAMPLE_RATE, rate).astype(np.float32)
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class RealtimeTestClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def append(self, pcm: bytes, *, binary: bool = False) -> None:
        if binary:
            await self.ws.send(pcm)
        else:
            audio = base64.b64encode(pcm).decode()
            await self.send({"type": "input_audio_buffer.append", "audio": audio})

    async def stream(
        self, pcm: bytes, *, rate: int, chunk_ms: int = 100, speed: float = 0.0, binary: bool = True
    ) -> None:
        """Send PCM in chunks, at `speed` times real time (0: as fast as possible)."""
        step = rate * chunk_ms // 1000 * 2
        for i in range(0, len(pcm), step):
            await self.append(pcm[i : i + step], binary=binary)
            if speed:
                await asyncio.sleep(chunk_ms / 1000 / speed)

    async def update(self, **audio_input: Any) -> dict[str, Any]:
        """session.update of audio.input fields; returns session.updated."""
        await self.send(
            {
                "type": "session.update",
                "session": {"type": "transcription", "audio": {"input": audio_input}},
            }
        )
        return await self.next("session.updated")

    async def next(self, *types: str, within: float = 30.0) -> dict[str, Any]:
        """The next event of one of `types` (others are kept in `received`)."""
        async with asyncio.timeout(within):
            while True:
                event = json.loads(await self.ws.recv())
                self.received.append(event)
                if event["type"] in types:
                    return event

    async def error(self, within: float = 10.0) -> dict[str, Any]:
        """The next error's `error` object."""
        return (await self.next("error", within=within))["error"]  # type: ignore[no-any-return]

    async def transcripts(self, count: int, within: float = 60.0) -> list[str]:
        """The next `count` completed transcripts (a failure fails the test)."""
        texts = []
        while len(texts) < count:
            event = await self.next(
                "conversation.item.input_audio_transcription.completed",
                "conversation.item.input_audio_transcription.failed",
                within=within,
            )
            assert event["type"].endswith("completed"), event
            texts.append(event["transcript"])
        return texts

    async def stats(self) -> dict[str, int]:
        await self.send({"type": "voxwire.session.stats"})
        return (await self.next("voxwire.session.stats"))["counters"]  # type: ignore[no-any-return]


@asynccontextmanager
async def realtime(
    url: str, query: str = "?intent=transcription"
) -> AsyncIterator[RealtimeTestClient]:
    """Connect and consume session.created."""
    async with connect(url + query, max_size=None) as ws:
        client = RealtimeTestClient(ws)
        created = await client.next("session.created")
        assert created["session"]["id"].startswith("sess_")
        yield client
