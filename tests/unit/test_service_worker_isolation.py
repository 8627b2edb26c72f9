"""Workers run each job in a process of their own (`servers.jobproc`): a CPU-bound job cannot
starve their heartbeats, a cancel or a stop ends it at once, progress counts from the start,
`worker.max_job_s` bounds a job, a dying job process fails its job in plain words, and `/readyz`
counts live workers only.

The CPU-bound job is a mock-model scan of many items with five score probes, whose scoring is
synchronous work inside the job's event loop (1,200 items kept a heartbeat in that loop silent for
3-4 s on a 2-core machine against a 0.2 s interval). Bounds are generous: these tests assert
behaviour, not benchmark timings."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contam.errors import InputError
from servers.settings import ServerSettings, WorkerSettings
from servers.store import JobStatus, Progress, open_store
from servers.store.base import JobRecord, JobStore
from servers.store.sql import SQLStore
from servers.worker import Worker
from tests.unit.test_service_store_jobs import scan_request

PROBES: list[dict[str, Any]] = [{"name": p, "params": {}} for p in ("loss", "zlib", "min_k", "min_k_pp", "lowercase")]


def cpu_bound_scan(n: int) -> dict[str, Any]:
    request: dict[str, Any] = scan_request(n, probes=PROBES)
    return request


def settings_for(tmp: Path, *, model: str = "mock", **worker: Any) -> ServerSettings:
    options: dict[str, Any] = {"lease_s": 1.5, "poll_s": 0.05, "cancel_check_s": 0.5, **worker}
    return ServerSettings(
        store=f"sqlite:///{tmp / 'jobs.sqlite'}",
        cache_path=tmp / "calls.sqlite",
        models=({"name": "mock", "spec": model},),  # type: ignore[arg-type]
        worker=WorkerSettings(**options),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLStore]:
    s = open_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    assert isinstance(s, SQLStore)
    yield s
    s.close()


def wait_for(check: Callable[[], Any], timeout: float = 60.0, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError("condition not met in time")


def job_now(store: JobStore, job_id: str) -> JobRecord:
    job = store.get_any_job(job_id)
    assert job is not None
    return job


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie left for its parent (the fork server) to reap."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class RunningWorker:
    """A worker's `run_forever` in a thread, stopped on exit."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.run_forever, daemon=True)

    def __enter__(self) -> Worker:
        self.thread.start()
        return self.worker

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def test_a_cpu_bound_job_keeps_its_heartbeats_and_its_lease(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    interval = settings.worker.heartbeat_interval
    assert interval == 0.5 and settings.worker.lease_s == 1.5
    # Two workers as two machines would be: a store connection each.
    first_store, second_store = (open_store(settings.store) for _ in range(2))
    job, _ = first_store.create_job("alice", "scan", cpu_bound_scan(1200))
    beats: list[float] = []
    original = first_store.heartbeat

    def heartbeat(job_id: str, worker: str, lease_s: float, progress: Progress) -> bool:
        beats.append(time.monotonic())
        return original(job_id, worker, lease_s, progress)

    first_store.heartbeat = heartbeat  # type: ignore[method-assign]
    first = Worker(settings, first_store, "first")
    second = Worker(settings, second_store, "second")
    try:
        thread = threading.Thread(target=first.run_once)  # it claims before the second polls
        thread.start()
        wait_for(lambda: job_now(second_store, job.id).status is JobStatus.RUNNING)
        with RunningWorker(second):
            thread.join(timeout=120)
            assert not thread.is_alive()
        done = job_now(second_store, job.id)
        assert done.status is JobStatus.DONE, done.error
        assert done.attempts == 1 and second.jobs_run == 0  # never taken over
        assert done.items_done == done.items_total == 1200 * len(PROBES)
        assert len(beats) >= 3  # the job ran across several heartbeats
        gaps = [b - a for a, b in itertools.pairwise(beats)]
        assert max(gaps) <= 3 * interval, gaps
    finally:
        first_store.close()
        second_store.close()


def test_cancel_ends_a_cpu_bound_job_within_the_cancel_check(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    job, _ = store.create_job("alice", "scan", cpu_bound_scan(3000))
    worker = Worker(settings, store, "w")
    with RunningWorker(worker):
        wait_for(lambda: job_now(store, job.id).status is JobStatus.RUNNING)
        time.sleep(1.0)  # well inside the first probes' scoring
        pid = getattr(worker, "job_pid", None)
        asked = time.monotonic()
        store.request_cancel(job.id, "alice")
        wait_for(lambda: job_now(store, job.id).status is JobStatus.CANCELLED, timeout=60, every=0.01)
        latency = time.monotonic() - asked
    assert latency <= settings.worker.cancel_check_s + 2.0, latency
    # Cancelled mid-run (under load the last probes may have counted their items already, so the
    # sign is that no result was written, not the item count).
    assert store.result(job.id, "alice") is None
    assert pid is not None
    wait_for(lambda: process_gone(pid), timeout=5)  # the job's process is gone, not left computing


def test_progress_counts_from_the_first_second(store: SQLStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    job, _ = store.create_job("alice", "scan", cpu_bound_scan(3000))
    worker = Worker(settings, store, "w")
    with RunningWorker(worker):
        wait_for(lambda: job_now(store, job.id).status is JobStatus.RUNNING, every=0.01)
        running = time.monotonic()
        wait_for(lambda: job_now(store, job.id).items_total > 0, timeout=30, every=0.01)
        counted = time.monotonic() - running
        store.request_cancel(job.id, "alice")
        wait_for(lambda: job_now(store, job.id).status is JobStatus.CANCELLED, timeout=30)
    # Within 2 s of the claim (a fork server that was cold adds its own start).
    assert counted <= 2.5, counted
    assert job_now(store, job.id).items_total == 3000 * len(PROBES)


def test_a_job_past_max_job_s_is_stopped_and_failed(store: SQLStore, tmp_path: Path) -> None:
    # A slow model: 200 calls of 0.2 s, one at a time, would take 40 s.
    settings = settings_for(tmp_path, model="mock:delay=0.2", max_job_s=1.0, concurrency=1)
    job, _ = store.create_job("alice", "scan", scan_request(100))
    started = time.monotonic()
    worker = Worker(settings, store, "w")
    worker.run_once()
    took = time.monotonic() - started
    failed = job_now(store, job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and "1 s" in failed.error and "worker.max_job_s" in failed.error
    assert took < 10, took
    assert worker.job_pid is None


def refuse(job: Any, settings: Any, progress: Any) -> str:
    raise InputError("no partition 'x' in 'up' (test, unseen)", field="reference")


def die(job: Any, settings: Any, progress: Any) -> str:
    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    raise AssertionError("unreachable")


def count_then_finish(job: Any, settings: Any, progress: Any) -> str:
    progress.add_item_total(7)
    progress.advance_items(7)
    return json.dumps({"big": "x" * 3_000_000})  # more than a pipe holds at once


@pytest.mark.parametrize(
    ("target", "status", "error"),
    [
        (refuse, JobStatus.FAILED, "field 'reference': no partition 'x' in 'up' (test, unseen)"),
        (die, JobStatus.FAILED, "the job's process died (signal 9, SIGKILL)"),
        (count_then_finish, JobStatus.DONE, None),
    ],
)
def test_how_a_job_process_ends_is_how_its_job_ends(
    store: SQLStore, tmp_path: Path, target: Any, status: JobStatus, error: str | None
) -> None:
    job, _ = store.create_job("alice", "scan", scan_request(1))
    Worker(settings_for(tmp_path), store, "w", execute=target).run_once()
    ended = job_now(store, job.id)
    assert ended.status is status
    if error is None:
        assert ended.error is None and ended.items_done == ended.items_total == 7
        assert len(json.loads(store.result(job.id, "alice") or "{}")["big"]) == 3_000_000
    else:
        assert ended.error is not None and ended.error.startswith(error)
        assert "Traceback" not in ended.error and "multiprocessing" not in ended.error


def test_readyz_counts_live_workers_only(store: SQLStore, tmp_path: Path) -> None:
    from servers.app import create_app

    settings = settings_for(tmp_path, lease_s=30.0, cancel_check_s=2.0)  # live: beat within 6 s
    worker = Worker(settings, store, "ran-and-stopped")
    with RunningWorker(worker):
        wait_for(lambda: store.live_workers(60) == 1)  # it beats while it runs
    store.worker_beat("dead")
    with store._write() as cur:  # "dead" beat 30 s ago, and never again
        store._ex(cur, "UPDATE workers SET last_beat = last_beat - 30 WHERE name = 'dead'")
    store.worker_beat("alive")
    with TestClient(create_app(settings, store=store, workers=0)) as client:
        body = client.get("/readyz").json()
    assert body == {"status": "ready", "store": True, "workers": 1}
