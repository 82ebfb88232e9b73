"""Workflow definitions persisted in SQLite (``<data_dir>/voxwire.db``).

The store keeps records and nothing else: validation belongs to
:mod:`voxwire.services.workflows`. Every call runs in a thread (``asyncio.to_thread``)
on a connection of its own, so the event loop never waits on the disk. The
database and its directory are created on first use; a ``schema_version`` table
records which migrations have run, and a database written by a newer voxwire is
refused rather than misread.

A create may carry an idempotency key (the client's ``Idempotency-Key``,
:mod:`voxwire.services.idempotency`): it is stored with the workflow in the same
transaction, so a client that never saw the
answer (the server crashed after the commit) can retry with the same key and get
the workflow it created, never a second one or a 409.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxwire.engine.errors import LocalError
from voxwire.services.idempotency import IdempotencyKey
from voxwire.services.sqlite_file import SqliteFile

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE workflows (
            id TEXT PRIMARY KEY,
            definition TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
    ),
    2: (
        "ALTER TABLE workflows ADD COLUMN idempotency_key TEXT",
        "ALTER TABLE workflows ADD COLUMN request_digest TEXT",
        "CREATE UNIQUE INDEX workflows_idempotency_key ON workflows (idempotency_key)",
    ),
}
"""The statements that take the schema from version n - 1 to n."""


class WorkflowStoreError(LocalError, code="workflow_store_error"):
    """The database cannot be opened, read or written."""


class DuplicateWorkflow(Exception):
    """A workflow with that id is already stored."""


class StoreFull(Exception):
    """The store holds as many workflows as it may."""


@dataclass(frozen=True)
class StoredWorkflow:
    """One stored workflow: its id, its definition (JSON-compatible) and when it was made."""

    id: str
    definition: dict[str, Any]
    created_at: str


class WorkflowStore:
    """Workflows in one SQLite file, at most `max_workflows` of them."""

    def __init__(self, path: Path, *, max_workflows: int = 1000) -> None:
        self.path = path
        self.max_workflows = max_workflows
        self._file = SqliteFile(path, MIGRATIONS, WorkflowStoreError)

    # -- the async API (each call in a worker thread) -------------------------------------

    async def add(
        self, workflow: StoredWorkflow, key: IdempotencyKey | None = None
    ) -> StoredWorkflow | None:
        """Store a new workflow; DuplicateWorkflow or StoreFull if it cannot be. With a
        `key` already stored for the same request: nothing is added and the workflow
        that key created is returned (KeyReused for another request)."""
        return await asyncio.to_thread(self.add_sync, workflow, key)

    async def get(self, workflow_id: str) -> StoredWorkflow | None:
        """The workflow of that id, or None."""
        return await asyncio.to_thread(self.get_sync, workflow_id)

    async def all(self) -> list[StoredWorkflow]:
        """Every stored workflow, oldest first."""
        return await asyncio.to_thread(self.all_sync)

    async def delete(self, workflow_id: str) -> bool:
        """Remove a workflow; False if there was none of that id."""
        return await asyncio.to_thread(self.delete_sync, workflow_id)

    # -- the same, blocking --------------------------------------------------------------

    def add_sync(
        self, workflow: StoredWorkflow, key: IdempotencyKey | None = None
    ) -> StoredWorkflow | None:
        with self._file.connection() as db:
            db.execute("BEGIN IMMEDIATE")
            if key is not None:
                row = db.execute(
                    "SELECT id, definition, created_at, request_digest FROM workflows "
                    "WHERE idempotency_key = ?",
                    (key.key,),
                ).fetchone()
                if row is not None:
                    db.execute("ROLLBACK")
                    key.check(row[3])
                    return _record(row[:3])
            (count,) = db.execute("SELECT COUNT(*) FROM workflows").fetchone()
            if count >= self.max_workflows:
                db.execute("ROLLBACK")
                raise StoreFull(f"the server holds its limit of {self.max_workflows} workflows")
            try:
                db.execute(
                    "INSERT INTO workflows (id, definition, created_at, idempotency_key, "
                    "request_digest) VALUES (?, ?, ?, ?, ?)",
                    (
                        workflow.id,
                        json.dumps(workflow.definition),
                        workflow.created_at,
                        None if key is None else key.key,
                        None if key is None else key.request_digest,
                    ),
                )
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise DuplicateWorkflow(workflow.id) from None
            db.execute("COMMIT")
        return None

    def get_sync(self, workflow_id: str) -> StoredWorkflow | None:
        with self._file.connection() as db:
            row = db.execute(
                "SELECT id, definition, created_at FROM workflows WHERE id = ?", (workflow_id,)
            ).fetchone()
        return None if row is None else _record(row)

    def all_sync(self) -> list[StoredWorkflow]:
        with self._file.connection() as db:
            rows = db.execute(
                "SELECT id, definition, created_at FROM workflows ORDER BY created_at, id"
            ).fetchall()
        return [_record(row) for row in rows]

    def delete_sync(self, workflow_id: str) -> bool:
        with self._file.connection() as db:
            cursor = db.execute("DELETE FROM workflows WHERE id = ?", (workflow_id,))
            return cursor.rowcount > 0


def _record(row: tuple[str, str, str]) -> StoredWorkflow:
    definition = json.loads(row[1])
    return StoredWorkflow(row[0], definition if isinstance(definition, dict) else {}, row[2])
