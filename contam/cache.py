"""Persistent call cache: one SQLite file, one row per completed model call.

Keyed by model identity and the full request (every parameter, seed included), so a re-run
or a scan resumed after a crash never repeats a call it already completed, and a changed
model never reads another model's answers. Each batch is committed as soon as it returns.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def call_key(model_key: str, kind: str, request_json: str) -> str:
    return hashlib.sha256(f"{model_key}\x00{kind}\x00{request_json}".encode()).hexdigest()


def cache_root() -> Path:
    """`$CONTAM_CACHE_DIR`, else `~/.cache/contam`: the call cache and the weight-digest memo."""
    import os

    root = os.environ.get("CONTAM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "contam")
    return Path(root)


def default_cache_path() -> Path:
    return cache_root() / "calls.sqlite"


class CallCache:
    """Thread-safe SQLite cache. `path=None` keeps it in memory (tests, `--no-cache`)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", check_same_thread=False)
        if self.path is not None:
            # WAL: a reader (a second scan) never blocks the writer; NORMAL is durable across a
            # killed process, which is the failure we guard against.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, response FROM calls WHERE key IN ({marks})", chunk)
                found.update(rows.fetchall())
        return found

    def put_many(self, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
        """Rows of (key, model, kind, request json, response json); committed at once."""
        now = time.time()
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO calls (key, model, kind, request, response, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(*row, now) for row in rows],
            )
            self._db.commit()

    def keys(self) -> set[str]:
        with self._lock:
            return {k for (k,) in self._db.execute("SELECT key FROM calls")}

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()
