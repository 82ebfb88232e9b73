"""The model worker: priorities, superseding, bounded queue, batching, failures.

A gate holds the worker's first batch so a test can arrange the queue behind it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from voxwire.engine.errors import Overloaded
from voxwire.engine.scheduler import (
    PRIORITY_FINAL,
    PRIORITY_PARTIAL,
    PRIORITY_SPECULATIVE,
    ModelWorker,
    Superseded,
    WorkerStopped,
)


class GatedModel:
    """Records batches; the first batch waits until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.batches: list[list[str]] = []

    def __call__(self, requests: Sequence[str]) -> list[str]:
        self.started.set()
        self.gate.wait(10)
        self.batches.append(list(requests))
        if "boom" in requests:
            raise RuntimeError("model exploded")
        return [r.upper() for r in requests]


def blocked_worker(**kwargs: int) -> tuple[ModelWorker[str, str], GatedModel]:
    model = GatedModel()
    worker: ModelWorker[str, str] = ModelWorker(model, name="test", **kwargs)
    worker.submit("hold", priority=PRIORITY_FINAL)
    assert model.started.wait(5)
    return worker, model


def test_finals_overtake_partials() -> None:
    worker, model = blocked_worker()
    p = worker.submit("partial", priority=PRIORITY_PARTIAL)
    f = worker.submit("final", priority=PRIORITY_FINAL)
    model.gate.set()
    assert f.result(5) == "FINAL" and p.result(5) == "PARTIAL"
    assert model.batches == [["hold"], ["final"], ["partial"]]
    worker.stop()


def test_true_finals_go_before_speculative_ones_and_partials_are_dropped_first() -> None:
    worker, model = blocked_worker(max_queue=3)
    spec = worker.submit("spec", priority=PRIORITY_SPECULATIVE)
    p = worker.submit("partial", priority=PRIORITY_PARTIAL)
    f = worker.submit("final", priority=PRIORITY_FINAL)
    worker.submit("final2", priority=PRIORITY_FINAL)  # the queue is full: the partial goes
    with pytest.raises(Overloaded):
        p.result(5)
    model.gate.set()
    assert f.result(5) == "FINAL" and spec.result(5) == "SPEC"
    assert model.batches == [["hold"], ["final"], ["final2"], ["spec"]]
    worker.stop()


def test_newer_partial_supersedes_queued_one_of_same_key() -> None:
    worker, model = blocked_worker()
    old = worker.submit("old", priority=PRIORITY_PARTIAL, key="item1")
    new = worker.submit("new", priority=PRIORITY_PARTIAL, key="item1")
    other = worker.submit("other", priority=PRIORITY_PARTIAL, key="item2")
    model.gate.set()
    with pytest.raises(Superseded):
        old.result(5)
    assert new.result(5) == "NEW" and other.result(5) == "OTHER"
    assert worker.stats.superseded == 1
    worker.stop()


def test_finals_go_oldest_first_across_sessions() -> None:
    worker, model = blocked_worker()
    p = worker.submit("p-a", priority=PRIORITY_PARTIAL, key="a:partial")
    f1 = worker.submit("f-b", priority=PRIORITY_FINAL, key="b:1")
    worker.submit("p-c", priority=PRIORITY_PARTIAL, key="c:partial")
    f2 = worker.submit("f-c", priority=PRIORITY_FINAL, key="c:2")
    model.gate.set()
    assert f1.result(5) == "F-B" and f2.result(5) == "F-C" and p.result(5) == "P-A"
    assert model.batches == [["hold"], ["f-b"], ["f-c"], ["p-a"], ["p-c"]]
    worker.stop()


def test_a_final_supersedes_its_utterances_queued_partial() -> None:
    worker, model = blocked_worker()
    mine = worker.submit("p-mine", priority=PRIORITY_PARTIAL, key="a:partial")
    other = worker.submit("p-other", priority=PRIORITY_PARTIAL, key="b:partial")
    final = worker.submit("f-mine", priority=PRIORITY_FINAL, key="a:1", supersedes="a:partial")
    model.gate.set()
    with pytest.raises(Superseded):
        mine.result(5)
    assert final.result(5) == "F-MINE" and other.result(5) == "P-OTHER"
    assert model.batches == [["hold"], ["f-mine"], ["p-other"]]
    assert worker.stats.superseded == 1
    worker.stop()


def test_superseding_a_partial_that_already_runs_changes_nothing() -> None:
    model = GatedModel()
    worker: ModelWorker[str, str] = ModelWorker(model, name="test")
    running = worker.submit("p", priority=PRIORITY_PARTIAL, key="a:partial")
    assert model.started.wait(5)
    final = worker.submit("f", priority=PRIORITY_FINAL, key="a:1", supersedes="a:partial")
    model.gate.set()
    assert running.result(5) == "P" and final.result(5) == "F"
    assert worker.stats.superseded == 0
    worker.stop()


