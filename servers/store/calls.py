"""The call cache kept in the job store's own database (`call_cache: store` in server.yaml).

Workers on several machines share a PostgreSQL store but not a disk, so a file cache would let
a job taken over on another machine repeat every call its first worker completed. Kept in the
store, the cache is shared wherever the queue is. Same keys and rows as `contam.cache.CallCache`
(it is one, to the runner), committed per batch as that one is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from contam.cache import CallCache
from servers.store.sql import SQLStore

_CHUNK = 500  # keys per IN (...) list: under SQLite's and PostgreSQL's parameter limits


class StoreCallCache(CallCache):
    def __init__(self, store: SQLStore) -> None:
        # Not CallCache.__init__: that opens a SQLite file, and the rows live in the store here.
        self.path = None
        self._store = store
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        store = self._store
        with store._read() as cur:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = store._ex(cur, f"SELECT key, response FROM call_cache WHERE key IN ({marks})", chunk)
                found.update((str(k), str(v)) for k, v in rows.fetchall())
        return found

    def put_many(self, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
        store = self._store
        with store._write() as cur:
            for row in rows:
                store._ex(
                    cur,
                    "INSERT INTO call_cache (key, model, kind, request, response, created) "
                    "VALUES (?, ?, ?, ?, ?, {now}) "
                    "ON CONFLICT (key) DO UPDATE SET response = excluded.response",
                    row,
                )

    def keys(self) -> set[str]:
        with self._store._read() as cur:
            return {str(k) for (k,) in self._store._ex(cur, "SELECT key FROM call_cache").fetchall()}

    def __len__(self) -> int:
        with self._store._read() as cur:
            (n,) = self._store._ex(cur, "SELECT count(*) FROM call_cache").fetchone()
        return int(n)

    def close(self) -> None:
        """Nothing of its own to close: the store's connections belong to the store."""
