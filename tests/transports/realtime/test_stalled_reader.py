"""A Realtime client that stops reading while a reply streams loses its session slot
within the send timeout, while its own socket is still open: the server aborts the
connection instead of waiting for a peer that never drains its buffers."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from tests.live_server import LiveServer, live_server
from voxwire.services.runtime import Runtime
from voxwire.transports.http.settings import ServerSettings
from voxwire.transports.realtime.websocket import RealtimeLimits

SEND_TIMEOUT_S = 2.0
FREED_WITHIN_S = SEND_TIMEOUT_S + 8.0
"""The send timeout, plus time to synthesise enough reply audio to fill the buffers."""
LONG_TEXT = " ".join(
    f"Sentence number {i} of a long answer that nobody is going to hear." for i in range(40)
)


@pytest.fixture(scope="module")
def stall_server(runtime: Runtime) -> Iterator[LiveServer]:
    """Replies go out as fast as they are synthesised (a long lead), so a client that
    does not read fills the socket buffers at once."""
    limits = RealtimeLimits(send_timeout_s=SEND_TIMEOUT_S, reply_audio_lead_s=600.0)
    with live_server(runtime, ServerSettings(realtime=limits)) as live:
        for listener in live.server.servers[0].sockets:  # accepted sockets inherit it
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
        yield live


class SilentClient:
    """A WebSocket client on a raw socket that sends events and never reads one."""

    def __init__(self, url: str) -> None:
        uri = parse_uri(url)
        self.protocol = ClientProtocol(uri)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((uri.host, uri.port))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.handshake_exc is None and not self._open():
            self.protocol.receive_data(self.sock.recv(4096))  # the 101 only
        assert self.protocol.handshake_exc is None

    def _open(self) -> bool:
        return self.protocol.state.name == "OPEN"

    def _flush(self) -> None:
        self.sock.sendall(b"".join(self.protocol.data_to_send()))

    def send(self, event: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(event).encode())
        self._flush()

    def still_open(self) -> bool:
        return self.sock.fileno() != -1

    def close(self) -> None:
        self.sock.close()


def health_active(server: LiveServer) -> int:
    body = httpx.get(server.http_url + "/health", timeout=10).json()
    return int(body["realtime_sessions"]["active"])


def ended(server: LiveServer, reason: str) -> float:
    text = httpx.get(server.http_url + "/metrics", timeout=10).text
    found = re.search(rf'voxwire_realtime_sessions_ended_total\{{reason="{reason}"\}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def test_a_client_that_never_reads_a_reply_loses_its_slot(stall_server: LiveServer) -> None:
    before = ended(stall_server, "send_timeout")
    client = SilentClient(stall_server.ws_url + "?model=voxwire")
    try:
        client.send({"type": "session.update", "session": {"type": "realtime"}})
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": LONG_TEXT}],
        }
        client.send({"type": "conversation.item.create", "item": item})
        client.send({"type": "response.create"})
        deadline = time.monotonic() + 10
        while health_active(stall_server) == 0:  # the session has opened
            assert time.monotonic() < deadline
            time.sleep(0.05)

        deadline = time.monotonic() + FREED_WITHIN_S
        while health_active(stall_server) > 0:
            assert time.monotonic() < deadline, "the silent client still holds its slot"
            time.sleep(0.1)
        assert client.still_open()  # the client never closed: the server let go
        stall_server.wait_until_idle()
        assert ended(stall_server, "send_timeout") == before + 1
    finally:
        client.close()
