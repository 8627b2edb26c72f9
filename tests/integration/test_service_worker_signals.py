"""SIGTERM to a real worker process puts its running job back in the queue within seconds, even
while the job is CPU-bound: `contam worker`, and `contam serve --workers 1` (uvicorn's shutdown).

The job is a mock-model scan of 3,000 items with five score probes, whose scoring keeps a job's
event loop busy for seconds at a time; the worker runs it in a process of its own, which it stops
on SIGTERM before handing the job back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from servers.store import JobStatus, open_store
from servers.store.base import JobStore
from tests.fixtures.service import REPO, ServiceProcess, write_config

pytestmark = pytest.mark.integration

ITEMS = 3000
PROBES: list[dict[str, Any]] = [{"name": p, "params": {}} for p in ("loss", "zlib", "min_k", "min_k_pp", "lowercase")]
RELEASE_WITHIN_S = 5.0


def scan_request() -> dict[str, Any]:
    items = []
    for i in range(ITEMS):
        text = " ".join(f"w{(i * 7 + j) % 97}" for j in range(10)) + f" number {i}"
        items.append({"id": f"t{i}", "partition": "test", "text": text})
        items.append({"id": f"u{i}", "partition": "unseen", "text": text[::-1]})
    return {
        "benchmark": {"name": "big", "items": items},
        "model": "mock",
        "probes": PROBES,
        "partitions": ["test"],
        "reference": "unseen",
    }


def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "server.yaml",
        store=f"sqlite:///{tmp_path / 'jobs.sqlite'}",
        cache_path=str(tmp_path / "calls.sqlite"),
        workers=1,
        models=[{"name": "mock", "spec": "mock"}],
        worker={"lease_s": 30, "cancel_check_s": 1, "poll_s": 0.1},
    )


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def start_worker(cfg: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "contam.cli.main", "worker", "--config", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )


def running_then_sigterm(store: JobStore, job_id: str, send: Callable[[], None]) -> float:
    """Wait until the job is running and computing; SIGTERM; seconds until it is queued again."""
    wait_for(lambda: (j := store.get_any_job(job_id)) and j.items_total > 0, 60, "the job running")
    time.sleep(1.5)  # inside the probes' scoring
    job = store.get_any_job(job_id)
    assert job is not None and job.status is JobStatus.RUNNING and job.items_done < job.items_total
    sent = time.monotonic()
    send()
    wait_for(
        lambda: (j := store.get_any_job(job_id)) and j.status is JobStatus.QUEUED,
        30,
        "the job back in the queue",
    )
    return time.monotonic() - sent


def test_sigterm_to_contam_worker_puts_its_running_job_back(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    proc = start_worker(cfg, tmp_path / "worker.log")
    try:
        job, _ = store.create_job("alice", "scan", scan_request())
        took = running_then_sigterm(store, job.id, lambda: proc.send_signal(signal.SIGTERM))
        assert proc.wait(timeout=30) == 0
        back = store.get_any_job(job.id)
        assert back is not None and back.worker is None and back.attempts == 1
        assert took <= RELEASE_WITHIN_S, took
        log = (tmp_path / "worker.log").read_text()
        assert "put back in the queue" in log
        assert store.live_workers(60) == 0  # it deregistered as it stopped
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        store.close()


def test_sigterm_to_contam_serve_puts_its_running_job_back(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    service = ServiceProcess(cfg, workers=1, log_path=tmp_path / "serve.log")
    try:
        service.start()
        job, _ = store.create_job("alice", "scan", scan_request())
        proc = service.proc
        assert proc is not None
        took = running_then_sigterm(store, job.id, lambda: proc.send_signal(signal.SIGTERM))
        # uvicorn ends by raising the signal it caught again, once its shutdown is done.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert took <= RELEASE_WITHIN_S, took
        assert "put back in the queue" in service.read_log()
    finally:
        service.kill()
        store.close()
