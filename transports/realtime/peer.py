"""What a Realtime session talks through: a peer that carries JSON events both ways,
and, for transports with a media track, a sink for reply audio.

The WebSocket endpoint and the WebRTC data channel are both :class:`EventPeer`s, so
one :class:`~voxwire.transports.realtime.websocket.RealtimeConnection` serves either.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

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
        """Close the channel (idempotent, never raises)."""
        ...


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
    """An accepted Starlette WebSocket as an :class:`EventPeer`."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def receive(self) -> str | bytes | None:
        try:
            message = await self.websocket.receive()
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
