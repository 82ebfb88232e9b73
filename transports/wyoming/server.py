"""Serving Wyoming on `tcp://host:port`, `unix:///path` or `stdio://`, with the
`wyoming` package's servers and one :class:`WyomingConnection` per client."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from wyoming.server import AsyncServer, AsyncStdioServer

from voxwire.services import speakers
from voxwire.services.runtime import Runtime
from voxwire.services.slots import Slots
from voxwire.transports.wyoming.handler import WyomingConnection
from voxwire.transports.wyoming.limits import WyomingLimits
from voxwire.transports.wyoming.service import WyomingService

log = logging.getLogger(__name__)

SCHEMES = ("tcp", "unix", "stdio")


def check_uri(uri: str) -> str:
    """`uri` if the wyoming package can serve it; ValueError saying why not."""
    parsed = urlparse(uri)
    if parsed.scheme not in SCHEMES:
        raise ValueError(f"{uri!r}: use tcp://HOST:PORT, unix:///PATH or stdio://")
    if parsed.scheme == "tcp" and (parsed.hostname is None or parsed.port is None):
        raise ValueError(f"{uri!r}: a tcp:// URI needs a host and a port")
    if parsed.scheme == "unix" and not parsed.path:
        raise ValueError(f"{uri!r}: a unix:// URI needs a socket path")
    return uri


def build_service(
    runtime: Runtime, slots: Slots, *, max_connections: int, data_dir: Path
) -> WyomingService:
    """The Wyoming service on `runtime`, sharing `slots`; speakers from `data_dir`."""
    return WyomingService(
        runtime,
        slots,
        WyomingLimits(max_connections=max_connections),
        speakers=speakers.store_for(data_dir),
    )


class WyomingServers:
    """The listening servers of one process, started and stopped together."""

    def __init__(self, service: WyomingService, uris: Sequence[str]) -> None:
        self.service = service
        self.uris = tuple(check_uri(uri) for uri in uris)
        if any(urlparse(u).scheme == "stdio" for u in self.uris):
            raise ValueError("stdio:// is served alone: use serve_stdio")
        self._servers: list[AsyncServer] = []

    def _factory(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> WyomingConnection:
        return WyomingConnection(reader, writer, self.service)

    async def start(self) -> None:
        """Load the speech and wake-word models, then listen on every URI."""
        await self.service.prepare()
        for uri in self.uris:
            server = AsyncServer.from_uri(uri)
            await server.start(self._factory)
            self._servers.append(server)
            log.info("Wyoming listening on %s", uri)

    async def stop(self) -> None:
        """Stop listening and end every connection (their streams free their slots)."""
        servers, self._servers = self._servers, []
        await asyncio.gather(*(server.stop() for server in servers), return_exceptions=True)
        for _ in range(100):  # each closed connection frees its slot as it ends
            if not self.service.stats.connections_active:
                return
            await asyncio.sleep(0.05)
        log.warning("%d Wyoming connection(s) still closing", self.service.stats.connections_active)


async def serve_stdio(service: WyomingService) -> None:
    """One client on stdin/stdout (a parent process that runs `voxwire wyoming
    --uri stdio://`); the package's stdio server reads with its own, unbounded reader,
    so this is for a trusted parent only."""
    await service.prepare()
    server = AsyncStdioServer()
    await server.run(functools.partial(WyomingConnection, service=service))
