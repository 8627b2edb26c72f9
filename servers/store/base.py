"""The job store's contract: job and key records, the progress a worker reports, and the
`JobStore` protocol that the SQLite and PostgreSQL stores both implement.

The store is the queue: the API inserts jobs, workers claim them with a lease (a deadline they
renew by heartbeat), and a job whose lease ran out is taken over by the next claim. Methods are
synchronous (FastAPI runs them in its threadpool; workers call them from their own thread) and
every store is safe to share between threads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from contam.errors import ContamError

JobKind = Literal["scan", "checklist", "overlap"]


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class Progress(BaseModel):
    """Items and model calls done out of the totals known so far (totals grow as probes plan)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items_done: int = Field(default=0, ge=0)
    items_total: int = Field(default=0, ge=0)
    calls_done: int = Field(default=0, ge=0)
    calls_total: int = Field(default=0, ge=0)


class JobRecord(BaseModel):
    """One job as stored. `request` is the validated request body as JSON (an uploaded benchmark's
    items included), so a worker on another machine needs nothing but the store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str  # uuid4 hex
    owner: str
    kind: JobKind
    status: JobStatus
    request: dict[str, Any]
    idempotency_key: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    items_done: int = 0
    items_total: int = 0
    calls_done: int = 0
    calls_total: int = 0
    error: str | None = None
    attempts: int = 0  # claims so far: 2 or more means a worker took over (or retried) the job
    worker: str | None = None
    lease_expires: datetime | None = None
    cancel_requested: bool = False

    @property
    def progress(self) -> Progress:
        return Progress(
            items_done=self.items_done,
            items_total=self.items_total,
            calls_done=self.calls_done,
            calls_total=self.calls_total,
        )


class KeyRecord(BaseModel):
    """An API key as listed: never its secret nor its hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str
    owner: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class StoreError(ContamError):
    """The store cannot serve a request (unreachable, a schema newer than this code, ...)."""


class TooManyJobs(ContamError):
    """The owner already has `limit` queued or running jobs."""

    def __init__(self, owner: str, limit: int) -> None:
        super().__init__(f"{owner!r} already has {limit} queued or running jobs (the per-key limit)")
        self.owner = owner
        self.limit = limit


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobStore(Protocol):
    """What the API and the workers need from a store. Thread-safe; every method is atomic."""

    def migrate(self) -> int:
        """Apply pending schema versions in order; returns the version now in force."""
        ...

    def create_job(
        self,
        owner: str,
        kind: JobKind,
        request: dict[str, Any],
        idempotency_key: str | None = None,
        max_active: int | None = None,
        *,
        request_json: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """(job, created). The same owner and idempotency key return the first job, created False.
        Raises `TooManyJobs` when the owner has `max_active` or more queued and running jobs.
        `request_json`, when given, is `request` already serialised (as `json.dumps` would)."""
        ...

    def get_job(self, job_id: str, owner: str) -> JobRecord | None:
        """None for a missing job and for another owner's job alike."""
        ...

    def list_jobs(
        self, owner: str, limit: int, cursor: str | None = None, kind: JobKind | None = None
    ) -> tuple[list[JobRecord], str | None]:
        """The owner's jobs (of `kind`, if given), newest first, and the cursor of the next page
        (None on the last). A cursor not given out by the store is an `InputError` on `cursor`."""
        ...

    def request_cancel(self, job_id: str, owner: str) -> JobRecord | None:
        """A queued job is cancelled at once; a running one gets `cancel_requested` (its worker
        stops at its next heartbeat); a finished one is returned unchanged. None: not the owner's."""
        ...

    def claim(self, worker: str, lease_s: float, max_attempts: int | None = None) -> JobRecord | None:
        """Atomically take the oldest queued job, or a running one whose lease expired (taken over);
        it becomes running under `worker` until now + lease_s, attempts + 1. An expired job that
        already had `max_attempts` claims is failed instead of taken."""
        ...

    def heartbeat(self, job_id: str, worker: str, lease_s: float, progress: Progress) -> bool:
        """Renew the lease and record progress. False: the lease is lost (another worker holds the
        job, or it is finished) or a cancel was requested; the worker must stop."""
        ...

    def finish(self, job_id: str, worker: str, result_json: str) -> None:
        """Store the result and mark the job done (ignored if `worker` no longer holds it)."""
        ...

    def fail(self, job_id: str, worker: str, error: str) -> None: ...

    def mark_cancelled(self, job_id: str, worker: str) -> None: ...

    def release(self, job_id: str, worker: str) -> None:
        """Put a running job back in the queue at once (a worker stopping gracefully), so the next
        claim takes it without waiting for the lease to lapse."""
        ...

    def get_any_job(self, job_id: str) -> JobRecord | None:
        """A job whoever owns it: for workers and operators, never for the API."""
        ...

    def result(self, job_id: str, owner: str) -> str | None:
        """The result JSON (ScanReport or checklist) of the owner's done job, else None."""
        ...

    def create_key(self, owner: str) -> tuple[KeyRecord, str]:
        """A new key and its secret, returned this once; only a salted hash is stored."""
        ...

    def list_keys(self, owner: str | None = None) -> list[KeyRecord]: ...

    def revoke_key(self, key_id: str) -> bool:
        """True if the key existed and was not already revoked."""
        ...

    def authenticate(self, secret: str) -> KeyRecord | None:
        """The key a bearer secret belongs to, compared in constant time; revoked or unknown: None."""
        ...

    def worker_beat(self, worker: str) -> None:
        """A worker says it is alive (for /readyz)."""
        ...

    def worker_gone(self, worker: str) -> None:
        """A worker that stops says so: it is no longer counted as live."""
        ...

    def live_workers(self, within_s: float) -> int:
        """Workers that beat within the last `within_s` seconds and have not said they are gone."""
        ...

    def ping(self) -> bool:
        """The store answers a trivial query."""
        ...

    def close(self) -> None: ...
