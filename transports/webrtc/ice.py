"""ICE for WebRTC calls: the configured STUN/TURN servers, and loopback host candidates.

aioice gathers host candidates on every interface but loopback. :func:`include_loopback`
patches its address lookup so that a browser on this machine connects without a LAN; it is
applied once, when the server sets up its WebRTC endpoint (never at import), and is
idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aioice.ice
from aiortc import RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri


@dataclass(frozen=True)
class IceServer:
    """A STUN or TURN server (`stun:host:port`, `turn:host:port?transport=udp`, `turns:...`).

    aiortc uses the first STUN and the first TURN server it is given.
    """

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("an ICE server needs at least one URL")
        for url in self.urls:
            try:
                parsed = parse_stun_turn_uri(url)
            except ValueError:
                raise ValueError(
                    f"{url!r} is not a STUN or TURN URL (stun:HOST[:PORT], turn:HOST[:PORT], "
                    "turns:HOST[:PORT])"
                ) from None
            if parsed["scheme"] in ("turn", "turns") and not (self.username and self.credential):
                raise ValueError(f"TURN server {url!r} needs a username and a credential")

    def to_rtc(self) -> RTCIceServer:
        return RTCIceServer(
            urls=list(self.urls), username=self.username, credential=self.credential
        )


def ice_servers_from(
    urls: Sequence[str], username: str | None = None, credential: str | None = None
) -> tuple[IceServer, ...]:
    """One server per URL; `username`/`credential` go to the TURN ones (command line)."""
    servers = []
    for url in urls:
        turn = url.split(":", 1)[0].lower() in ("turn", "turns")
        servers.append(IceServer((url,), username if turn else None, credential if turn else None))
    return tuple(servers)


def include_loopback() -> None:
    """Make aioice offer 127.0.0.1 among its host candidates, so a browser on this
    machine connects even without a LAN (Chromium offers loopback candidates only with
    --allow-loopback-in-peer-connection). A process-wide patch of aioice: installed once,
    at server start (the WebRTC router calls it), never at import; idempotent."""
    original = aioice.ice.get_host_addresses
    if getattr(original, "voxwire_loopback", False):
        return

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses: list[str] = original(use_ipv4, use_ipv6)
        if use_ipv4 and "127.0.0.1" not in addresses:
            addresses.append("127.0.0.1")
        return addresses

    with_loopback.voxwire_loopback = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = with_loopback
