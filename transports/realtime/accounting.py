"""'Nothing lost' as checked accounting: the identities the Realtime sessions', their
replies' and the model workers' counters must satisfy once nothing is in flight.

The test suite checks them after every test on a live server (in-process counters);
`voxwire bench soak` checks them on a running server's /metrics. Each function takes
the counters by name and returns what does not balance (empty: the books balance).
"""

from __future__ import annotations

from collections.abc import Mapping

WORKER_OUTCOMES = ("completed", "failed", "superseded", "cancelled", "dropped", "refused")
"""Where every request submitted to a model worker ends, once its queue is empty."""


def session_problems(counters: Mapping[str, float], open_items: int = 0) -> list[str]:
    """Every input item that started ended exactly once (or is still open)."""
    ended = (
        counters["items_completed"]
        + counters["transcriptions_failed"]
        + counters["items_cleared"]
        + counters["items_abandoned"]
        + open_items
    )
    if counters["items_started"] != ended:
        return [f"items: {counters['items_started']} started, {ended} ended or open ({counters})"]
    return []


def reply_problems(counters: Mapping[str, float], active: int = 0) -> list[str]:
    """Every reply ended in done, cancelled or failed; every sample synthesised was
    sent or cancelled."""
    problems = []
    ended = counters["completed"] + counters["cancelled"] + counters["failed"] + active
    if counters["responses"] != ended:
        problems.append(f"replies: {counters['responses']} started, {ended} ended ({counters})")
    if not active and counters["samples_synthesized"] != (
        counters["samples_sent"] + counters["samples_cancelled"]
    ):
        problems.append(f"reply samples do not balance ({counters})")
    return problems


def slot_problems(opened: float, ended: Mapping[str, float], active: float) -> list[str]:
    """Every Realtime session opened has ended (by some reason) or is still open."""
    if opened != sum(ended.values()) + active:
        return [f"sessions: {opened} opened, {sum(ended.values())} ended + {active} active"]
    return []


def worker_problems(name: str, stats: Mapping[str, float], queued: float = 0) -> list[str]:
    """Every request submitted to an idle worker ended in exactly one outcome."""
    ended = sum(stats[outcome] for outcome in WORKER_OUTCOMES) + queued
    if stats["submitted"] != ended:
        return [f"worker {name}: {stats['submitted']} submitted, {ended} ended ({dict(stats)})"]
    return []
