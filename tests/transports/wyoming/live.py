"""A real Wyoming server on loopback (TCP and a unix socket), run in a background event
loop on the test run's shared runtime, and helpers that talk to it with the `wyoming`
package's own clients."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient, AsyncTcpClient
from wyoming.event import Event

from voxwire.engine.audio import float32_to_pcm16
from voxwire.services.runtime import Runtime
from voxwire.services.slots import Slots
from voxwire.transports.bench.stream import free_port
from voxwire.transports.wyoming.limits import WyomingLimits
from voxwire.transports.wyoming.server import WyomingServers
from voxwire.transports.wyoming.service import WyomingService

T = TypeVar("T")

EVENT_TIMEOUT_S = 60.0
"""How long a test waits for the next event before it fails (never a speed check)."""


@dataclass
class LiveWyoming:
    service: WyomingService
    slots: Slots
    port: int
    socket_path: Path
    loop: asyncio.AbstractEventLoop

    @property
    def tcp_uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def unix_uri(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self) -> AsyncTcpClient:
        return AsyncTcpClient("127.0.0.1", self.port)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "condition not met in time"
            time.sleep(0.02)

    def wait_until_idle(self, timeout: float = 30.0) -> None:
        """Until no connection is open and no audio stream holds a slot."""
        deadline = time.monotonic() + timeout
        stats = self.service.stats
        while time.monotonic() < deadline:
            if stats.connections_active == 0 and self.slots.in_use == 0:
                return
            time.sleep(0.05)
        raise AssertionError(
            f"not idle: {stats.connections_active} connections, {self.slots.in_use} slots"
        )


@contextmanager
def live_wyoming(
    runtime: Runtime, tmp: Path, limits: WyomingLimits | None = None, max_sessions: int = 8
) -> Iterator[LiveWyoming]:
    """Serve Wyoming on a free loopback port and a unix socket under `tmp`."""
    slots = Slots(max_sessions)
    service = WyomingService(runtime, slots, limits or WyomingLimits())
    port = free_port()
    socket_path = tmp / "wyoming.sock"
    servers = WyomingServers(service, [f"tcp://127.0.0.1:{port}", f"unix://{socket_path}"])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="wyoming-server", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(servers.start(), loop).result(120)
    try:
        yield LiveWyoming(service, slots, port, socket_path, loop)
    finally:
        asyncio.run_coroutine_threadsafe(servers.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def next_event(client: AsyncClient, within: float = EVENT_TIMEOUT_S) -> Event | None:
    async with asyncio.timeout(within):
        return await client.read_event()


async def events_until(client: AsyncClient, last: str) -> list[Event]:
    """Every event up to and including the first of type `last` (or an error)."""
    events: list[Event] = []
    while True:
        event = await next_event(client)
        assert event is not None, f"connection closed before {last}: {events}"
        events.append(event)
        if event.type in (last, "error"):
            return events


def pcm16(audio: npt.NDArray[np.float32], channels: int = 1) -> bytes:
    """Mono float32 as PCM16 with `channels` identical channels."""
    if channels == 1:
        return float32_to_pcm16(audio)
    return float32_to_pcm16(np.repeat(audio, channels))


async def send_audio(
    client: AsyncClient,
    audio: npt.NDArray[np.float32],
    rate: int,
    channels: int = 1,
    chunk_frames: int = 1024,
    start: bool = True,
    stop: bool = True,
) -> None:
    """audio-start (unless `start` is False), the audio in chunks, audio-stop (unless
    `stop` is False)."""
    if start:
        await client.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
    data = pcm16(audio, channels)
    step = chunk_frames * 2 * channels
    for offset in range(0, len(data), step):
        chunk = AudioChunk(
            rate=rate, width=2, channels=channels, audio=data[offset : offset + step]
        )
        await client.write_event(chunk.event())
    if stop:
        await client.write_event(AudioStop().event())
