"""A real voxwire server on a loopback port, run by uvicorn in a background thread.

Tests talk to it over real sockets and can look inside its event loop (tasks,
session slots, worker queues) to prove that nothing is left behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn

from voxwire.services.runtime import Runtime
from voxwire.transports.http.app import create_app
from voxwire.transports.http.settings import ServerSettings
from voxwire.transports.realtime import accounting

T = TypeVar("T")


@dataclass
class LiveServer:
    server: uvicorn.Server
    thread: threading.Thread
    port: int
    runtime: Runtime

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self.server_loop
        assert loop is not None
        return loop

    server_loop: asyncio.AbstractEventLoop | None = None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine inside the server's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def slots_in_use(self) -> int:
        app = self.server.config.app
        return int(app.state.realtime_slots.in_use)  # type: ignore[attr-defined]

    def session_tasks(self) -> list[str]:
        """Names of the server loop's tasks that belong to realtime sessions."""

        async def names() -> list[str]:
            return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("sess_")]

        return self.call(names())

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Wait until no realtime session, session task or queued decode remains."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worker = self.runtime.asr_worker
            if (
                self.slots_in_use() == 0
                and not self.session_tasks()
                and worker.queue_depth == 0
                and worker.load == 0.0
            ):
                return
            time.sleep(0.05)
        raise AssertionError(
            f"server not idle: {self.slots_in_use()} sessions, tasks {self.session_tasks()}, "
            f"queue {self.runtime.asr_worker.queue_depth}"
        )

    def check_books(self) -> None:
        """Once idle, the finished sessions' counters balance (realtime/accounting.py)."""
        self.wait_until_idle()
        slots = self.server.config.app.state.realtime_slots  # type: ignore[attr-defined]
        problems = accounting.session_problems(dataclasses.asdict(slots.finished))
        problems += accounting.reply_problems(dataclasses.asdict(slots.finished_replies))
        assert not problems, problems


@contextmanager
def live_server(runtime: Runtime, settings: ServerSettings | None = None) -> Iterator[LiveServer]:
    """Serve `runtime` on a free loopback port for the duration of the block."""
    settings = settings or ServerSettings()
    config = uvicorn.Config(
        create_app(runtime, settings),
        host="127.0.0.1",
        port=0,
        log_config=None,
        lifespan="off",
        **settings.uvicorn_options(),
    )
    server = uvicorn.Server(config)
    live = LiveServer(server=server, thread=threading.Thread(), port=0, runtime=runtime)

    def run() -> None:
        loop = asyncio.new_event_loop()
        live.server_loop = loop
        loop.run_until_complete(server.serve())
        loop.close()

    live.thread = threading.Thread(target=run, name="live-server", daemon=True)
    live.thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not live.thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    live.port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield live
    finally:
        server.should_exit = True
        live.thread.join(10)
