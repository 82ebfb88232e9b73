"""`--assistant local`: a realtime session's spoken reply is written by the embedded chat
model (SmolLM2, offline) and spoken by Piper, with no chat server to start."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests import speech
from tests.live_server import LiveServer, live_server
from tests.realtime_client import pcm16, realtime
from tests.transports.realtime.test_realtime_replies import RATE, configure
from voxwire.services.runtime import Runtime
from voxwire.transports.http.settings import ServerSettings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_server(runtime: Runtime) -> Iterator[LiveServer]:
    with live_server(runtime, ServerSettings(assistant="local")) as live:
        yield live


def test_the_local_brain_speaks_a_reply_offline(local_server: LiveServer) -> None:
    async def main() -> None:
        async with realtime(local_server.ws_url, "?model=voxwire") as client:
            await configure(client, "You are a helpful assistant. Answer in one short sentence.")
            question = speech.utterances(["What is the capital of France?"], lead_s=0.3, tail_s=1.2)
            await client.stream(pcm16(question), rate=RATE, speed=2.0)
            await client.next("response.output_audio.delta", within=240)
            done = await client.next("response.done", within=240)
            assert done["response"]["status"] == "completed"
            content = done["response"]["output"][0]["content"][0]
            assert content["type"] == "output_audio" and content["transcript"].strip()
            assert content["transcript"].strip() != "What is the capital of France?"  # not echo

    asyncio.run(main())
