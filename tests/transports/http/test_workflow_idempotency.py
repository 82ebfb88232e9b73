"""Idempotency-Key on workflow creation: a create whose answer was lost (the server
stopped after the commit) is retried against a restarted server with the same key and
gets the same workflow, exactly one of which exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx

from tests.live_server import live_server
from voxwire.services.runtime import Runtime
from voxwire.services.sqlite_file import SqliteFile
from voxwire.services.workflow_store import (
    MIGRATIONS,
    IdempotencyKey,
    StoredWorkflow,
    WorkflowStore,
    WorkflowStoreError,
)
from voxwire.transports.http.settings import ServerSettings

DEFINITION = {"id": "idem_1", "nodes": [{"id": "speech", "model": "silero-speech"}]}


def create(url: str, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return httpx.post(url + "/v1/workflows", json=body, headers=headers, timeout=30)


def test_a_crash_and_retry_with_the_same_key_creates_one_workflow(
    runtime: Runtime, tmp_path: Path
) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    with live_server(runtime, settings) as first:
        lost = create(first.http_url, DEFINITION, "key-1")  # committed; say the answer is lost
        assert lost.status_code == 201, lost.text
    # the server is gone (a crash after the commit); a new one serves the same data
    with live_server(runtime, settings) as second:
        retry = create(second.http_url, DEFINITION, "key-1")
        assert retry.status_code == 201, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json() == lost.json()
        listed = httpx.get(second.http_url + "/v1/workflows", timeout=30).json()
        assert [w["id"] for w in listed["workflows"]] == ["idem_1"]

        other = {**DEFINITION, "nodes": [{"id": "asr", "model": "whisper-tiny.en"}]}
        reused = create(second.http_url, other, "key-1")
        assert reused.status_code == 422, reused.text
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        keyless = create(second.http_url, DEFINITION, None)
        assert keyless.status_code == 409  # without a key a retry is a conflict, as before
        bad = create(second.http_url, {**DEFINITION, "id": "idem_2"}, "x" * 256)
        assert bad.status_code == 400


def test_a_version_1_database_is_migrated_and_keeps_its_workflows(tmp_path: Path) -> None:
    path = tmp_path / "voxwire.db"
    with SqliteFile(path, {1: MIGRATIONS[1]}, WorkflowStoreError).connection() as db:
        db.execute("INSERT INTO workflows (id, definition, created_at) VALUES ('old', '{}', 't0')")
    store = WorkflowStore(path)
    key = IdempotencyKey("k", "digest")
    assert store.add_sync(StoredWorkflow("new", {}, "t1"), key) is None
    assert store.add_sync(StoredWorkflow("new-again", {}, "t2"), key) == StoredWorkflow(
        "new", {}, "t1"
    )
    assert [w.id for w in store.all_sync()] == ["old", "new"]
