"""Server tools: a result, and the error results the model gets when a tool raises,
times out or is called with arguments that are not a JSON object."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from voxwire.services.tools import ServerTool, ToolCall, ToolOutput, server_tools, uses_tools


def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


async def text(word: str) -> str:
    return word * 2


def fails() -> str:
    raise ValueError("no such thing")


def blocks() -> str:
    time.sleep(1.0)
    return "late"


async def hangs() -> str:
    await asyncio.sleep(30)
    return "never"


def run(tool: ServerTool, arguments: str) -> ToolOutput:
    return asyncio.run(tool.run(ToolCall(tool.name, arguments)))


def test_results_are_text_for_the_model() -> None:
    assert json.loads(run(ServerTool(add), '{"a": 2, "b": 3}').text) == {"sum": 5}
    assert run(ServerTool(text), '{"word": "ha"}') == ToolOutput("haha")


@pytest.mark.parametrize(
    ("tool", "arguments", "error"),
    [
        (ServerTool(fails), "{}", "the tool fails failed: no such thing"),
        (ServerTool(add), '{"a": 1}', "the tool add failed"),
        (ServerTool(add), "[1, 2]", "the arguments must be a JSON object"),
        (ServerTool(add), "{nope", "the arguments are not JSON"),
        (ServerTool(hangs, timeout_s=0.2), "{}", "did not finish within 0.2 s"),
        (ServerTool(blocks, timeout_s=0.2), "{}", "did not finish within 0.2 s"),
    ],
)
def test_failures_are_error_results(tool: ServerTool, arguments: str, error: str) -> None:
    started = time.monotonic()
    output = run(tool, arguments)
    assert output.failed and error in json.loads(output.text)["error"]
    assert time.monotonic() - started < 10  # a hung tool is not waited for


def test_tools_are_checked_and_attached_to_a_reply_function() -> None:
    with pytest.raises(ValueError, match="tool name"):
        ServerTool(add, name="two words")
    with pytest.raises(ValueError, match="timeout_s"):
        ServerTool(add, timeout_s=0)
    tool = ServerTool(add, "Adds.", {"type": "object"})

    @uses_tools(tool)
    def reply(turn: object) -> str:
        return ""

    assert server_tools(reply) == (tool,)
    assert tool.spec.to_wire() == {
        "type": "function",
        "name": "add",
        "description": "Adds.",
        "parameters": {"type": "object"},
    }
