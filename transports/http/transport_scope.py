"""Give a WebSocket's asyncio transport to the app, so a stalled peer can be aborted.

ASGI offers only a graceful `websocket.close`, which waits for the peer to read what
is buffered: a peer that never reads keeps it waiting for ever. uvicorn's `send` is a
bound method of its protocol object, which holds the transport; the outermost
middleware (the only one that sees uvicorn's own `send`) puts that transport in the
scope under :data:`~voxwire.transports.realtime.peer.TRANSPORT_SCOPE_KEY`. Under a
server that hides it, nothing is added and sessions fall back to their timeouts.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from voxwire.transports.realtime.peer import TRANSPORT_SCOPE_KEY


class ExposeTransport:
    """Put the connection's transport in every WebSocket scope (when it can be had)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if isinstance(transport, asyncio.Transport):
                scope[TRANSPORT_SCOPE_KEY] = transport
        await self.app(scope, receive, send)
