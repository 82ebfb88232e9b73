"""The scheduler: one worker per model, owning it, fed by a bounded priority queue.

Inference never runs on the event loop: each worker runs its model in a
thread of its own (CTranslate2, ONNX Runtime and torch release the GIL). Finals
overtake partials, oldest first; a newer partial of the same utterance supersedes a
queued older one, and so does that utterance's final (its partial is wasted work);
a speculative final that turns out to be the final is promoted to a final's
priority. Requests from several sessions are batched when the backend can, but
partial batches stay small (``max_partial_batch``): a batch that has started
cannot be interrupted, so a final arriving meanwhile waits for at most that much.
When the queue is full a partial is dropped (and counted) to make room, and a
final that still finds no room is refused with :class:`Overloaded`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from voxwire.engine.errors import Overloaded
from voxwire.models.errors import Cancelled

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Res = TypeVar("Res")


class Superseded(Exception):
    """The job was replaced by a newer one of the same key before it ran."""


class WorkerStopped(Exception):
    """The worker shut down before the job ran."""


@dataclass(order=True)
class _Entry(Generic[Req, Res]):
    priority: int
    seq: int
    request: Req = field(compare=False)
    key: str | None = field(compare=False)
    future: Future[Res] = field(compare=False)
    enqueued: float = field(compare=False, default=0.0)


@dataclass
class WorkerStats:
    """Counters a worker exposes to metrics and tests."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    superseded: int = 0
    cancelled: int = 0
    """Queued requests whose caller cancelled them before they ran (never run)."""
    stopped: int = 0
    """Running requests that stopped early because their caller gave them up
    (the model raised :class:`~voxwire.models.errors.Cancelled`)."""
    dropped: int = 0
    refused: int = 0
    batches: int = 0
    busy_seconds: float = 0.0
    max_batch_seen: int = 0


PRIORITY_FINAL = 0
PRIORITY_SPECULATIVE = 1
"""A final decode started before the utterance surely ended: a true final goes first."""
PRIORITY_PARTIAL = 2


