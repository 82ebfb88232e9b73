"""A small OpenAI-compatible chat server on loopback, streaming chunks in OpenAI's wire
format. What it does depends on the request's system message (the session's
instructions): "ok" answers, "error" fails with 500, "slow" waits before answering,
"endless" streams until the client goes away, "tools" calls the first tool offered
(arguments {"city": "Paris"}, streamed in pieces as OpenAI does) unless the request
already holds a tool result, which it then answers with."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voxwire.transports.bench.stream import free_port

ANSWER = ["Sure. ", "The lights ", "are on now."]


@dataclass
class FakeChat:
    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnected: list[str] = field(default_factory=list)
    """Behaviours whose stream the client closed before it ended."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def wait_for_disconnect(self, behaviour: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if behaviour in self.disconnected:
                return True
            time.sleep(0.05)
        return False


TOOL_ARGUMENTS = ['{"ci', 'ty": "Pa', 'ris"}']


def _chunk(
    content: str | None, finish: str | None = None, delta: dict[str, Any] | None = None
) -> bytes:
    delta = delta or ({} if content is None else {"content": content})
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def _app(state: FakeChat) -> Starlette:
    async def completions(request: Request) -> Response:
        body = await request.json()
        state.requests.append(body)
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "ok")
        if system == "error":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if system == "slow":
            await asyncio.sleep(5)

        async def stream() -> AsyncIterator[bytes]:
            finished = False
            try:
                yield b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
                if system == "tools":
                    async for chunk in _tool_stream(body):
                        yield chunk
                    finished = True
                    return
                if system == "endless":
                    for i in range(600):
                        yield _chunk(f"Sentence {i}. ")
                        await asyncio.sleep(0.2)
                for part in ANSWER:
                    yield _chunk(part)
                    await asyncio.sleep(0.02)
                yield _chunk(None, "stop")
                yield b"data: [DONE]\n\n"
                finished = True
            finally:
                if not finished:
                    state.disconnected.append(system)

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


async def _tool_stream(body: dict[str, Any]) -> AsyncIterator[bytes]:
    """Call the first tool, or answer with the last tool result."""
    results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
    if results:
        for part in ["The weather tool says: ", results[-1], "."]:
            yield _chunk(part)
            await asyncio.sleep(0.02)
        yield _chunk(None, "stop")
    else:
        name = body["tools"][0]["function"]["name"]
        first = {"index": 0, "id": "call_fake1", "type": "function"}
        yield _chunk(None, delta={"tool_calls": [{**first, "function": {"name": name}}]})
        for part in TOOL_ARGUMENTS:
            yield _chunk(
                None, delta={"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
            )
            await asyncio.sleep(0.02)
        yield _chunk(None, "tool_calls")
    yield b"data: [DONE]\n\n"


@contextmanager
def fake_chat_server() -> Iterator[FakeChat]:
    state = FakeChat(port=free_port())
    config = uvicorn.Config(_app(state), host="127.0.0.1", port=state.port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake chat server did not start")
        time.sleep(0.02)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(10)
