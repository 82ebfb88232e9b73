"""One SQLite file that a store opens per call: created and migrated on first use,
with sqlite errors turned into the store's own error type."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.errors import LocalError


class SqliteFile:
    """Opens `path` (creating its folder), runs `migrate` once, and hands out connections
    in autocommit mode (transactions are explicit: BEGIN IMMEDIATE ... COMMIT)."""

    def __init__(
        self,
        path: Path,
        migrate: Callable[[sqlite3.Connection], None],
        error: type[LocalError],
    ) -> None:
        self.path = path
        self._migrate = migrate
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
