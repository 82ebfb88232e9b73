"""Reply handlers: every shape a Python callable may take, and --assistant parsing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from voxwire.services.replies import build_handler
from voxwire.services.reply_handlers import (
    AssistantError,
    AssistantNotFound,
    CallableHandler,
    EchoHandler,
    Turn,
    load_callable,
)
from voxwire.services.reply_openai_chat import OpenAIChatHandler

TURN = Turn(transcript="hello there", item_id="item_1")


def sync_text(turn: Turn) -> str:
    return f"text {turn.transcript}"


def sync_generator(turn: Turn) -> Iterator[str]:
    yield "one "
    yield "two"


async def async_text(turn: Turn) -> str:
    await asyncio.sleep(0)
    return "async text"


async def async_generator(turn: Turn) -> AsyncIterator[str]:
    yield "a "
    yield "b"


async def returns_async_iterator(turn: Turn) -> AsyncIterator[str]:
    return async_generator(turn)  # type: ignore[no-any-return]


def yields_bytes(turn: Turn) -> Iterator[bytes]:
    yield b"nope"


def reply_text(handler: CallableHandler | EchoHandler, turn: Turn = TURN) -> str:
    async def main() -> str:
        return "".join([chunk async for chunk in handler.reply(turn)])

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (sync_text, "text hello there"),
        (sync_generator, "one two"),
        (async_text, "async text"),
        (async_generator, "a b"),
        (returns_async_iterator, "a b"),
    ],
)
def test_every_callable_shape_streams_text(function: object, expected: str) -> None:
    assert reply_text(CallableHandler(function, "test")) == expected  # type: ignore[arg-type]


def test_a_callable_that_yields_no_text_is_an_assistant_error() -> None:
    with pytest.raises(AssistantError, match="bytes"):
        reply_text(CallableHandler(yields_bytes, "test"))


def test_echo_says_back_what_it_heard() -> None:
    assert reply_text(EchoHandler()) == "hello there"
    assert reply_text(EchoHandler(), Turn(transcript=" ", item_id=None)) != ""


def test_assistant_specs() -> None:
    assert isinstance(build_handler("echo"), EchoHandler)
    assert isinstance(build_handler("openai-chat"), OpenAIChatHandler)
    handler = load_callable("tests.services.test_reply_handlers:sync_text")
    assert handler.name == "tests.services.test_reply_handlers:sync_text"
    for bad, message in [
        ("parrot", "expected echo, local, openai-chat or module:function"),
        ("no_such_module_xyz:f", "cannot import"),
        ("tests.assistants:missing", "has no missing"),
        ("tests.assistants:STORY", "not callable"),
    ]:
        with pytest.raises(AssistantNotFound, match=message):
            build_handler(bad)
