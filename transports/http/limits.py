"""Request bodies larger than `max_upload_bytes` get 413 and are never read whole.

:class:`BodyLimitMiddleware` is pure ASGI, so it covers every route:

* a `Content-Length` above the limit is answered with 413 at once, before a
  byte of the body is read;
* a body of unknown length (chunked) is counted as the app reads it; the read
  that passes the limit raises :class:`~voxwire.engine.errors.PayloadTooLarge` inside
  the app, whatever the app answers then is dropped, and the client gets the
  413 instead (unless the app had already started its response, in which case
  the connection is cut).

The 413 is in OpenAI's error shape (`code: payload_too_large`) and says
`Connection: close`, since the rest of the body is not read.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxwire.engine.errors import PayloadTooLarge
from voxwire.transports.http.middleware import HttpMiddleware

MiB = 1024 * 1024


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _limit_text(limit: int) -> str:
    if limit >= MiB and limit % MiB == 0:
        return f"{limit // MiB} MiB"
    return f"{limit} bytes"


def too_large_body(limit: int) -> bytes:
    """The 413 body in OpenAI's error shape."""
    return json.dumps(
        {
            "error": {
                "message": f"the request body is larger than the limit of {_limit_text(limit)}",
                "type": "invalid_request_error",
                "param": None,
                "code": PayloadTooLarge.code,
            }
        }
    ).encode()


async def send_too_large(send: Send, limit: int) -> None:
    """Answer 413 and ask the server to close the connection."""
    body = too_large_body(limit)
    await send(
        {
            "type": "http.response.start",
            "status": PayloadTooLarge.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware(HttpMiddleware):
    """413 for any HTTP request body above `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await send_too_large(send, self.max_bytes)
            return
        await _LimitedRequest(self.app, self.max_bytes)(scope, receive, send)


class _LimitedRequest:
    """One request whose body is counted as the app reads it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.received = 0
        self.exceeded = False
        self.response_started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def limited_receive() -> Message:
            if self.exceeded:
                raise PayloadTooLarge("request body too large")
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.max_bytes:
                    self.exceeded = True
                    raise PayloadTooLarge("request body too large")
            return message

        async def guarded_send(message: Message) -> None:
            if self.exceeded and not self.response_started:
                return  # the 413 below replaces whatever the app answers
            if message["type"] == "http.response.start":
                self.response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not self.exceeded or self.response_started:
                raise
        if self.exceeded and not self.response_started:
            self.response_started = True
            await send_too_large(send, self.max_bytes)
