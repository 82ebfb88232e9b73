"""One SQLite file that a store opens per call: created and migrated on first use
(a `schema_version` table and numbered migrations), with sqlite errors turned into
the store's own error type."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from voxwire.engine.errors import LocalError


class SqliteFile:
    """Opens `path` (creating its folder), brings its schema to the last of `migrations`
    once, and hands out connections in autocommit mode (transactions are explicit:
    BEGIN IMMEDIATE ... COMMIT).

    `migrations` maps each schema version (1, 2, ...) to the statements that reach it
    from the version before.
    """

    def __init__(
        self,
        path: Path,
        migrations: Mapping[int, Sequence[str]],
        error: type[LocalError],
    ) -> None:
        self.path = path
        self._migrations = migrations
        self._error = error
        self._ready = False
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection for one call (threads never share one)."""
        try:
            db = self._open()
        except sqlite3.Error as exc:
            raise self._error(f"cannot open {self.path}: {exc}") from exc
        try:
            yield db
        except sqlite3.Error as exc:
            raise self._error(f"{self.path}: {exc}") from exc
        finally:
            db.close()

    def _open(self) -> sqlite3.Connection:
        with self._lock:
            if not self._ready:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise self._error(f"cannot create {self.path.parent}: {exc}") from exc
            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            if not self._ready:
                try:
                    self._migrate(db)
                except BaseException:
                    db.close()
                    raise
                self._ready = True
            return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        """One transaction, safe against a second process migrating at the same time."""
        latest = max(self._migrations)
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = int(row[0]) if row and row[0] is not None else 0
            if version > latest:
                raise self._error(
                    f"{self.path} has schema version {version}; this voxwire knows up to "
                    f"{latest} (it was written by a newer voxwire)"
                )
            for step in range(version + 1, latest + 1):
                for statement in self._migrations[step]:
                    db.execute(statement)
                db.execute("DELETE FROM schema_version")
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (step,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
