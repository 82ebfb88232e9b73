"""`--assistant local` on a native audio LLM (`--chat-model` a Qwen2-Audio directory): the
reply handler hears the user's turn itself, with no transcription step, and its text
is spoken sentence by sentence. On a tiny random model built here (its words mean
nothing); the reply must be spoken, complete, and the session's books balance."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests import speech
from tests.live_server import LiveServer, live_server
from tests.realtime_client import pcm16, realtime
from tests.tiny_audio_llms import build_qwen2_audio
from tests.transports.realtime.test_realtime_replies import RATE, configure
from voxwire.models.interfaces import ChatMessage
from voxwire.models.registry import EMBEDDED_MODELS, chat_model_spec
from voxwire.services import reply_local
from voxwire.services.reply_handlers import Turn
from voxwire.services.runtime import Runtime
from voxwire.transports.http.settings import ServerSettings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def native_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    spec = chat_model_spec(str(build_qwen2_audio(tmp_path_factory.mktemp("qwen") / "qwen")))
    runtime = Runtime.load(specs=[*EMBEDDED_MODELS, spec], defaults={"text-generation": spec.id})
    try:
        with live_server(runtime, ServerSettings(assistant="local")) as live:
            yield live
    finally:
        runtime.close()


def test_the_handler_hears_the_turn_and_speaks_the_reply(
    native_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[int] = []
    messages = reply_local.NativeAudioHandler.messages

    def spy(self: reply_local.NativeAudioHandler, turn: Turn) -> list[ChatMessage]:
        heard.append(0 if turn.audio is None else len(turn.audio))
        return messages(self, turn)

    monkeypatch.setattr(reply_local.NativeAudioHandler, "messages", spy)

    question = speech.utterances(["What is the capital of France?"], lead_s=0.3, tail_s=1.2)

    async def main() -> None:
        async with realtime(native_server.ws_url, "?model=voxwire") as client:
            await configure(client, "You are a helpful assistant.")
            await client.stream(pcm16(question), rate=RATE, speed=2.0)
            await client.next("response.output_audio.delta", within=240)
            done = await client.next("response.done", within=240)
            assert done["response"]["status"] == "completed"
            content = done["response"]["output"][0]["content"][0]
            assert content["type"] == "output_audio" and content["transcript"].strip()

    asyncio.run(main())
    # The model was given the turn's audio (about the question's length), not a transcript.
    assert len(heard) == 1 and RATE < heard[0] < len(question)
