"""RealtimeConnection against a fake socket: what happens when the peer stops reading."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.websockets import WebSocketState

from voxwire.services.runtime import Runtime
from voxwire.transports.realtime.peer import WebSocketPeer
from voxwire.transports.realtime.protocol import SessionConfig
from voxwire.transports.realtime.websocket import RealtimeConnection, RealtimeLimits


class UnreadSocket:
    """A peer that sends events but never reads what the server writes."""

    application_state = WebSocketState.CONNECTED

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for message in messages:
            self.incoming.put_nowait(message)
        self.closed: tuple[int, str] | None = None
        self.sent = 0

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send_text(self, _text: str) -> None:
        self.sent += 1
        await asyncio.Event().wait()  # the peer's receive window never opens

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": code})


def test_a_peer_that_stops_reading_is_closed_not_buffered(runtime: Runtime) -> None:
    stats = {"type": "websocket.receive", "text": json.dumps({"type": "voxwire.session.stats"})}
    socket = UnreadSocket([stats] * 50)
    config = SessionConfig(type="transcription", session_id="sess_unread", model="m")
    limits = RealtimeLimits(max_queued_events=4)

    async def main() -> RealtimeConnection:
        connection = RealtimeConnection(WebSocketPeer(socket), runtime, config, limits)  # type: ignore[arg-type]
        async with asyncio.timeout(10):
            await connection.serve()
        return connection

    connection = asyncio.run(main())
    assert socket.closed is not None
    assert socket.closed[0] == 1008
    assert "not reading" in socket.closed[1]
    assert connection._outgoing.qsize() <= limits.max_queued_events
    # It stopped reading the flood once it gave up on the peer.
    assert not socket.incoming.empty()
