"""The SQLite job store: one file in WAL mode (readers never wait for the writer), a connection
per thread, writes in `BEGIN IMMEDIATE` transactions so a claim is atomic across processes."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from servers.store.base import StoreError
from servers.store.connections import ThreadConnections
from servers.store.sql import Cursor, SQLStore, migrations

# Seconds a writer waits for another's transaction before failing: claims and heartbeats are
# short, so a wait this long means something is stuck.
BUSY_TIMEOUT_MS = 10_000


class SQLiteStore(SQLStore):
    NOW = "((julianday('now') - 2440587.5) * 86400.0)"
    MIGRATIONS = migrations("INTEGER PRIMARY KEY AUTOINCREMENT")

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conns: ThreadConnections[sqlite3.Connection] = ThreadConnections()
        self._write_lock = threading.Lock()
        self._closed = False

    def _conn(self) -> sqlite3.Connection:
        conn = self._conns.current()
        if conn is None:
            if self._closed:
                raise sqlite3.ProgrammingError("the store is closed")
            # isolation_level=None: we issue BEGIN ourselves, so reads take no write lock.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable across process crashes in WAL mode
            self._conns.add(conn)
        return conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Cursor]:
        cur = self._conn().cursor()
        try:
            yield cur
        except sqlite3.OperationalError as exc:
            raise _store_error(exc, self.path) from exc
        finally:
            cur.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Cursor]:
        # Writers of this process queue on a lock: SQLite's busy handler would have them poll
        # with sleeps of up to 100 ms, and that polling, not the work, made the slow tail.
        # Other processes still meet at BEGIN IMMEDIATE and the busy timeout.
        with self._write_lock, self._transaction() as cur:
            yield cur

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        conn = self._conn()
        cur = conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # still locked after the busy timeout
            cur.close()
            raise _store_error(exc, self.path) from exc
        try:
            yield cur
        except sqlite3.OperationalError as exc:
            conn.rollback()
            raise _store_error(exc, self.path) from exc
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cur.close()

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def close(self) -> None:
        self._closed = True
        self._conns.close_all()


def _store_error(exc: sqlite3.OperationalError, path: Path) -> StoreError:
    """A locked, full or unreadable database is the store's failure (503), not a bug."""
    return StoreError(f"the SQLite store {path} failed: {exc}")
