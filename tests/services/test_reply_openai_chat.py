"""The openai-chat reply handler against a real OpenAI-compatible server on loopback:
streamed replies, the request it sends, failures as error events, and cancellation
that reaches the LLM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests import speech
from tests.fake_chat_server import ANSWER, FakeChat, fake_chat_server
from tests.live_server import LiveServer, live_server
from tests.realtime_client import RealtimeTestClient, pcm16, realtime
from voxwire.engine.conversation import Message
from voxwire.services.reply_handlers import AssistantError, Chunk, Turn
from voxwire.services.reply_openai_chat import (
    AssistantTimeout,
    AssistantUnavailable,
    ChatSettings,
    OpenAIChatHandler,
    ToolCallParts,
)
from voxwire.services.runtime import Runtime
from voxwire.services.tools import FunctionTool, ToolCall
from voxwire.transports.bench.stream import free_port
from voxwire.transports.http.settings import ServerSettings

TURN = Turn(
    transcript="Turn on the lights.",
    item_id="item_1",
    classifications=(
        {
            "type": "voxwire.classification",
            "item_id": "item_1",
            "classifier": "intent",
            "labels": [{"label": "lights", "score": 0.9}],
        },
    ),
    history=(Message("item_0", "user", "Hello."), Message("item_00", "assistant", "Hi!")),
    instructions="ok",
)


@pytest.fixture(scope="module")
def chat() -> Iterator[FakeChat]:
    with fake_chat_server() as fake:
        yield fake


async def collect(handler: OpenAIChatHandler, turn: Turn) -> str:
    try:
        return "".join([chunk async for chunk in handler.reply(turn)])
    finally:
        await handler.aclose()


def test_a_reply_streams_from_the_chat_endpoint(chat: FakeChat) -> None:
    settings = ChatSettings(base_url=chat.base_url, model="tiny-llm", api_key="k")
    text = asyncio.run(collect(OpenAIChatHandler(settings), TURN))
    assert text == "".join(ANSWER)
    body = chat.requests[-1]
    assert body["model"] == "tiny-llm" and body["stream"] is True
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "system", "user"]
    assert body["messages"][0]["content"] == "ok"
    assert "intent: lights (0.90)" in body["messages"][3]["content"]
    assert body["messages"][-1]["content"] == "Turn on the lights."


@pytest.mark.parametrize(
    ("instructions", "error", "timeout"),
    [("error", AssistantError, 5.0), ("slow", AssistantTimeout, 0.5)],
)
def test_failures_of_the_endpoint_are_assistant_errors(
    chat: FakeChat, instructions: str, error: type[Exception], timeout: float
) -> None:
    handler = OpenAIChatHandler(ChatSettings(base_url=chat.base_url, timeout_s=timeout))
    turn = Turn(transcript="hi", item_id=None, instructions=instructions)
    with pytest.raises(error):
        asyncio.run(collect(handler, turn))


def test_a_refused_connection_is_an_assistant_error() -> None:
    handler = OpenAIChatHandler(ChatSettings(base_url=f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(AssistantUnavailable):
        asyncio.run(collect(handler, TURN))


def test_cancelling_the_reply_closes_the_stream(chat: FakeChat) -> None:
    handler = OpenAIChatHandler(ChatSettings(base_url=chat.base_url))
    turn = Turn(transcript="go on", item_id=None, instructions="endless")

    async def main() -> None:
        chunks: list[str] = []
        streaming = asyncio.Event()

        async def read() -> None:
            async for chunk in handler.reply(turn):
                chunks.append(chunk)
                if len(chunks) == 2:
                    streaming.set()

        task = asyncio.create_task(read())
        await streaming.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await handler.aclose()

    asyncio.run(main())
    assert chat.wait_for_disconnect("endless")


# -- through a live voxwire server -------------------------------------------------------


@pytest.fixture(scope="module")
def chat_voxwire(runtime: Runtime, chat: FakeChat) -> Iterator[LiveServer]:
    settings = ServerSettings(
        assistant="openai-chat", chat=ChatSettings(base_url=chat.base_url, timeout_s=1.0)
    )
    with live_server(runtime, settings) as live:
        yield live


async def configure(client: RealtimeTestClient, instructions: str) -> None:
    await client.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": instructions,
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
        }
    )
    await client.next("session.updated")


async def answer(client: RealtimeTestClient) -> dict[str, object]:
    """Ask for a reply with "ok" instructions: the session must still work."""
    await configure(client, "ok")
    await client.send({"type": "response.create"})
    done = await client.next("response.done", within=30)
    assert done["response"]["status"] == "completed"
    return done


def test_a_spoken_turn_is_answered_by_the_llm(chat_voxwire: LiveServer) -> None:
    async def main() -> None:
        async with realtime(chat_voxwire.ws_url, "?model=voxwire") as client:
            await configure(client, "ok")
            audio = speech.utterances(["Please turn on the lights."], lead_s=0.3, tail_s=1.2)
            await client.stream(pcm16(audio), rate=16000, speed=2.0)
            heard = (await client.transcripts(1))[0]
            done = await client.next("response.done", within=30)
            output = done["response"]["output"][0]["content"][0]["transcript"]
            assert output == "".join(ANSWER)
            assert "lights" in heard.lower()

    asyncio.run(main())
    chat_voxwire.wait_until_idle()


@pytest.mark.parametrize(
    ("instructions", "code"), [("error", "assistant_failed"), ("slow", "assistant_timeout")]
)
def test_llm_failures_become_error_events(
    chat_voxwire: LiveServer, instructions: str, code: str
) -> None:
    async def main() -> None:
        async with realtime(chat_voxwire.ws_url, "?model=voxwire") as client:
            await configure(client, instructions)
            await client.send({"type": "response.create"})
            error = await client.error(within=30)
            assert error["code"] == code
            done = await client.next("response.done")
            assert done["response"]["status"] == "failed"
            await answer(client)

    asyncio.run(main())
    chat_voxwire.wait_until_idle()


def test_a_refused_llm_connection_is_an_error_event(runtime: Runtime) -> None:
    settings = ServerSettings(
        assistant="openai-chat", chat=ChatSettings(base_url=f"http://127.0.0.1:{free_port()}/v1")
    )

    async def main(url: str) -> None:
        async with realtime(url, "?model=voxwire") as client:
            await client.send({"type": "response.create"})
            assert (await client.error(within=30))["code"] == "assistant_unavailable"
            assert (await client.next("response.done"))["response"]["status"] == "failed"
            await client.stats()  # the session lives on

    with live_server(runtime, settings) as live:
        asyncio.run(main(live.ws_url))
        live.wait_until_idle()


def test_cancelling_a_reply_stops_the_llm(chat_voxwire: LiveServer, chat: FakeChat) -> None:
    async def main() -> None:
        async with realtime(chat_voxwire.ws_url, "?model=voxwire") as client:
            await configure(client, "endless")
            await client.send({"type": "response.create"})
            await client.next("response.output_audio.delta", within=30)
            await client.send({"type": "response.cancel"})
            done = await client.next("response.done")
            assert done["response"]["status"] == "cancelled"

    chat.disconnected.clear()
    asyncio.run(main())
    assert chat.wait_for_disconnect("endless")
    chat_voxwire.wait_until_idle()


WEATHER = FunctionTool("get_weather", "The weather now.", {"type": "object"})


def test_tools_go_to_the_endpoint_and_streamed_calls_come_back(chat: FakeChat) -> None:
    turn = Turn("Weather?", item_id="q", instructions="tools", tools=(WEATHER,))

    async def main() -> list[Chunk]:
        handler = OpenAIChatHandler(ChatSettings(base_url=chat.base_url))
        try:
            return [chunk async for chunk in handler.reply(turn)]
        finally:
            await handler.aclose()

    assert asyncio.run(main()) == [
        ToolCall("get_weather", '{"city": "Paris"}', call_id="call_fake1")
    ]
    body = chat.requests[-1]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather now.",
                "parameters": {"type": "object"},
            },
        }
    ]
    assert body["tool_choice"] == "auto"


def test_calls_and_outputs_become_chat_messages_in_order() -> None:
    call = Message("c", "assistant", "", "function_call", "call_1", "get_weather", "{}")
    other = Message("c2", "assistant", "", "function_call", "call_2", "get_time", "{}")
    output = Message("o", "tool", "sunny", "function_call_output", "call_1")
    output2 = Message("o2", "tool", "noon", "function_call_output", "call_2")
    orphan = Message("c3", "assistant", "", "function_call", "call_3", "get_weather", "{}")
    turn = Turn(
        "Weather?",
        item_id="q",
        history=(Message("h", "user", "Hi."), orphan),
        since=(call, other, output, output2),
        tools=(WEATHER,),
        tool_choice="get_weather",
    )
    body = OpenAIChatHandler(ChatSettings()).request_body(turn)
    assert body["messages"] == [
        {"role": "user", "content": "Hi."},  # the call without an output is left out
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_streamed_tool_call_parts_are_put_together() -> None:
    parts = ToolCallParts()
    parts.add([{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x"'}}])
    parts.add([{"index": 1, "id": "b", "function": {"name": "g"}}])
    parts.add([{"index": 0, "function": {"arguments": ": 1}"}}])
    assert parts.calls() == [ToolCall("f", '{"x": 1}', "a"), ToolCall("g", "{}", "b")]
    nameless = ToolCallParts()
    nameless.add([{"index": 0, "function": {"arguments": "{}"}}])
    with pytest.raises(AssistantError, match="without a function name"):
        nameless.calls()
