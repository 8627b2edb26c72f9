"""Workers: claim a job from the store, run it with a lease kept alive by heartbeats, settle it.

A `Worker` is one thread running one job at a time in its own asyncio loop (`servers.jobs`), so a
job's model calls stay concurrent inside the runner while a slow or CPU-bound backend in one job
never stalls another worker's heartbeats. `WorkerPool` is N of them in one process (`contam serve
--workers N`); `contam worker` runs a pool without the API, on any machine that reaches the store.

Each heartbeat (every `WorkerSettings.heartbeat_interval` seconds) renews the lease and records
progress. It answers False when the job's owner asked to cancel or another worker took the job
over; the job's task is then cancelled at once (completed calls stay in the call cache). A worker
told to stop puts its running job back in the queue, so another takes it up without waiting for
the lease; a worker that dies leaves its lease to lapse, and the next claim takes the job over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from contam.errors import ContamError
from servers import jobs
from servers.settings import ServerSettings
from servers.store.base import JobRecord, JobStatus, JobStore, Progress

log = logging.getLogger("contam.service.worker")

Execute = Callable[[JobRecord, ServerSettings, jobs.ReportFn], str]


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        settings: ServerSettings,
        store: JobStore,
        name: str | None = None,
        *,
        execute: Execute | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.name = name or worker_name()
        self._execute = execute or jobs.execute
        self._stop = threading.Event()
        self.jobs_run = 0

    def stop(self) -> None:
        """Stop after (or out of) the current job: a running job is put back in the queue."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_forever(self) -> None:
        log.info("worker %s started", self.name)
        _lower_priority(self.settings.worker.nice)
        last_beat = -float("inf")
        while not self._stop.is_set():
            try:
                # Liveness is written once a heartbeat interval, not at every poll: an idle pool
                # polling fast would otherwise keep the store's writer busy for nothing.
                if time.monotonic() - last_beat >= self.settings.worker.heartbeat_interval:
                    self.store.worker_beat(self.name)
                    last_beat = time.monotonic()
                job = self.run_once()
            except Exception:  # the store is unreachable: say so, wait, try again
                log.exception("worker %s: store error", self.name)
                job = None
            if job is None:
                self._stop.wait(self.settings.worker.poll_s)
        log.info("worker %s stopped", self.name)

    def run_once(self) -> JobRecord | None:
        """Claim one job and run it to an end (done, failed, cancelled, released or lost);
        None when the queue was empty. Returns the job as it was claimed."""
        lease = self.settings.worker.lease_s
        job = self.store.claim(self.name, lease, self.settings.worker.max_attempts)
        if job is None:
            return None
        log.info("worker %s: job %s (%s, attempt %d)", self.name, job.id, job.kind, job.attempts)
        last_ok = time.monotonic()

        def report(progress: Progress) -> bool:
            nonlocal last_ok
            try:
                held = self.store.heartbeat(job.id, self.name, lease, progress)
                self.store.worker_beat(self.name)
                last_ok = time.monotonic()
            except Exception:
                log.exception("worker %s: heartbeat of job %s failed", self.name, job.id)
                # Once the lease may have lapsed another worker may hold the job: stop.
                held = time.monotonic() - last_ok < lease
            return held and not self._stop.is_set()

        try:
            result = self._execute(job, self.settings, report)
        except jobs.JobStopped:
            self._stopped(job)
        except ContamError as exc:
            self.store.fail(job.id, self.name, str(exc))
            log.info("worker %s: job %s failed: %s", self.name, job.id, exc)
        except Exception as exc:
            log.exception("worker %s: job %s crashed", self.name, job.id)
            # A bug's message can hold the server's paths: the owner gets its kind, the log the rest.
            self.store.fail(job.id, self.name, f"internal error ({type(exc).__name__}); see the worker's log")
        else:
            self.store.finish(job.id, self.name, result)
            log.info("worker %s: job %s done", self.name, job.id)
        self.jobs_run += 1
        return job

    def _stopped(self, job: JobRecord) -> None:
        now = self.store.get_any_job(job.id)
        if now is None or now.worker != self.name or now.status is not JobStatus.RUNNING:
            log.info("worker %s: job %s was taken over", self.name, job.id)
        elif now.cancel_requested:
            self.store.mark_cancelled(job.id, self.name)
            log.info("worker %s: job %s cancelled", self.name, job.id)
        else:  # this worker is stopping: hand the job back
            self.store.release(job.id, self.name)
            log.info("worker %s: job %s put back in the queue", self.name, job.id)


def _lower_priority(nice: int) -> None:
    """Raise this thread's nice value (Linux schedules threads apart; a thread the job's event loop
    starts inherits it). Elsewhere, or without permission, the job runs at normal priority."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as exc:
        log.warning("worker: could not lower the job thread's priority: %s", exc)


class WorkerPool:
    """N workers, one thread each, sharing the store (thread-safe) and the settings."""

    def __init__(self, settings: ServerSettings, store: JobStore, n: int, *, execute: Execute | None = None):
        if n < 1:
            raise ValueError("a pool needs at least one worker")
        base = worker_name()
        self.workers = [Worker(settings, store, f"{base}-{i}", execute=execute) for i in range(n)]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for worker in self.workers:
            thread = threading.Thread(target=worker.run_forever, name=f"contam-{worker.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask every worker to stop (their running jobs are put back) and wait for them."""
        for worker in self.workers:
            worker.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        if self._threads:
            log.warning("%d workers did not stop within %.0f s", len(self._threads), timeout)

    def wait(self) -> None:
        """Block until every worker has stopped (`contam worker`)."""
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.5)
