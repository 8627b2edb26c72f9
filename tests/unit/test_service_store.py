"""The job store's contract, on SQLite and on a real PostgreSQL server alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contam.errors import InputError
from servers.store import JobStatus, Progress, StoreError, TooManyJobs, open_store
from servers.store.sql import SQLStore
from servers.store.sqlite import SQLiteStore
from tests.fixtures.postgres import PostgresCluster


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database()


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    s = open_store(store_url)
    assert isinstance(s, SQLStore)
    yield s
    s.close()


def test_migrate_is_idempotent_and_reports_latest(store: SQLStore) -> None:
    latest = len(store.MIGRATIONS)
    assert store.schema_version() == latest
    assert store.migrate() == latest


def test_upgrade_from_v1_keeps_jobs(store_url: str) -> None:
    s = _bare(store_url)
    assert s.migrate(target=1) == 1
    with s._write() as cur:  # jobs written by the v1 code: no call progress columns yet
        for i in range(3):
            s._ex(
                cur,
                "INSERT INTO jobs (id, owner, kind, status, request, created_at, updated_at, items_done) "
                "VALUES (?, 'alice', 'scan', 'queued', ?, {now}, {now}, ?)",
                (f"job{i}", '{"model": "mock"}', i),
            )
    s.close()
    upgraded = open_store(store_url)
    try:
        assert isinstance(upgraded, SQLStore)
        assert upgraded.schema_version() == len(upgraded.MIGRATIONS) > 1
        jobs, _ = upgraded.list_jobs("alice", 10)
        assert sorted(j.id for j in jobs) == ["job0", "job1", "job2"]
        assert all(j.calls_done == 0 and j.status is JobStatus.QUEUED for j in jobs)
        assert upgraded.get_job("job2", "alice").items_done == 2  # type: ignore[union-attr]
        claimed = upgraded.claim("w", 30)
        assert claimed is not None and claimed.id == "job0"
    finally:
        upgraded.close()


def _bare(url: str) -> SQLStore:
    if url.startswith("sqlite:///"):
        return SQLiteStore(url.removeprefix("sqlite:///"))
    from servers.store.postgres import PostgresStore

    return PostgresStore(url)


def test_a_schema_newer_than_the_code_is_refused(store: SQLStore) -> None:
    with store._write() as cur:
        store._ex(cur, "INSERT INTO schema_version (version, applied_at) VALUES (99, {now})")
    with pytest.raises(StoreError, match="newer than this contam"):
        store.migrate()


def test_idempotency_key_returns_the_first_job_per_owner(store: SQLStore) -> None:
    first, created = store.create_job("alice", "scan", {"n": 1}, idempotency_key="abc")
    again, created_again = store.create_job("alice", "scan", {"n": 2}, idempotency_key="abc")
    other, other_created = store.create_job("bob", "scan", {"n": 3}, idempotency_key="abc")
    assert created and not created_again and other_created
    assert again.id == first.id and again.request == {"n": 1}
    assert other.id != first.id


def test_active_job_limit_per_owner(store: SQLStore) -> None:
    store.create_job("alice", "scan", {}, max_active=2)
    store.create_job("alice", "scan", {}, max_active=2)
    with pytest.raises(TooManyJobs):
        store.create_job("alice", "scan", {}, max_active=2)
    store.create_job("bob", "scan", {}, max_active=2)  # another owner's count is its own
    job = store.claim("w", 30)
    assert job is not None
    store.finish(job.id, "w", "{}")
    store.create_job("alice", "scan", {}, max_active=2)  # a finished job frees a place


def test_owners_are_kept_apart(store: SQLStore) -> None:
    job, _ = store.create_job("alice", "scan", {"secret": 1})
    assert store.get_job(job.id, "bob") is None
    assert store.request_cancel(job.id, "bob") is None
    assert store.get_job(job.id, "alice") is not None
    assert store.list_jobs("bob", 10) == ([], None)
    claimed = store.claim("w", 30)
    assert claimed is not None
    store.finish(claimed.id, "w", '{"report": 1}')
    assert store.result(job.id, "bob") is None
    assert store.result(job.id, "alice") == '{"report": 1}'


def test_list_pages_newest_first_without_gaps(store: SQLStore) -> None:
    ids = [store.create_job("alice", "scan", {"i": i})[0].id for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = store.list_jobs("alice", 2, cursor)
        seen += [j.id for j in page]
        pages += 1
        if cursor is None:
            break
    assert seen == ids[::-1] and pages == 3
    for bad in ("nonsense", "9" * 40, "²", "-1"):
        with pytest.raises(InputError) as info:
            store.list_jobs("alice", 2, bad)
        assert info.value.field == "cursor"
    checklist, _ = store.create_job("alice", "checklist", {})
    assert [j.id for j in store.list_jobs("alice", 10, kind="checklist")[0]] == [checklist.id]
    scans, cursor = store.list_jobs("alice", 4, kind="scan")
    assert [j.id for j in scans] == ids[:0:-1] and cursor is not None
    assert [j.id for j in store.list_jobs("alice", 4, cursor, kind="scan")[0]] == ids[:1]


def test_cancel_queued_at_once_and_running_at_next_heartbeat(store: SQLStore) -> None:
    queued, _ = store.create_job("alice", "scan", {})
    cancelled = store.request_cancel(queued.id, "alice")
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert store.claim("w", 30) is None  # a cancelled job is never run
    running, _ = store.create_job("alice", "scan", {})
    claimed = store.claim("w", 30)
    assert claimed is not None and claimed.id == running.id
    asked = store.request_cancel(running.id, "alice")
    assert asked is not None and asked.status is JobStatus.RUNNING and asked.cancel_requested
    assert store.heartbeat(running.id, "w", 30, Progress()) is False
    store.mark_cancelled(running.id, "w")
    assert store.get_job(running.id, "alice").status is JobStatus.CANCELLED  # type: ignore[union-attr]


def test_heartbeat_records_progress(store: SQLStore) -> None:
    job, _ = store.create_job("alice", "scan", {})
    assert store.claim("w", 30) is not None
    progress = Progress(items_done=3, items_total=10, calls_done=4, calls_total=20)
    assert store.heartbeat(job.id, "w", 30, progress) is True
    assert store.get_job(job.id, "alice").progress == progress  # type: ignore[union-attr]


def test_an_expired_lease_is_taken_over_and_the_old_worker_is_shut_out(store: SQLStore) -> None:
    job, _ = store.create_job("alice", "scan", {})
    first = store.claim("w1", 0.2)
    assert first is not None and first.attempts == 1
    assert store.claim("w2", 30) is None  # the lease still holds
    _wait_until(lambda: store.claim("w2", 30) is not None)
    taken = store.get_job(job.id, "alice")
    assert taken is not None and taken.worker == "w2" and taken.attempts == 2
    assert store.heartbeat(job.id, "w1", 30, Progress()) is False
    store.finish(job.id, "w1", '{"from": "w1"}')  # ignored: w1 no longer holds it
    assert store.get_job(job.id, "alice").status is JobStatus.RUNNING  # type: ignore[union-attr]
    store.finish(job.id, "w2", '{"from": "w2"}')
    assert store.result(job.id, "alice") == '{"from": "w2"}'


def test_a_dead_workers_cancelled_job_is_not_run_again(store: SQLStore) -> None:
    job, _ = store.create_job("alice", "scan", {})
    assert store.claim("w1", 0.2) is not None
    store.request_cancel(job.id, "alice")
    time.sleep(0.3)
    assert store.claim("w2", 30) is None
    assert store.get_job(job.id, "alice").status is JobStatus.CANCELLED  # type: ignore[union-attr]


def test_a_job_that_outlives_its_workers_too_often_fails(store: SQLStore) -> None:
    job, _ = store.create_job("alice", "scan", {})
    for attempt in (1, 2):
        claimed = store.claim(f"w{attempt}", 0.1, max_attempts=2)
        assert claimed is not None and claimed.attempts == attempt
        time.sleep(0.2)  # the worker dies: its lease lapses
    assert store.claim("w3", 30, max_attempts=2) is None
    failed = store.get_job(job.id, "alice")
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error is not None and "abandoned" in failed.error


def test_concurrent_claims_take_each_job_once(store_url: str) -> None:
    stores = [open_store(store_url) for _ in range(2)]  # two "processes" (own connections)
    try:
        ids = {stores[0].create_job("alice", "scan", {"i": i})[0].id for i in range(30)}
        taken: list[str] = []
        lock = threading.Lock()

        def work(store_index: int, worker: str) -> None:
            while (job := stores[store_index].claim(worker, 60)) is not None:
                with lock:
                    taken.append(job.id)

        threads = [threading.Thread(target=work, args=(i % 2, f"w{i}")) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(taken) == sorted(ids)
    finally:
        for s in stores:
            s.close()


def test_keys_hash_compare_and_revoke(store: SQLStore) -> None:
    record, token = store.create_key("alice")
    assert token.startswith(f"ck_{record.key_id}_")
    assert store.authenticate(token) == record
    assert store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.authenticate(f"ck_{'0' * 16}_whatever") is None
    assert store.authenticate("not a key") is None
    with store._read() as cur:
        (stored,) = store._ex(cur, "SELECT secret_hash FROM api_keys").fetchone()
    assert token.split("_", 2)[2] not in stored  # only a salted hash is kept
    other, other_token = store.create_key("alice")
    assert other_token != token
    assert store.revoke_key(record.key_id) is True
    assert store.revoke_key(record.key_id) is False
    assert store.authenticate(token) is None
    assert store.authenticate(other_token) == other
    listed = {k.key_id: k for k in store.list_keys("alice")}
    assert listed[record.key_id].revoked and not listed[other.key_id].revoked
    assert store.list_keys("bob") == []


def test_worker_liveness_and_ping(store: SQLStore) -> None:
    assert store.ping()
    assert store.live_workers(60) == 0
    store.worker_beat("w1")
    store.worker_beat("w1")
    store.worker_beat("w2")
    assert store.live_workers(60) == 2


def _wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_locked_sqlite_store_is_a_store_error(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "jobs.sqlite"
    SQLiteStore(path).migrate()
    store = SQLiteStore(path, busy_timeout_ms=100)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process holding the write lock too long
        with pytest.raises(StoreError, match="database is locked"):
            store.create_job("alice", "scan", {})
        holder.execute("ROLLBACK")
        assert store.create_job("alice", "scan", {})[1] is True  # usable again at once
    finally:
        holder.close()
        store.close()


def test_the_call_cache_in_the_store(store: SQLStore) -> None:
    from servers.store.calls import StoreCallCache

    cache = StoreCallCache(store)
    assert len(cache) == 0 and cache.get_many(["a"]) == {}
    cache.put_many([(f"k{i}", "m", "score", f"req{i}", f"resp{i}") for i in range(700)])  # > one IN list
    found = cache.get_many([f"k{i}" for i in range(0, 700, 3)] + ["missing"])
    assert found == {f"k{i}": f"resp{i}" for i in range(0, 700, 3)}
    cache.put_many([("k1", "m", "score", "req1", "again")])  # a repeated call replaces its row
    assert cache.get_many(["k1"]) == {"k1": "again"} and len(cache) == 700
    assert cache.keys() == {f"k{i}" for i in range(700)}
