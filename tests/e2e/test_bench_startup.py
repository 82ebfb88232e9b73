"""`voxwire bench startup`, run as the installed console script: the milestones of each
start come in order and the JSON says where they were measured."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.console import run


def test_bench_startup_times_each_milestone_in_order(tmp_path: Path) -> None:
    out = tmp_path / "startup.json"
    result = run("bench", "startup", "--runs", "2", "--output", out, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "start-up" in result.stdout and "all models ready" in result.stdout
    data = json.loads(out.read_text())
    assert data["benchmark"] == "startup" and data["machine"]["cpu_count"] >= 1
    assert len(data["load_average"]["before"]) == 3
    cold, warm = data["runs"]
    assert (cold["kind"], warm["kind"]) == ("cold", "warm")
    for one in (cold, warm):
        assert 0 < one["port_bound_s"] <= one["health_s"] <= one["all_ready_s"]
        assert one["health_s"] <= one["streaming_ready_s"] <= one["all_ready_s"]
        assert one["status"] == "ok" and one["failed"] == {}
        assert {"whisper-tiny.en", "piper-joe", "resemblyzer"} <= set(one["load_seconds"])
    assert data["warm"]["health_s"]["median"] == warm["health_s"]
