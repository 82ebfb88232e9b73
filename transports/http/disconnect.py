"""Work nobody waits for stops: an HTTP request whose client hangs up is cancelled.

:class:`CancelOnDisconnect` is pure ASGI. Once the app has read the whole request
body, a watcher waits for the server's `http.disconnect`; if it comes before the
response is complete, the app's task is cancelled, so a decode or transcription
in progress stops at its next await (the work on a model worker stops at its next
window, queued windows are never run) instead of running on for nobody. The app's
own later `receive()` calls (a streaming response listening for the disconnect)
are answered by the watcher, so the server's receive is never awaited twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxwire.transports.http.middleware import HttpMiddleware

log = logging.getLogger(__name__)

DISCONNECT: Message = {"type": "http.disconnect"}


class CancelOnDisconnect(HttpMiddleware):
    """Cancel a request's handler the moment its client disconnects."""

    def __init__(self, app: ASGIApp, on_cancel: Callable[[Scope], None] | None = None) -> None:
        """`on_cancel(scope)` is called for every request cancelled this way (metrics)."""
        super().__init__(app)
        self.on_cancel = on_cancel

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _Request(self, scope, receive, send).run()


class _Request:
    """One request: its app task and the watcher of its connection."""

    def __init__(self, owner: CancelOnDisconnect, scope: Scope, receive: Receive, send: Send):
        self.owner = owner
        self.scope = scope
        self.receive = receive
        self.send = send
        self.body_read = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.response_done = False

    async def run(self) -> None:
        app: asyncio.Task[None] = asyncio.create_task(self._run_app())
        watcher = asyncio.create_task(self.watch(app))
        try:
            await app
        except asyncio.CancelledError:
            if not self.disconnected.is_set():
                raise  # cancelled from outside (server shutdown), not by the watcher
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if not app.done():
                app.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await app

    async def _run_app(self) -> None:
        await self.owner.app(self.scope, self.app_receive, self.app_send)

    async def app_receive(self) -> Message:
        if self.body_read.is_set():
            await self.disconnected.wait()  # the watcher owns the server's receive now
            return DISCONNECT
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.disconnected.set()
        elif not message.get("more_body", False):
            self.body_read.set()
        return message

    async def app_send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.response_done = True
        await self.send(message)

    async def watch(self, app: asyncio.Task[None]) -> None:
        await self.body_read.wait()
        message = await self.receive()  # blocks until the client goes (or the answer ends)
        if message["type"] != "http.disconnect":
            return
        self.disconnected.set()
        if not self.response_done and not app.done():
            log.info("client of %s %s hung up; cancelling its work", *_what(self.scope))
            if self.owner.on_cancel is not None:
                self.owner.on_cancel(self.scope)
            app.cancel()


def _what(scope: Scope) -> tuple[str, str]:
    return str(scope.get("method", "")), str(scope.get("path", ""))
