"""Function calling and conversation control through the official `openai` SDK's
realtime client: a client tool round trip through an OpenAI-compatible chat server,
server-side Python tools, items created (text and audio) and deleted, bad tool schemas
refused."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import jiwer
import numpy as np
import pytest
import soxr
from openai import AsyncOpenAI

from tests import assistants, speech
from tests.e2e.console import normalise
from tests.fake_chat_server import TOOL_ARGUMENTS, FakeChat, fake_chat_server
from tests.live_server import LiveServer, live_server
from tests.realtime_client import pcm16
from voxwire.engine.audio import pcm16_to_float32
from voxwire.models.interfaces import TranscribeOptions
from voxwire.services.reply_openai_chat import ChatSettings
from voxwire.services.runtime import Runtime
from voxwire.transports.http.settings import ServerSettings

RATE = 24_000
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city now.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
QUESTION = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "What is the weather in Paris?"}],
}


@pytest.fixture(scope="module")
def chat() -> Iterator[FakeChat]:
    with fake_chat_server() as fake:
        yield fake


@pytest.fixture(scope="module")
def chat_server(runtime: Runtime, chat: FakeChat) -> Iterator[LiveServer]:
    settings = ServerSettings(assistant="openai-chat", chat=ChatSettings(base_url=chat.base_url))
    with live_server(runtime, settings) as live:
        yield live


@pytest.fixture(scope="module")
def tools_server(runtime: Runtime) -> Iterator[LiveServer]:
    with live_server(runtime, ServerSettings(assistant="tests.assistants:with_tools")) as live:
        yield live


def session(instructions: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "realtime",
        "instructions": instructions,
        "audio": {
            "input": {"turn_detection": None},
            "output": {"format": {"type": "audio/pcm", "rate": RATE}},
        },
        **extra,
    }


async def until(connection: Any, kind: str, events: list[Any], within: float = 60) -> Any:
    """Collect events up to the first of type `kind` (returned)."""
    async with asyncio.timeout(within):
        async for event in connection:
            events.append(event)
            if event.type == kind:
                return event
    raise AssertionError(f"the connection closed before {kind}")


@asynccontextmanager
async def connect(server: LiveServer) -> AsyncIterator[Any]:
    """A realtime connection of the official SDK to `server`."""
    client = AsyncOpenAI(api_key="unused", base_url=server.http_url + "/v1")
    async with client.realtime.connect(model="gpt-realtime") as connection:
        yield connection


async def text_session(connection: Any, events: list[Any], instructions: str) -> None:
    """Make the session answer in text, as `instructions` say."""
    await connection.session.update(session=session(instructions, output_modalities=["text"]))
    await until(connection, "session.updated", events)


def reply_counters(server: LiveServer) -> dict[str, int]:
    server.wait_until_idle()
    slots = server.server.config.app.state.realtime_slots  # type: ignore[attr-defined]
    return dataclasses.asdict(slots.finished_replies)


def test_a_client_tool_round_trip(chat_server: LiveServer, chat: FakeChat) -> None:
    before = reply_counters(chat_server)

    async def main() -> tuple[list[Any], list[Any]]:
        async with connect(chat_server) as connection:
            await connection.session.update(
                session=session("tools", tools=[WEATHER_TOOL], tool_choice="auto")
            )
            first: list[Any] = []
            updated = await until(connection, "session.updated", first)
            assert [t.name for t in updated.session.tools] == ["get_weather"]
            await connection.conversation.item.create(item=QUESTION)
            await connection.response.create(response={"tool_choice": "required"})
            await until(connection, "response.done", first)

            call = next(e.item for e in first if e.type == "response.output_item.done")
            await connection.conversation.item.create(
                item={
                    "type": "function_call_output",
                    "call_id": call.call_id,
                    "output": "sunny and eighteen degrees",
                }
            )
            await connection.response.create()
            second: list[Any] = []
            await until(connection, "response.done", second)
            return first, second

    first, second = asyncio.run(main())
    # The model asked for the tool: a function_call item, its arguments as they streamed.
    kinds = [e.type for e in first if e.type.startswith("response.")]
    assert kinds == [
        "response.created",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.done",
    ]
    added = next(e for e in first if e.type == "response.output_item.added")
    assert added.item.type == "function_call" and added.item.name == "get_weather"
    assert added.item.call_id == "call_fake1"
    done_args = next(e for e in first if e.type == "response.function_call_arguments.done")
    assert done_args.arguments == "".join(TOOL_ARGUMENTS) == '{"city": "Paris"}'
    response = first[-1].response
    assert response.status == "completed"
    assert [(o.type, o.name, o.arguments) for o in response.output] == [
        ("function_call", "get_weather", '{"city": "Paris"}')
    ]
    # The chat endpoint got the tools, then the call and its result as chat messages.
    asked, answered = chat.requests[-2:]
    assert asked["tools"][0]["function"]["name"] == "get_weather"
    assert asked["tools"][0]["function"]["parameters"] == WEATHER_TOOL["parameters"]
    assert asked["tool_choice"] == "required"  # this response's, then the session's
    assert answered["tool_choice"] == "auto"
    assert [m["role"] for m in answered["messages"]] == ["system", "user", "assistant", "tool"]
    assert answered["messages"][2]["tool_calls"][0]["id"] == "call_fake1"
    assert answered["messages"][3] == {
        "role": "tool",
        "tool_call_id": "call_fake1",
        "content": "sunny and eighteen degrees",
    }
    # The spoken answer uses the result.
    done = second[-1].response
    assert done.status == "completed"
    said = done.output[0].content[0].transcript
    assert "sunny and eighteen degrees" in said
    pcm = b"".join(
        base64.b64decode(e.delta) for e in second if e.type == "response.output_audio.delta"
    )
    audio = soxr.resample(pcm16_to_float32(pcm), RATE, 16_000).astype(np.float32)
    heard = chat_server.runtime.asr.transcribe(audio, TranscribeOptions(language="en")).text
    assert "sunny" in heard.lower(), heard
    # Both replies balance: a response that ends in a function call is completed.
    after = reply_counters(chat_server)
    assert after["responses"] - before["responses"] == 2
    assert after["completed"] - before["completed"] == 2


@pytest.mark.parametrize(
    ("tool", "result"),
    [
        ("weather", "sunny and 18 degrees in Paris"),
        ("broken", "the tool broken failed: the sensor is offline"),
        ("sleepy", "the tool sleepy did not finish within 0.5 s"),
    ],
)
def test_a_server_side_python_tool(tools_server: LiveServer, tool: str, result: str) -> None:
    before = reply_counters(tools_server)

    async def main() -> list[Any]:
        async with connect(tools_server) as connection:
            events: list[Any] = []
            await text_session(connection, events, tool)
            await connection.conversation.item.create(item=QUESTION)
            await connection.response.create()
            await until(connection, "response.done", events)
            # The session keeps working after a tool failed or timed out.
            await connection.session.update(session={"type": "realtime", "instructions": "weather"})
            await connection.conversation.item.create(item=QUESTION)
            await connection.response.create()
            again: list[Any] = []
            await until(connection, "response.done", again)
            assert "sunny and 18 degrees in Paris" in again[-1].response.output[0].content[0].text
            return events

    events = asyncio.run(main())
    response = events[-1].response
    assert response.status == "completed"
    message, call = response.output
    assert (call.type, call.name) == ("function_call", tool)
    assert message.content[0].text.startswith("Let me check.")
    assert result in message.content[0].text
    output = next(
        e.item
        for e in events
        if e.type == "conversation.item.added" and e.item.type == "function_call_output"
    )
    assert output.call_id == call.call_id and result in output.output
    turn = assistants.turns_seen[-3]  # the first response's second round
    assert {t.name for t in turn.tools} == {"weather", "broken", "sleepy"}
    assert [m.type for m in turn.since] == ["function_call", "function_call_output"]
    # Two responses, each with one call of a server tool; a failed run is counted.
    after = reply_counters(tools_server)
    grew = {k: after[k] - before[k] for k in after}
    assert grew["responses"] == grew["completed"] == 2
    assert grew["function_calls"] == grew["tool_runs"] == 2
    assert grew["tool_errors"] == (tool != "weather")


def test_items_are_created_and_deleted(tools_server: LiveServer) -> None:
    async def main() -> list[Any]:
        async with connect(tools_server) as connection:
            events: list[Any] = []
            await text_session(connection, events, "broken")
            note = {**QUESTION, "id": "note", "role": "system"}
            note["content"] = [{"type": "input_text", "text": "The user is in a hurry."}]
            await connection.conversation.item.create(item=note)
            await connection.conversation.item.create(item={**QUESTION, "id": "q1"})
            await connection.conversation.item.delete(item_id="note")
            deleted = await until(connection, "conversation.item.deleted", events)
            assert deleted.item_id == "note"
            await connection.conversation.item.delete(item_id="note", event_id="again")
            error = await until(connection, "error", events)
            assert (error.error.code, error.error.event_id) == ("item_not_found", "again")
            # Per-response instructions override the session's ("broken").
            await connection.response.create(response={"instructions": "weather"})
            await until(connection, "response.done", events)
            return events

    events = asyncio.run(main())
    text = events[-1].response.output[0].content[0].text
    assert "sunny and 18 degrees in Paris" in text
    turn = assistants.turns_seen[-1]
    assert turn.item_id == "q1" and turn.instructions == "weather"
    assert "hurry" not in str(turn.history)


def test_a_malformed_tool_schema_is_an_error_and_the_session_lives_on(
    tools_server: LiveServer,
) -> None:
    bad_tools: list[tuple[dict[str, Any], str]] = [
        (
            {"tools": [{**WEATHER_TOOL, "parameters": {"type": "object", "properties": 3}}]},
            "session.tools.0.parameters",
        ),
        (
            {"tools": [{**WEATHER_TOOL, "parameters": {"type": "strin"}}]},
            "session.tools.0.parameters",
        ),
        (
            {"tools": [{**WEATHER_TOOL, "parameters": {"type": "string"}}]},
            "session.tools.0.parameters",
        ),
        ({"tools": [{**WEATHER_TOOL, "name": "get weather"}]}, "session.tools.0.name"),
        ({"tools": [WEATHER_TOOL, WEATHER_TOOL]}, "session.tools.1.name"),
        ({"tools": [{**WEATHER_TOOL, "paramters": {}}]}, "session.tools.0.paramters"),
        ({"tool_choice": {"type": "function", "name": "nowhere"}}, "session.tool_choice"),
    ]

    async def main() -> None:
        async with connect(tools_server) as connection:
            events: list[Any] = []
            for update, param in bad_tools:
                await connection.session.update(session={"type": "realtime", **update})
                error = await until(connection, "error", events)
                assert error.error.type == "invalid_request_error", error
                assert error.error.param == param, error
            # A response's own tools are checked the same way.
            bad_response = {"tools": [{**WEATHER_TOOL, "parameters": {"type": "strin"}}]}
            await connection.response.create(response=bad_response)
            error = await until(connection, "error", events)
            assert error.error.param == "response.tools.0.parameters"
            # Nothing changed, and a good update and a reply still work.
            await connection.session.update(
                session=session("weather", tools=[WEATHER_TOOL], output_modalities=["text"])
            )
            updated = await until(connection, "session.updated", events)
            assert [t.name for t in updated.session.tools] == ["get_weather"]
            await connection.conversation.item.create(item=QUESTION)
            await connection.response.create()
            done = await until(connection, "response.done", events)
            assert done.response.status == "completed"
            assert not [e for e in events if e.type == "session.updated"][:-1]

    asyncio.run(main())


def test_an_audio_item_is_transcribed_and_answered(server: LiveServer) -> None:
    """The echo assistant says back what it heard in an audio item."""
    question = "Please turn on the lights in the kitchen."
    audio = pcm16(speech.utterances([question], lead_s=0.3, tail_s=0.3), RATE)

    async def main() -> list[Any]:
        async with connect(server) as connection:
            events: list[Any] = []
            await text_session(connection, events, "")
            item = {
                "type": "message",
                "role": "user",
                "id": "spoken",
                "content": [{"type": "input_audio", "audio": base64.b64encode(audio).decode()}],
            }
            await connection.conversation.item.create(item=item)
            await connection.response.create()  # waits for the transcript
            await until(connection, "response.done", events)
            return events

    events = asyncio.run(main())
    heard = next(
        e for e in events if e.type == "conversation.item.input_audio_transcription.completed"
    )
    assert heard.item_id == "spoken"
    assert jiwer.wer(normalise(question), normalise(heard.transcript)) <= 0.1, heard.transcript
    done_item = next(e.item for e in events if e.type == "conversation.item.done")
    assert done_item.id == "spoken" and done_item.content[0].transcript == heard.transcript
    assert events[-1].response.output[0].content[0].text == heard.transcript
