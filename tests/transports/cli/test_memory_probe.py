"""The opt-in memory probe of `voxwire serve` (transports/cli/memory_probe.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxwire.transports.cli import memory_probe


class Held:
    """A type of which the test holds a known number of instances."""


def test_a_snapshot_counts_live_objects_by_type() -> None:
    before = dict(memory_probe.snapshot()["top_types"])  # type: ignore[call-overload]
    held = [Held() for _ in range(200_000)]
    record = memory_probe.snapshot()
    top = dict(record["top_types"])  # type: ignore[call-overload]
    assert top["Held"] - before.get("Held", 0) == len(held)
    assert record["objects"] >= sum(top.values())
    assert record["allocated_blocks"] >= len(held)  # type: ignore[operator]


def test_off_unless_the_environment_names_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memory_probe.ENVIRONMENT_VARIABLE, raising=False)
    assert memory_probe.start_memory_probe() is None


def test_on_it_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "memory.jsonl"
    monkeypatch.setenv(memory_probe.ENVIRONMENT_VARIABLE, str(target))
    assert memory_probe.start_memory_probe() == target
