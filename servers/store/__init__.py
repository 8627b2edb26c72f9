"""Job stores: `open_store(url)` picks SQLite (`sqlite:///PATH`) or PostgreSQL (`postgresql://...`)."""

from __future__ import annotations

from servers.store.base import (
    JobKind,
    JobRecord,
    JobStatus,
    JobStore,
    KeyRecord,
    Progress,
    StoreError,
    TooManyJobs,
)


def open_store(url: str) -> JobStore:
    """The store at `url`, migrated to the latest schema version."""
    store: JobStore
    if url.startswith("sqlite:///"):
        from servers.store.sqlite import SQLiteStore

        store = SQLiteStore(url.removeprefix("sqlite:///"))
    elif url.startswith(("postgresql://", "postgres://")):
        from servers.store.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise StoreError(f"unknown store URL {url!r}: expected sqlite:///PATH or postgresql://...")
    store.migrate()
    return store


__all__ = [
    "JobKind",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "KeyRecord",
    "Progress",
    "StoreError",
    "TooManyJobs",
    "open_store",
]
