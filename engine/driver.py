"""Drives a sans-I/O Session from asyncio: feeds audio, runs its decode jobs on a
worker, and hands the results back, emitting events in order.

Session work (resampling and the per-frame VAD) runs in a thread so the event
loop stays free; one lock keeps the session single-threaded.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np
import numpy.typing as npt

from voxwire.engine.errors import Overloaded
from voxwire.engine.events import Event, SpeechStopped, TranscriptionCompleted, TranscriptionFailed
from voxwire.engine.scheduler import (
    PRIORITY_FINAL,
    PRIORITY_PARTIAL,
    PRIORITY_SPECULATIVE,
    ModelWorker,
    WorkerStopped,
)
from voxwire.engine.session import DecodeJob, JobKind, Session
from voxwire.models.interfaces import DecodeRequest, DecodeResult

log = logging.getLogger(__name__)

_PRIORITIES = {
    JobKind.FINAL: PRIORITY_FINAL,
    JobKind.SPECULATIVE: PRIORITY_SPECULATIVE,
    JobKind.PARTIAL: PRIORITY_PARTIAL,
}
"""Someone waits on a final; a speculative final may save that wait; partials last."""

AsrWorker = ModelWorker[DecodeRequest, DecodeResult]

EventSink = Callable[[Sequence[Event], dict[str, float]], None]
"""Receives events as they happen, with wall-clock facts keyed by item id."""


def _discard(_events: Sequence[Event], _facts: dict[str, float]) -> None:
    return None


def _partial_key(item_id: str) -> str:
    return f"{item_id}:partial"


def _job_key(job: DecodeJob) -> str:
    """The worker key of a job: a newer partial of an item replaces its queued one;
    each final is its own."""
    return _partial_key(job.item_id) if not job.is_final else f"{job.item_id}:{job.job_id}"


class SessionDriver:
    """Connects one Session to an ASR worker inside a running event loop."""

    def __init__(self, session: Session, worker: AsrWorker, sink: EventSink) -> None:
        self.session = session
        self.worker = worker
        self._sink = sink
        self._lock = asyncio.Lock()
        self._outstanding: set[asyncio.Future[DecodeResult]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped_at: dict[str, float] = {}

    async def feed(self, samples: npt.NDArray[np.float32]) -> None:
        """Feed input-rate samples; events reach the sink as they occur."""
        self.session.load = self.worker.load
        await self.run(lambda session: session.feed(samples))

    async def run(self, action: Callable[[Session], Sequence[Event]]) -> None:
        """Run a session call (feed, commit, clear, reconfigure) off the event loop;
        its events reach the sink and its jobs the worker. Errors propagate."""
        async with self._lock:
            events = await asyncio.to_thread(action, self.session)
            self._deliver(events)
            self._dispatch()

    async def finish(self) -> None:
        """End of stream: close the open utterance and wait for every transcript."""
        async with self._lock:
            events = await asyncio.to_thread(self.session.end_of_stream)
            self._deliver(events)
            self._dispatch()
        # Completions may queue more work (a failed speculative decode asks for a
        # final), so wait until neither decodes nor their hand-backs remain.
        while self._outstanding or self._tasks:
            await asyncio.wait(self._outstanding | self._tasks)

    async def close(self) -> None:
        """The client is gone: cancel its queued decodes and stop delivering events.

        Cancelled jobs are skipped by the worker, so other sessions lose nothing.
        """
        self._sink = _discard
        for fut in list(self._outstanding):
            fut.cancel()
        if self._outstanding or self._tasks:
            await asyncio.wait(self._outstanding | self._tasks)

    def _dispatch(self) -> None:
        for job in self.session.take_promotions():
            # A speculative final turned out to be the final: someone waits on it now.
            self.worker.promote(_job_key(job), PRIORITY_FINAL)
        for job in self.session.take_jobs():
            priority = _PRIORITIES[job.kind]
            # A final (speculative or not) makes the utterance's queued partial useless.
            supersedes = _partial_key(job.item_id) if job.is_final else None
            try:
                cfut: Future[DecodeResult] = self.worker.submit(
                    job.request, priority=priority, key=_job_key(job), supersedes=supersedes
                )
            except (Overloaded, WorkerStopped) as exc:
                self._deliver(self.session.fail(job, exc))
                continue
            fut = asyncio.wrap_future(cfut)
            self._outstanding.add(fut)
            fut.add_done_callback(functools.partial(self._on_done, job))

    def _on_done(self, job: DecodeJob, fut: asyncio.Future[DecodeResult]) -> None:
        task = asyncio.get_running_loop().create_task(self._complete(job, fut))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _complete(self, job: DecodeJob, fut: asyncio.Future[DecodeResult]) -> None:
        try:
            async with self._lock:
                if fut.cancelled():
                    events = self.session.fail(job, asyncio.CancelledError())
                elif (exc := fut.exception()) is not None:
                    events = self.session.fail(job, exc)
                else:
                    events = self.session.complete(job, fut.result())
                self._deliver(events)
                self._dispatch()
        finally:
            self._outstanding.discard(fut)

    def _deliver(self, events: Sequence[Event]) -> None:
        if not events:
            return
        now = time.perf_counter()
        facts: dict[str, float] = {}
        for event in events:
            if isinstance(event, SpeechStopped):
                self._stopped_at[event.item_id] = now
            elif isinstance(event, TranscriptionCompleted | TranscriptionFailed):
                stopped = self._stopped_at.pop(event.item_id, None)
                if stopped is not None:
                    latency = (now - stopped) * 1000.0
                    facts[event.item_id] = latency
                    log.debug(
                        "%s: %s %.0f ms after speech_stopped",
                        self.session.session_id,
                        event.type.rsplit(".", 1)[-1],
                        latency,
                    )
        self._sink(events, facts)
