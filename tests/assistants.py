"""Reply handlers for tests: `--assistant tests.assistants:scripted` behaves as the
session's `instructions` say ("story", "slow", "words", "fail", "not text"; anything
else echoes), so one server serves every reply test. `tests.assistants:with_tools`
calls the server tool its instructions name, then says what the tool returned."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from voxwire.services.reply_handlers import Turn
from voxwire.services.tools import ServerTool, ToolCall, uses_tools

STORY = " ".join(
    [
        "Once upon a time there was a lighthouse keeper who lived on a small island.",
        "Every evening she climbed the stairs and lit the great lamp at the top.",
        "Ships passed by in the dark and the sailors were grateful for the light.",
        "One winter a storm came and the waves rose higher than the rocks.",
        "She kept the lamp burning through the night until the sun came up again.",
        "In the morning the fishermen came to thank her with bread and warm soup.",
    ]
)

streams_closed: list[str] = []
"""Session ids whose slow stream was stopped before it finished."""
turns_seen: list[Turn] = []


def scripted(turn: Turn) -> Any:
    """Dispatch on the instructions (a sync function: its result is a str, an iterator or
    an async iterator, which voxwire all accept)."""
    turns_seen.append(turn)
    if turn.instructions == "story":
        return STORY
    if turn.instructions == "slow":
        return slow_stream(turn)
    if turn.instructions == "words":
        return words(turn)
    if turn.instructions == "fail":
        raise RuntimeError("the assistant crashed")
    if turn.instructions == "not text":
        return 42
    return turn.transcript


def words(turn: Turn) -> Iterator[str]:
    """A sync generator, one word at a time."""
    for word in f"You said {turn.transcript}".split():
        yield word + " "


async def slow_stream(turn: Turn) -> AsyncIterator[str]:
    """A sentence a second for a minute, like a slow LLM."""
    finished = False
    try:
        for i in range(60):
            yield f"This is sentence number {i + 1}. "
            await asyncio.sleep(1.0)
        finished = True
    finally:
        if not finished:
            streams_closed.append(turn.session_id)


def weather(city: str) -> str:
    """A server tool."""
    return f"sunny and 18 degrees in {city}"


def broken() -> str:
    raise RuntimeError("the sensor is offline")


async def sleepy() -> str:
    await asyncio.sleep(60)
    return "too late"


CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@uses_tools(
    ServerTool(weather, "The weather in a city now", CITY),
    ServerTool(broken, "Always fails"),
    ServerTool(sleepy, "Never finishes in time", timeout_s=0.5),
)
def with_tools(turn: Turn) -> Any:
    """Say a word, call the tool the instructions name, then say its output."""
    turns_seen.append(turn)
    outputs = [m.text for m in turn.since if m.type == "function_call_output"]
    if outputs:
        return f"The tool said {outputs[-1]}"
    arguments = json.dumps({"city": "Paris"}) if turn.instructions == "weather" else "{}"
    return iter(["Let me check. ", ToolCall(turn.instructions, arguments)])
