"""One database connection per thread, shared by the SQLite and PostgreSQL stores."""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class ThreadConnections(Generic[C]):
    """This thread's connection, and every thread's, so `close_all` reaches them all.

    A connection outlives its thread (thread-local, and listed here): each job's event loop has
    threads of its own, so without pruning they would pile up by the job (PostgreSQL's "too many
    clients" after about 200 jobs). Adding a connection closes those of threads that have ended.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._owners: dict[C, threading.Thread] = {}
        self._lock = threading.Lock()

    def current(self) -> C | None:
        conn: C | None = getattr(self._local, "conn", None)
        return conn

    def add(self, conn: C) -> None:
        self._local.conn = conn
        with self._lock:
            self._owners[conn] = threading.current_thread()
            orphans = [c for c, thread in self._owners.items() if not thread.is_alive()]
            for orphan in orphans:
                del self._owners[orphan]
        for orphan in orphans:
            orphan.close()

    def __len__(self) -> int:
        """Connections open now (one per live thread that used the store, at most one more)."""
        return len(self._owners)

    def close_all(self) -> None:
        with self._lock:
            conns, self._owners = list(self._owners), {}
        for conn in conns:
            conn.close()
        self._local = threading.local()