def test_a_promoted_speculative_final_takes_its_place_among_finals_by_age() -> None:
    worker, model = blocked_worker()
    worker.submit("p", priority=PRIORITY_PARTIAL, key="a:partial")
    spec = worker.submit("spec-b", priority=PRIORITY_SPECULATIVE, key="b:1")
    worker.submit("spec-c", priority=PRIORITY_SPECULATIVE, key="c:2")
    worker.submit("final-d", priority=PRIORITY_FINAL, key="d:3")
    assert worker.promote("b:1", PRIORITY_FINAL)
    assert not worker.promote("b:1", PRIORITY_FINAL)  # already a final
    assert not worker.promote("unknown", PRIORITY_FINAL)
    model.gate.set()
    assert spec.result(5) == "SPEC-B"
    assert model.batches == [["hold"], ["spec-b"], ["final-d"], ["spec-c"], ["p"]]
    worker.stop()


def test_partial_batches_stay_small_so_finals_wait_little() -> None:
    worker, model = blocked_worker(max_batch_size=4, max_partial_batch=2)
    partials = [worker.submit(f"p{i}", priority=PRIORITY_PARTIAL) for i in range(5)]
    finals = [worker.submit(f"f{i}", priority=PRIORITY_FINAL) for i in range(3)]
    model.gate.set()
    assert [f.result(5) for f in partials + finals] == [
        "P0",
        "P1",
        "P2",
        "P3",
        "P4",
        "F0",
        "F1",
        "F2",
    ]
    assert model.batches[1:] == [["f0", "f1", "f2"], ["p0", "p1"], ["p2", "p3"], ["p4"]]
    worker.stop()


def test_partial_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_partial_batch"):
        ModelWorker(GatedModel(), max_partial_batch=0)


def test_full_queue_drops_oldest_partial_then_refuses_finals() -> None:
    worker, model = blocked_worker(max_queue=2)
    p1 = worker.submit("p1", priority=PRIORITY_PARTIAL)
    f1 = worker.submit("f1", priority=PRIORITY_FINAL)
    f2 = worker.submit("f2", priority=PRIORITY_FINAL)  # evicts p1
    with pytest.raises(Overloaded):
        p1.result(5)
    with pytest.raises(Overloaded, match="queue is full"):
        worker.submit("f3", priority=PRIORITY_FINAL)
    model.gate.set()
    assert f1.result(5) == "F1" and f2.result(5) == "F2"
    assert worker.stats.dropped == 1 and worker.stats.refused == 1
    worker.stop()


def test_batches_requests_of_equal_priority() -> None:
    worker, model = blocked_worker(max_batch_size=3)
    futures = [worker.submit(f"r{i}", priority=PRIORITY_PARTIAL) for i in range(5)]
    model.gate.set()
    assert [f.result(5) for f in futures] == ["R0", "R1", "R2", "R3", "R4"]
    assert model.batches[1:] == [["r0", "r1", "r2"], ["r3", "r4"]]
    worker.stop()


def test_model_failure_fails_its_batch_only() -> None:
    worker, model = blocked_worker()
    bad = worker.submit("boom", priority=PRIORITY_FINAL)
    good = worker.submit("fine", priority=PRIORITY_FINAL)
    model.gate.set()
    with pytest.raises(RuntimeError, match="exploded"):
        bad.result(5)
    assert good.result(5) == "FINE"
    assert worker.stats.failed == 1
    worker.stop()


def test_stop_fails_queued_work_and_refuses_new() -> None:
    worker, model = blocked_worker()
    queued = worker.submit("late", priority=PRIORITY_PARTIAL)
    worker.stop(timeout=0.1)  # the held batch is still running
    with pytest.raises(WorkerStopped):
        queued.result(5)
    model.gate.set()
    with pytest.raises(WorkerStopped):
        worker.submit("after", priority=PRIORITY_FINAL)


def test_asyncio_callers_await_results_off_the_loop() -> None:
    model = GatedModel()
    model.gate.set()
    worker: ModelWorker[str, str] = ModelWorker(model, name="async", max_batch_size=4)

    async def main() -> list[str]:
        return list(
            await asyncio.gather(
                *(worker.run(f"s{i}", priority=PRIORITY_PARTIAL) for i in range(6))
            )
        )

    assert asyncio.run(main()) == [f"S{i}" for i in range(6)]
    worker.stop()


def test_several_threads_serve_one_queue_concurrently() -> None:
    both_running = threading.Barrier(2, timeout=5)

    def model(requests: Sequence[str]) -> list[str]:
        both_running.wait()  # only passes if two batches run at the same time
        return [r.upper() for r in requests]

    worker: ModelWorker[str, str] = ModelWorker(model, name="pair", threads=2)
    a = worker.submit("a", priority=PRIORITY_PARTIAL)
    b = worker.submit("b", priority=PRIORITY_PARTIAL)
    assert (a.result(5), b.result(5)) == ("A", "B")
    assert worker.stats.completed == 2
    worker.stop()


def test_load_rises_from_idle_to_saturated() -> None:
    worker, model = blocked_worker()  # one thread, busy with the held batch
    assert worker.load == 0.5
    worker.submit("queued", priority=PRIORITY_PARTIAL)
    assert worker.load == 1.0
    model.gate.set()
    deadline = time.monotonic() + 5
    while worker.load > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.load == 0.0
    worker.stop()