class ModelWorker(Generic[Req, Res]):
    """Runs `run_batch` on a dedicated thread, serving a bounded priority queue."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[Req]], list[Res]],
        *,
        name: str = "model",
        max_queue: int = 64,
        max_batch_size: int = 1,
        max_partial_batch: int | None = None,
        threads: int = 1,
    ) -> None:
        """`threads` > 1 serves the queue from several threads at once; only for
        backends that allow concurrent calls (e.g. CTranslate2 with num_workers).
        `max_partial_batch` caps batches of requests below a final's priority
        (default: `max_batch_size`)."""
        max_partial_batch = max_batch_size if max_partial_batch is None else max_partial_batch
        if min(max_queue, max_batch_size, max_partial_batch, threads) < 1:
            raise ValueError(
                "max_queue, max_batch_size, max_partial_batch and threads must be at least 1"
            )
        self.name = name
        self.max_queue = max_queue
        self.max_batch_size = max_batch_size
        self.max_partial_batch = min(max_partial_batch, max_batch_size)
        self._run_batch = run_batch
        self._heap: list[_Entry[Req, Res]] = []
        self._by_key: dict[str, _Entry[Req, Res]] = {}
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stopping = False
        self._busy = 0
        self.stats = WorkerStats()
        self._threads = [
            threading.Thread(target=self._loop, name=f"voxwire-{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    # -- submitting ----------------------------------------------------------------------

    def submit(
        self,
        request: Req,
        *,
        priority: int,
        key: str | None = None,
        supersedes: str | None = None,
    ) -> Future[Res]:
        """Queue a request; returns a concurrent Future for its result.

        A request with the `key` of a queued request of the same priority replaces
        it (the old future fails with Superseded), and so does one that `supersedes`
        that key, whatever the old request's priority (a final replaces its
        utterance's queued partial).
        """
        future: Future[Res] = Future()
        with self._cond:
            if self._stopping:
                raise WorkerStopped(f"{self.name} worker is stopped")
            self.stats.submitted += 1
            if key is not None:
                old = self._by_key.get(key)
                if old is not None and old.priority == priority:
                    self._supersede(key)
            if supersedes is not None:
                self._supersede(supersedes)
            if len(self._heap) >= self.max_queue and not self._evict_one_partial():
                self.stats.refused += 1
                raise Overloaded(f"{self.name} queue is full ({self.max_queue} requests)")
            entry = _Entry(priority, next(self._seq), request, key, future, time.monotonic())
            heapq.heappush(self._heap, entry)
            if key is not None:
                self._by_key[key] = entry
            self._cond.notify()
        return future

    def promote(self, key: str, priority: int) -> bool:
        """Give the queued request of `key` a higher `priority` (a lower number),
        keeping its place among requests of that priority by age. Returns whether
        such a request was waiting."""
        with self._cond:
            entry = self._by_key.get(key)
            if entry is None or entry.priority <= priority:
                return False
            entry.priority = priority
            heapq.heapify(self._heap)
            return True

    async def run(self, request: Req, *, priority: int, key: str | None = None) -> Res:
        """Submit and await the result from asyncio code."""
        return await asyncio.wrap_future(self.submit(request, priority=priority, key=key))

    @property
    def queue_depth(self) -> int:
        with self._cond:
            return len(self._heap)

    @property
    def load(self) -> float:
        """Busyness in [0, 1]: 0 when idle, 1 once every thread is busy and as much
        work again waits in the queue."""
        with self._cond:
            depth = len(self._heap) + self._busy
        return min(1.0, depth / (2 * len(self._threads)))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work, fail what is queued, and join the thread."""
        with self._cond:
            self._stopping = True
            pending = list(self._heap)
            self._heap.clear()
            self._by_key.clear()
            self._cond.notify_all()
        for entry in pending:
            entry.future.set_exception(WorkerStopped(f"{self.name} worker stopped"))
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- internals -----------------------------------------------------------------------

    def _supersede(self, key: str) -> None:
        """Fail the queued request of `key` with Superseded (caller holds the lock)."""
        old = self._by_key.pop(key, None)
        if old is not None and self._remove(old):
            self.stats.superseded += 1
            old.future.set_exception(Superseded(key))

    def _remove(self, entry: _Entry[Req, Res]) -> bool:
        try:
            self._heap.remove(entry)
        except ValueError:
            return False
        heapq.heapify(self._heap)
        return True

    def _evict_one_partial(self) -> bool:
        """Make room by dropping the oldest queued request of the lowest priority below a
        final's (a partial before a speculative final; newer audio is worth more)."""
        victims = [e for e in self._heap if e.priority > PRIORITY_FINAL]
        if not victims:
            return False
        victim = min(victims, key=lambda e: (-e.priority, e.seq))
        self._remove(victim)
        if victim.key is not None and self._by_key.get(victim.key) is victim:
            del self._by_key[victim.key]
        self.stats.dropped += 1
        victim.future.set_exception(Overloaded(f"{self.name} queue full: partial dropped"))
        return True

    def _take_batch(self) -> list[_Entry[Req, Res]]:
        first = heapq.heappop(self._heap)
        batch = [first]
        size = self.max_batch_size if first.priority == PRIORITY_FINAL else self.max_partial_batch
        while self._heap and len(batch) < size and self._heap[0].priority == first.priority:
            batch.append(heapq.heappop(self._heap))
        for e in batch:
            if e.key is not None and self._by_key.get(e.key) is e:
                del self._by_key[e.key]
        return batch

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                taken = self._take_batch()
                batch = [e for e in taken if e.future.set_running_or_notify_cancel()]
                self.stats.cancelled += len(taken) - len(batch)
                if not batch:
                    continue
                self._busy += 1
            started = time.perf_counter()
            failed = stopped = 0
            try:
                results = self._run_batch([e.request for e in batch])
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"{self.name}: backend returned {len(results)} results for {len(batch)}"
                    )
            except Cancelled as exc:  # given up by its caller: neither a failure nor a result
                stopped = len(batch)
                for e in batch:
                    e.future.set_exception(exc)
            except Exception as exc:  # a model failure fails its jobs, never the worker
                log.exception("%s worker: batch of %d failed", self.name, len(batch))
                failed = len(batch)
                for e in batch:
                    e.future.set_exception(exc)
            else:
                for e, r in zip(batch, results, strict=True):
                    e.future.set_result(r)
            finally:
                elapsed = time.perf_counter() - started
                with self._cond:
                    self._busy -= 1
                    self.stats.failed += failed
                    self.stats.stopped += stopped
                    self.stats.completed += len(batch) - failed - stopped
                    self.stats.batches += 1
                    self.stats.busy_seconds += elapsed
                    self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(batch))
