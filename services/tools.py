"""Function calling for replies: the tools a model may call, the calls it makes, and the
tools a Python reply handler runs on the server itself.

A session's tools (``session.tools`` on the Realtime API) are :class:`FunctionTool`
descriptions the reply handler passes to its model; a call the model makes comes back
as a :class:`ToolCall`. A call of a client's tool ends the response (the client runs it
and answers with a ``function_call_output`` item); a call of a :class:`ServerTool` is
run here, with a timeout, and its result goes back to the model in the same response.
A server tool that raises, times out or gets arguments that are not a JSON object gives
the model an error result; it never ends the session.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What OpenAI allows as a function name."""
MAX_OUTPUT_CHARS = 16_384
"""A server tool's result is cut to this length before the model sees it."""

ToolChoice = Literal["auto", "none", "required"] | str
"""auto, none, required, or the name of the one function the model must call."""


@dataclass(frozen=True)
class FunctionTool:
    """A function the model may call: its name, what it does, and its parameters as a
    JSON schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})

    def to_wire(self) -> dict[str, Any]:
        """The Realtime API's shape (``session.tools`` entries)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


@dataclass(frozen=True)
class ToolCall:
    """A call the model made: the function's name and its arguments as JSON text."""

    name: str
    arguments: str = "{}"
    call_id: str = field(default_factory=lambda: f"call_{secrets.token_hex(8)}")


@dataclass(frozen=True)
class ServerTool:
    """A tool a Python reply handler runs on the server: `function` (sync or async) is
    called with the call's arguments as keyword arguments; what it returns (text, or
    anything JSON can encode) is the result the model sees."""

    function: Callable[..., Any]
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    name: str = ""
    """Defaults to the function's name."""
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", getattr(self.function, "__name__", ""))
        if not TOOL_NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must match {TOOL_NAME.pattern}")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")

    @property
    def spec(self) -> FunctionTool:
        return FunctionTool(self.name, self.description, self.parameters)

    async def run(self, call: ToolCall) -> ToolOutput:
        """The result of one call, as text; failures become an error result."""
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            return _error(f"the arguments are not JSON: {exc.msg}")
        if not isinstance(arguments, dict):
            return _error("the arguments must be a JSON object")
        try:
            async with asyncio.timeout(self.timeout_s):
                if inspect.iscoroutinefunction(self.function):
                    result = await self.function(**arguments)
                else:
                    # A sync tool runs in a thread; past its timeout it is no longer
                    # waited for (a thread cannot be stopped; it finishes on its own).
                    result = await asyncio.to_thread(self.function, **arguments)
        except TimeoutError:
            log.warning("tool %s did not finish within %g s", self.name, self.timeout_s)
            return _error(f"the tool {self.name} did not finish within {self.timeout_s:g} s")
        except Exception as exc:
            log.warning("tool %s raised", self.name, exc_info=True)
            return _error(f"the tool {self.name} failed: {exc}")
        text = result if isinstance(result, str) else json.dumps(result, default=str)
        return ToolOutput(text[:MAX_OUTPUT_CHARS])


@dataclass(frozen=True)
class ToolOutput:
    """What a server tool gave the model: its result, or {"error": ...} if it failed."""

    text: str
    failed: bool = False


def _error(message: str) -> ToolOutput:
    return ToolOutput(json.dumps({"error": message}), failed=True)


F = TypeVar("F", bound=Callable[..., Any])


def uses_tools(*tools: ServerTool) -> Callable[[F], F]:
    """Give a reply function (``--assistant module:function``) tools it may call; the
    model sees them next to the session's tools, and the server runs them."""

    def mark(function: F) -> F:
        function.voxwire_tools = tuple(tools)  # type: ignore[attr-defined]
        return function

    return mark


def server_tools(obj: object) -> tuple[ServerTool, ...]:
    """The server tools `obj` (a reply function) was given with :func:`uses_tools`."""
    tools: Sequence[ServerTool] = getattr(obj, "voxwire_tools", ())
    return tuple(tools)
