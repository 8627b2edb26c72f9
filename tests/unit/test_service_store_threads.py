"""A store used from many short-lived threads (each job's event loop has its own) keeps one
connection per live thread, not one per thread that ever ran: 200 jobs used to leave 200 open
PostgreSQL connections and exhaust the server's limit."""

from __future__ import annotations

import threading
from pathlib import Path

from servers.store import open_store


def test_connections_of_finished_threads_are_closed(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    try:
        job, _ = store.create_job("alice", "scan", {"x": 1})
        for _ in range(30):
            thread = threading.Thread(target=store.get_job, args=(job.id, "alice"))
            thread.start()
            thread.join()
        assert store.get_job(job.id, "alice") is not None
        live = len(store._conns)  # type: ignore[attr-defined]
        assert live <= 3, f"{live} connections open for 2 live threads"
    finally:
        store.close()


def test_postgres_connections_of_finished_threads_are_closed(postgres_cluster: object) -> None:
    url = postgres_cluster.new_database()  # type: ignore[attr-defined]
    store = open_store(url)
    try:
        job, _ = store.create_job("alice", "scan", {"x": 1})
        for _ in range(30):
            thread = threading.Thread(target=store.get_job, args=(job.id, "alice"))
            thread.start()
            thread.join()
        assert store.get_job(job.id, "alice") is not None
        assert len(store._conns) <= 3  # type: ignore[attr-defined]
    finally:
        store.close()
