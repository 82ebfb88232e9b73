"""What a Realtime session talks through: a peer that carries JSON events both ways,
and, for transports with a media track, a sink for reply audio.

The WebSocket endpoint and the WebRTC data channel are both :class:`EventPeer`s, so
one :class:`~voxwire.transports.realtime.websocket.RealtimeConnection` serves either.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState


class EventPeer(Protocol):
    """A client's event channel."""

    async def receive(self) -> str | bytes | None:
        """The next text event or binary audio frame; None once the peer is gone."""
        ...

    async def send(self, text: str) -> None:
        """Send one JSON event; may wait for the peer (raises once it is gone)."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close the channel (idempotent, never raises); may wait for the peer."""
        ...

    def abort(self) -> None:
        """Drop the channel at once, without waiting for the peer (idempotent)."""
        ...


TRANSPORT_SCOPE_KEY = "voxwire.transport"
"""Where :class:`~voxwire.transports.http.transport_scope.ExposeTransport` puts the
connection's asyncio transport in a WebSocket scope, so a session can abort it."""

CLOSING_POLL_S = 1.0
"""How often a waiting receive checks whether the server already gave the socket up."""


class AudioSink(Protocol):
    """Where reply audio goes on transports with an outgoing audio track (WebRTC).

    Without one, replies travel as `response.output_audio.delta` events.
    """

    rate: int
    """The sample rate `write` takes."""

    async def played(self) -> None:
        """Return once every sample written so far has been played (or discarded)."""
        ...

    async def write(self, pcm16: bytes) -> None:
        """Queue PCM16 mono audio for playback; waits while the queue is full."""
        ...

    def discard(self) -> int:
        """Drop every queued sample at once (barge-in, cancel); returns how many."""
        ...


class WebSocketPeer:
    """An accepted Starlette WebSocket as an :class:`EventPeer`.

    With the connection's transport in the scope (uvicorn, through ExposeTransport),
    :meth:`abort` drops the TCP connection at once, and :meth:`receive` returns None
    once the server has given the socket up (a keepalive timeout, a close frame sent)
    but the peer, not reading, keeps it from closing.
    """

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._transport: Any = getattr(websocket, "scope", {}).get(TRANSPORT_SCOPE_KEY)

    async def receive(self) -> str | bytes | None:
        while True:
            try:
                async with asyncio.timeout(CLOSING_POLL_S if self._transport else None):
                    message = await self.websocket.receive()
                break
            except TimeoutError:
                if self._transport.is_closing():  # closed by the server, never drained
                    self.abort()
                    return None
            except (WebSocketDisconnect, RuntimeError):
                return None
        if message["type"] == "websocket.disconnect":
            return None
        data: bytes | None = message.get("bytes")
        if data is not None:
            return data
        text: str | None = message.get("text")
        return text if text is not None else b""

    async def send(self, text: str) -> None:
        await self.websocket.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        if self.websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.websocket.close(code, reason)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
