"""Request bodies above max_upload_bytes (25 MiB) get 413 in OpenAI's error shape: at once
for a Content-Length, and as soon as a chunked stream passes the limit (raw sockets and
httpx against the live server; plain ASGI calls to show the body is never read whole)."""

from __future__ import annotations

import asyncio
import json
import select
import socket
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.live_server import LiveServer
from voxwire.transports.http.limits import BodyLimitMiddleware
from voxwire.transports.http.settings import MiB

LIMIT = 25 * MiB
CHUNK = 256 * 1024
UPLOAD = "/v1/audio/transcriptions"


def check_413(status: int, body: bytes, limit: str = "25 MiB") -> None:
    assert status == 413
    error = json.loads(body)["error"]
    assert error["code"] == "payload_too_large"
    assert error["type"] == "invalid_request_error"
    assert error["message"] == f"the request body is larger than the limit of {limit}"


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, f"connection closed before a response: {data!r}"
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return int(lines[0].split()[1]), headers, body


def test_a_content_length_over_the_limit_is_refused_before_the_body(server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            f"boundary=b\r\nContent-Length: {26 * MiB}\r\n\r\n".encode()
        )
        status, headers, body = read_response(sock)  # not a byte of the body was sent
    check_413(status, body)
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"


def multipart_stream(total: int) -> Iterator[bytes]:
    """A multipart upload of a `total`-byte 'file', in CHUNK pieces."""
    yield (
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n"
    )
    sent = 0
    while sent < total:
        piece = min(CHUNK, total - sent)
        yield b"\0" * piece
        sent += piece
    yield b"\r\n--b--\r\n"


def test_a_chunked_stream_is_cut_off_at_the_limit(server: LiveServer) -> None:
    """The client offers 64 MiB; the server answers (and stops reading) long before."""
    total = 64 * MiB
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sent = 0
    stopped = False
    with sock:
        sock.sendall(
            f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode()
        )
        for piece in multipart_stream(total):
            if select.select([sock], [], [], 0)[0]:
                stopped = True  # the answer is there
                break
            try:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                stopped = True  # the server has closed its end
                break
            sent += len(piece)
        status, headers, body = read_response(sock)
    check_413(status, body)
    assert headers["connection"] == "close"
    assert stopped and LIMIT < sent < total


def test_an_httpx_streamed_upload_gets_413(server: LiveServer) -> None:
    with httpx.Client(base_url=server.http_url, timeout=30) as client:
        response = client.post(
            UPLOAD,
            content=multipart_stream(26 * MiB),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
    check_413(response.status_code, response.content)


def test_small_bodies_pass(server: LiveServer) -> None:
    response = httpx.post(server.http_url + "/health", content=b"x" * 1000, timeout=10)
    assert response.status_code == 405  # reached the route: not refused for its size


# -- plain ASGI: the body is counted as it streams and never read whole ---------------------


def endless_body(chunk: int = CHUNK) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"\0" * chunk, "more_body": True}

    return receive


def scope(**headers: str) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }


async def call(app: Any, scope: Scope, receive: Receive) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_an_endless_stream_is_stopped_just_past_the_limit() -> None:
    seen = 0

    async def reads_everything(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal seen
        while True:
            message = await receive()
            seen += len(message.get("body", b""))

    app = BodyLimitMiddleware(reads_everything, max_bytes=MiB)
    sent = asyncio.run(call(app, scope(), endless_body()))
    assert seen <= MiB  # the chunk that passes the limit never reaches the app
    assert sent[0]["status"] == 413
    check_413(sent[0]["status"], sent[1]["body"], "1 MiB")


def test_whatever_the_app_answers_after_the_limit_is_replaced_by_413() -> None:
    async def turns_errors_into_400(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            while True:
                await receive()
        except Exception:  # as FastAPI does with a body it cannot parse
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"bad body"})

    sent = asyncio.run(
        call(BodyLimitMiddleware(turns_errors_into_400, MiB), scope(), endless_body())
    )
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]


def test_a_response_already_started_is_cut_rather_than_replaced() -> None:
    async def streams_back(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await receive()

    with pytest.raises(Exception, match="too large"):
        asyncio.run(call(BodyLimitMiddleware(streams_back, MiB), scope(), endless_body()))


def test_content_length_within_the_limit_and_other_scopes_pass() -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = BodyLimitMiddleware(ok, max_bytes=10)
    assert (
        asyncio.run(call(app, scope(**{"content-length": "10"}), endless_body(1)))[0]["status"]
        == 204
    )
    assert (
        asyncio.run(call(app, scope(**{"content-length": "11"}), endless_body(1)))[0]["status"]
        == 413
    )
    websocket = {"type": "websocket", "path": "/", "headers": []}
    assert asyncio.run(call(app, websocket, endless_body(1)))[0]["status"] == 204
