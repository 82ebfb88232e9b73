"""'Nothing lost' as checked accounting: the identities every session's and every
reply's counters must satisfy once nothing is in flight."""

from __future__ import annotations

from collections.abc import Mapping


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
