"""Idempotency keys for the requests that create state (a client's ``Idempotency-Key``,
as payment and cloud APIs take it): the pieces the SQLite stores share.

A key is stored in the same transaction as what its request created, with a digest of
the request, so a client that never saw the answer (the server crashed after the
commit) can retry with the same key and get the first answer, never a second
creation. The same key with a different request is refused (:class:`KeyReused`).

The workflow store keeps its keys beside the workflows (a key lives as long as its
workflow); a store whose requests do not map to one row each (a speaker enrolment may
add a sample to a speaker that exists) keeps the first answer in an
``idempotency_keys`` table (:data:`KEYS_TABLE`, :func:`replay`, :func:`remember`) for
:data:`KEY_TTL`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

KEY_TTL = timedelta(hours=24)
"""How long a key in an ``idempotency_keys`` table replays its first answer."""

KEYS_TABLE = """CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    request_digest TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
)"""
"""The migration statement of a store's table of keys and first answers."""


class KeyReused(Exception):
    """An idempotency key already used for a different request."""


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's key for one create, and a digest of the request it came with."""

    key: str
    request_digest: str

    def check(self, stored_digest: str) -> None:
        """KeyReused unless `stored_digest` (of the key's first request) is this one's."""
        if stored_digest != self.request_digest:
            raise KeyReused(self.key)


def replay(db: sqlite3.Connection, key: IdempotencyKey) -> dict[str, Any] | None:
    """The first answer stored for `key` (within its transaction on `db`), or None;
    KeyReused if the key came with another request."""
    row = db.execute(
        "SELECT request_digest, response FROM idempotency_keys WHERE key = ?", (key.key,)
    ).fetchone()
    if row is None:
        return None
    key.check(row[0])
    answer = json.loads(row[1])
    return answer if isinstance(answer, dict) else {}


def remember(db: sqlite3.Connection, key: IdempotencyKey, answer: dict[str, Any]) -> None:
    """Store `answer` as the first answer for `key` (in the caller's transaction), and
    forget the keys older than KEY_TTL."""
    now = datetime.now(UTC)
    db.execute("DELETE FROM idempotency_keys WHERE created_at < ?", ((now - KEY_TTL).isoformat(),))
    db.execute(
        "INSERT INTO idempotency_keys (key, request_digest, response, created_at) "
        "VALUES (?, ?, ?, ?)",
        (key.key, key.request_digest, json.dumps(answer), now.isoformat()),
    )
