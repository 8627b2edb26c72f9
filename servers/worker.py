"""Workers: claim a job from the store, run it in a process of its own, keep its lease by
heartbeats, settle it.

A `Worker` is one thread that runs one job at a time. The job itself runs in a child process
(`servers.jobproc`, from a fork server that has the job modules imported), so the worker's thread
does nothing but watch it: it receives the child's progress snapshots and, every
`WorkerSettings.heartbeat_interval` seconds, renews the lease, records the latest progress and
learns whether the job was cancelled. Why a process and not the job's own event loop: a job is
CPU-bound for seconds at a time (scoring, statistics, permutation tests), and while it holds the
interpreter nothing else in that interpreter runs, so heartbeats kept there stopped for 20-30 s,
leases lapsed under jobs still running and a second worker ran them too, and a cancel waited for
the computation. A process is also the one thing that can be stopped at any point: cancelling an
asyncio task cannot interrupt code that never yields.

The child is stopped (SIGTERM, then SIGKILL) when a heartbeat says so (the owner cancelled it, or
another worker took it over), when the worker is stopping (`stop()`: SIGTERM to `contam worker`,
shutdown of `contam serve`; the job is put back in the queue, for another worker to take up at
once) and when the job has run `WorkerSettings.max_job_s` (it is failed, naming the limit). Its
completed model calls are in the call cache already, so no run repeats them. A child that dies
(an out-of-memory kill, a signal) fails its job in plain words; a worker that dies leaves its
lease to lapse, and the next claim takes the job over.

A worker says it is alive (`JobStore.worker_beat`) at each heartbeat, idle or busy, and says it
is gone when it stops, so `/readyz` counts the workers that beat recently
(`WorkerSettings.liveness_s`) and none that stopped or died.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from servers import jobproc, jobs
from servers.jobproc import Crashed, Finished, JobProcess, LogLine, Refused, Snapshot, Target
from servers.settings import ServerSettings
from servers.store.base import JobRecord, JobStatus, JobStore, Progress

log = logging.getLogger("contam.service.worker")

#: What a job process runs (`jobs.compute`; tests pass their own, importable, function).
Execute = Target

#: How often the worker's thread wakes while a job runs, to see a stop asked of it.
_WAKE_S = 0.1

#: How often a job's process sends its progress (cheap: a pipe), so the totals it learns early
#: reach the store at once and every heartbeat records fresh counts.
_SNAPSHOT_S = 0.2

#: After a job's process died, how long to wait for a stop asked of the worker at the same moment
#: (SIGTERM to a whole process group reaches the child and the worker together).
_STOP_RACE_S = 1.0


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class _Done:
    result: str


@dataclass(frozen=True, slots=True)
class _Failed:
    error: str


@dataclass(frozen=True, slots=True)
class _Stopped:
    """Cancelled, taken over, or the worker is stopping: `_stopped` tells which."""


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
        self._execute: Execute = execute or jobs.compute
        self._stop = threading.Event()
        self.jobs_run = 0
        #: The running job's process id (None between jobs): for operators' logs and tests.
        self.job_pid: int | None = None

    def stop(self) -> None:
        """Stop after (or out of) the current job: a running job is put back in the queue."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_forever(self) -> None:
        log.info("worker %s started", self.name)
        jobproc.warm(self.settings)
        last_beat = -float("inf")
        try:
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
        finally:
            try:
                self.store.worker_gone(self.name)
            except Exception:  # its beat then ages out of the liveness window
                log.exception("worker %s: could not deregister", self.name)
            log.info("worker %s stopped", self.name)

    def run_once(self) -> JobRecord | None:
        """Claim one job and run it to an end (done, failed, cancelled, released or lost);
        None when the queue was empty. Returns the job as it was claimed."""
        job = self.store.claim(self.name, self.settings.worker.lease_s, self.settings.worker.max_attempts)
        if job is None:
            return None
        log.info("worker %s: job %s (%s, attempt %d)", self.name, job.id, job.kind, job.attempts)
        outcome = self._supervise(job)
        if isinstance(outcome, _Stopped):
            self._stopped(job)
        elif isinstance(outcome, _Failed):
            self.store.fail(job.id, self.name, outcome.error)
            log.info("worker %s: job %s failed: %s", self.name, job.id, outcome.error)
        else:
            self.store.finish(job.id, self.name, outcome.result)
            log.info("worker %s: job %s done", self.name, job.id)
        self.jobs_run += 1
        return job

    def _supervise(self, job: JobRecord) -> _Done | _Failed | _Stopped:
        """Run `job` in its own process and heartbeat until it ends or must be stopped; the
        process is ended before this returns, so nothing runs the job once it is settled."""
        w = self.settings.worker
        every = w.heartbeat_interval
        started = time.monotonic()
        snapshot_s, nice = min(every / 2, _SNAPSHOT_S), _job_priority(w.nice)
        child = JobProcess.start(self._execute, job, self.settings, interval=snapshot_s, nice=nice)
        self.job_pid = child.pid
        latest = Progress()
        last_ok = started
        next_beat = started + every
        try:
            while True:
                message = child.receive(min(_WAKE_S, max(0.0, next_beat - time.monotonic())))
                if isinstance(message, Snapshot):
                    if not (latest.items_total or latest.calls_total) and (
                        message.progress.items_total or message.progress.calls_total
                    ):
                        next_beat = time.monotonic()  # the totals, once known, go to the store at once
                    latest = message.progress
                elif isinstance(message, LogLine):
                    logging.getLogger(message.name).log(message.level, "job %s: %s", job.id, message.message)
                elif isinstance(message, Finished):
                    self._beat(job, latest, last_ok)  # the final counts, for the status
                    return _Done(message.result)
                elif isinstance(message, Refused):
                    return _Failed(message.message)
                elif isinstance(message, Crashed):
                    # A bug's message can hold the server's paths: the owner gets its kind, the log the rest.
                    return _Failed(f"internal error ({message.kind}); see the worker's log")
                elif child.ended:
                    return self._died(job, child)
                if self._stop.is_set():
                    return _Stopped()
                now = time.monotonic()
                if now - started >= w.max_job_s:
                    log.warning("worker %s: job %s ran past worker.max_job_s: stopped", self.name, job.id)
                    return _Failed(
                        f"the job ran longer than this server's limit of {w.max_job_s:g} s "
                        "(worker.max_job_s) and was stopped"
                    )
                if now >= next_beat:
                    held, ok = self._beat(job, latest, last_ok)
                    last_ok = ok
                    next_beat = now + every
                    if not held:
                        return _Stopped()
        finally:
            child.close()
            self.job_pid = None

    def _beat(self, job: JobRecord, progress: Progress, last_ok: float) -> tuple[bool, float]:
        """Renew the lease with `progress`: (still ours to run, when the store last answered)."""
        lease = self.settings.worker.lease_s
        try:
            held = self.store.heartbeat(job.id, self.name, lease, progress)
            self.store.worker_beat(self.name)
            return held, time.monotonic()
        except Exception:
            log.exception("worker %s: heartbeat of job %s failed", self.name, job.id)
            # Once the lease may have lapsed another worker may hold the job: stop.
            return time.monotonic() - last_ok < lease, last_ok

    def _died(self, job: JobRecord, child: JobProcess) -> _Failed | _Stopped:
        if self._stop.wait(_STOP_RACE_S):
            return _Stopped()
        log.error("worker %s: job %s: its process ended with code %s", self.name, job.id, child.exitcode)
        return _Failed(jobproc.death_message(child.exitcode))

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


def _job_priority(nice: int) -> int:
    """The Linux nice value a job process takes: this thread's plus `nice`, at most 19."""
    if nice <= 0 or not hasattr(os, "getpriority"):
        return 0
    try:
        return min(19, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + nice)
    except OSError:
        return 0


class WorkerPool:
    """N workers, one thread each, sharing the store (thread-safe) and the settings."""

    def __init__(self, settings: ServerSettings, store: JobStore, n: int, *, execute: Execute | None = None):
        if n < 1:
            raise ValueError("a pool needs at least one worker")
        base = worker_name()
        self.workers = [Worker(settings, store, f"{base}-{i}", execute=execute) for i in range(n)]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        jobproc.warm(self.workers[0].settings)
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
