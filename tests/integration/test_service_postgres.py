"""Two `contam worker` processes on one real PostgreSQL server: jobs are split between them, no
job runs twice, and SIGKILL-ing one mid-job hands its job to the other, which completes it
without repeating a completed model call (counted by the mock model's call log)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from servers.store import JobRecord, JobStatus, open_store
from servers.store.base import JobStore
from servers.store.calls import StoreCallCache
from servers.store.sql import SQLStore
from tests.fixtures.postgres import PostgresCluster

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
JOBS = 4
ITEMS = 6  # per partition: 12 model calls per job, 0.25 s each, one at a time


def _request(job: int) -> dict[str, Any]:
    items = []
    for i in range(ITEMS):
        text = f"job {job} item {i} the quick brown fox jumps over the lazy dog"
        items.append({"id": f"t{i}", "partition": "test", "text": text})
        items.append({"id": f"u{i}", "partition": "unseen", "text": " ".join(reversed(text.split()))})
    return {
        "benchmark": {"name": f"job{job}", "items": items},
        "model": "mock",
        "probes": [{"name": "loss"}],
        "partitions": ["test"],
        "reference": "unseen",
    }


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def config(tmp_path: Path, postgres_cluster: PostgresCluster) -> Path:
    path = tmp_path / "server.yaml"
    path.write_text(
        f"store: {postgres_cluster.new_database()}\n"
        f"cache_path: {tmp_path / 'calls.sqlite'}\n"
        "workers: 1\n"
        "call_cache: store\n"  # in PostgreSQL: shared by workers that share no disk
        "models:\n"
        f"  - name: mock\n    spec: 'mock:delay=0.25,calls={tmp_path / 'calls.jsonl'}'\n"
        "worker:\n  lease_s: 2\n  poll_s: 0.1\n  cancel_check_s: 0.3\n  concurrency: 1\n  batch_size: 1\n"
    )
    return path


@pytest.fixture
def store(config: Path) -> Iterator[JobStore]:
    from servers.settings import load_settings

    s = open_store(load_settings(config).store)
    yield s
    s.close()


def _start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "contam.cli.main", "worker", "--config", str(config)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _jobs(store: JobStore, ids: list[str]) -> list[JobRecord]:
    found = [store.get_job(i, "alice") for i in ids]
    assert all(j is not None for j in found)
    return [j for j in found if j is not None]


def _held_by(job: JobRecord, proc: subprocess.Popen[bytes]) -> bool:
    return job.worker is not None and f"-{proc.pid}-" in job.worker


def test_two_workers_split_jobs_and_survive_a_kill(config: Path, store: JobStore, tmp_path: Path) -> None:
    ids = [store.create_job("alice", "scan", _request(i))[0].id for i in range(JOBS)]
    a = _start_worker(config, tmp_path / "a.log")
    b = _start_worker(config, tmp_path / "b.log")
    procs = [a, b]
    try:
        # Let A finish one job and get well into its next one, then kill it without warning.
        def a_is_mid_second_job() -> bool:
            jobs = _jobs(store, ids)
            finished_by_a = [j for j in jobs if j.status is JobStatus.DONE and _held_by(j, a)]
            running_on_a = [
                j for j in jobs if j.status is JobStatus.RUNNING and _held_by(j, a) and j.calls_done >= 3
            ]
            return bool(finished_by_a and running_on_a)

        _wait(a_is_mid_second_job, 120, "worker A to be midway through its second job")
        victim = next(j for j in _jobs(store, ids) if j.status is JobStatus.RUNNING and _held_by(j, a))
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=30)

        _wait(
            lambda: all(j.status is JobStatus.DONE for j in _jobs(store, ids)),
            180,
            "every job to be done",
        )
        jobs = {j.id: j for j in _jobs(store, ids)}
        taken_over = jobs[victim.id]
        assert taken_over.attempts == 2 and _held_by(taken_over, b)
        assert all(j.attempts == 1 for i, j in jobs.items() if i != victim.id)  # none ran twice
        finished = {("a" if _held_by(j, a) else "b") for j in jobs.values()}
        assert finished == {"a", "b"}  # the jobs were split between the two workers
        for job_id in ids:
            report = json.loads(store.result(job_id, "alice") or "{}")
            assert report["verdicts"]["partitions"][0]["partition"] == "test"

        # Every model call was made exactly once, the killed job's included.
        lines = (tmp_path / "calls.jsonl").read_text().splitlines()
        requests = [json.dumps(json.loads(line)["request"], sort_keys=True) for line in lines]
        assert len(requests) == len(set(requests)) == JOBS * ITEMS * 2
        assert isinstance(store, SQLStore) and len(StoreCallCache(store)) == JOBS * ITEMS * 2
        assert not (tmp_path / "calls.sqlite").exists()  # the cache was the store's, not a file

        # SIGTERM stops the survivor cleanly.
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
