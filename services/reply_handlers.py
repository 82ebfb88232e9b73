"""Reply handlers: what turns a user's turn into the text of a spoken reply.

`voxwire serve --assistant` picks one (:func:`voxwire.services.replies.build_handler`):

* ``echo`` (the default, offline): says back what it heard;
* ``openai-chat``: streams from any OpenAI-compatible ``/v1/chat/completions``
  (see :mod:`voxwire.services.reply_openai_chat`);
* ``module:function``: a Python callable, sync or async, given a :class:`Turn` and
  returning a string or an (async) iterator of text chunks; it may also yield
  :class:`~voxwire.services.tools.ToolCall` objects, and run tools on the server
  (:func:`~voxwire.services.tools.uses_tools`).

Every handler streams text chunks; the session cuts them into sentences and speaks
each as soon as it is complete. Cancelling the iteration (barge-in) stops the
handler: an async generator is closed, a sync iterator is not advanced again.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from voxwire.engine.conversation import Message
from voxwire.engine.errors import LocalError
from voxwire.models.interfaces import AudioArray
from voxwire.services.tools import FunctionTool, ServerTool, ToolCall, server_tools

log = logging.getLogger(__name__)


class AssistantError(LocalError, code="assistant_failed"):
    """The reply handler failed (the session lives on)."""


class AssistantNotFound(LocalError, code="assistant_not_found"):
    """`--assistant` names no handler voxwire can load."""


@dataclass(frozen=True)
class Turn:
    """What a reply handler is asked to answer."""

    transcript: str
    """What the user just said ("" when a reply was asked for without a new turn)."""
    item_id: str | None
    classifications: tuple[dict[str, Any], ...] = ()
    """The `voxwire.classification` and `voxwire.speaker.identified` events of the item."""
    history: tuple[Message, ...] = ()
    """The conversation before this turn, oldest first."""
    since: tuple[Message, ...] = ()
    """Items after the turn's user item, oldest first: earlier answers to it, function
    calls made for it and their outputs (the model continues from there)."""
    tools: tuple[FunctionTool, ...] = ()
    """Functions the model may call (the session's and the handler's server tools)."""
    tool_choice: str = "auto"
    """auto, none, required, or the one function's name."""
    instructions: str = ""
    """The session's (or this response's) instructions."""
    session_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    audio: AudioArray | None = None
    """The user's turn as 16 kHz audio, for a handler that hears (``hears_audio``);
    None for other handlers and for a turn that is a text item."""


Chunk = str | ToolCall
"""What a handler streams: text, or a call of one of the turn's tools."""


class ReplyHandler(Protocol):
    """Streams the text of the reply to one turn (and the tool calls its model makes).

    A handler with a true ``hears_audio`` attribute is given the turn's audio
    (:attr:`Turn.audio`) as soon as the turn is committed, without waiting for its
    transcript.
    """

    name: str
    tools: tuple[ServerTool, ...]
    """Tools the server runs for this handler."""

    def reply(self, turn: Turn) -> AsyncIterator[Chunk]: ...

    async def aclose(self) -> None:
        """Release connections when the server stops."""
        ...


NOTHING_HEARD = "I did not hear anything."


class EchoHandler:
    """Says back what it heard: the offline default, for demos and tests."""

    name = "echo"
    tools: tuple[ServerTool, ...] = ()

    async def reply(self, turn: Turn) -> AsyncIterator[Chunk]:
        yield turn.transcript.strip() or NOTHING_HEARD

    async def aclose(self) -> None:
        return None


ReplyFunction = Callable[[Turn], Any]


class CallableHandler:
    """A Python function as a handler. It may be sync or async and return a string or
    a sync or async iterable of strings; sync work runs in a thread, off the event loop."""

    def __init__(self, function: ReplyFunction, name: str) -> None:
        self.function = function
        self.name = name
        self.tools = server_tools(function)

    async def reply(self, turn: Turn) -> AsyncIterator[Chunk]:
        try:
            if inspect.isasyncgenfunction(self.function):
                result: Any = self.function(turn)
            elif inspect.iscoroutinefunction(self.function):
                result = await self.function(turn)
            else:
                result = await asyncio.to_thread(self.function, turn)
            if inspect.isawaitable(result):
                result = await result
            async for chunk in _chunks(result, self.name):
                yield chunk
        except (AssistantError, GeneratorExit):
            raise
        except Exception as exc:
            log.warning("the assistant %s raised", self.name, exc_info=True)
            raise AssistantError(f"the assistant {self.name} raised {exc!r}") from exc

    async def aclose(self) -> None:
        return None


async def _chunks(result: Any, name: str) -> AsyncIterator[Chunk]:
    if isinstance(result, str | ToolCall):
        yield result
    elif hasattr(result, "__aiter__"):
        iterator: AsyncIterator[Any] = result
        try:
            async for chunk in iterator:
                yield _text(chunk, name)
        finally:
            close: Callable[[], Awaitable[None]] | None = getattr(iterator, "aclose", None)
            if close is not None:
                await close()
    elif isinstance(result, Iterable):
        items: Iterator[Any] = iter(result)
        done = object()
        while (chunk := await asyncio.to_thread(next, items, done)) is not done:
            yield _text(chunk, name)
    elif result is None:
        return
    else:
        raise AssistantError(
            f"the assistant {name} returned {type(result).__name__}, not text or an iterator"
        )


def _text(chunk: Any, name: str) -> Chunk:
    if not isinstance(chunk, str | ToolCall):
        raise AssistantError(f"the assistant {name} yielded {type(chunk).__name__}, not text")
    return chunk


def load_callable(spec: str) -> CallableHandler:
    """`package.module:function` as a handler."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AssistantNotFound(
            f"--assistant {spec!r}: expected echo, local, openai-chat or module:function"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AssistantNotFound(
            f"--assistant {spec!r}: cannot import {module_name}: {exc}"
        ) from exc
    function: Any = module
    for part in attribute.split("."):
        function = getattr(function, part, None)
        if function is None:
            raise AssistantNotFound(f"--assistant {spec!r}: {module_name} has no {attribute}")
    if not callable(function):
        raise AssistantNotFound(f"--assistant {spec!r}: {attribute} is not callable")
    return CallableHandler(function, spec)
