"""The job store's logic in SQL, shared by SQLite and PostgreSQL.

Each dialect supplies a connection per thread, a write transaction, its clock expression, the
lock suffix of a claim, and its ordered list of schema versions. Times are seconds since the
epoch (a float) computed by the database's own clock, so workers on several machines agree on
when a lease ran out whatever their own clocks say.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from contam.errors import InputError
from servers import keys
from servers.store.base import JobKind, JobRecord, JobStatus, KeyRecord, Progress, StoreError, TooManyJobs

# Every column but the result, which only `result()` reads (it can be megabytes).
_JOB_COLUMNS = (
    "id, owner, kind, status, request, idempotency_key, created_at, updated_at, started_at, "
    "finished_at, items_done, items_total, calls_done, calls_total, error, attempts, worker, "
    "lease_expires, cancel_requested, seq"
)


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def _dt0(value: float) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def _job(row: Sequence[Any], request: dict[str, Any] | None = None) -> JobRecord:
    """The job a row holds; `request` is its stored request when the caller has it already (a
    job just inserted), so megabytes of uploaded items are not parsed back (issue 20)."""
    return JobRecord(
        id=row[0],
        owner=row[1],
        kind=row[2],
        status=JobStatus(row[3]),
        request=json.loads(row[4]) if request is None else request,
        idempotency_key=row[5],
        created_at=_dt0(row[6]),
        updated_at=_dt0(row[7]),
        started_at=_dt(row[8]),
        finished_at=_dt(row[9]),
        items_done=row[10],
        items_total=row[11],
        calls_done=row[12],
        calls_total=row[13],
        error=row[14],
        attempts=row[15],
        worker=row[16],
        lease_expires=_dt(row[17]),
        cancel_requested=bool(row[18]),
    )


def _key(row: Sequence[Any]) -> KeyRecord:
    return KeyRecord(key_id=row[0], owner=row[1], created_at=_dt0(row[2]), revoked_at=_dt(row[3]))


class SQLStore:
    """`JobStore` over a DB-API connection; subclasses say how to connect and lock."""

    #: SQL expression for "now" in epoch seconds, on the database's clock.
    NOW: str
    #: appended to the claim's SELECT (PostgreSQL: FOR UPDATE SKIP LOCKED).
    CLAIM_LOCK: str = ""
    #: schema versions in order: version i+1 is MIGRATIONS[i], a list of statements.
    MIGRATIONS: Sequence[Sequence[str]]

    # -- what a dialect provides -------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[Cursor]:
        raise NotImplementedError

    @contextlib.contextmanager
    def _write(self) -> Iterator[Cursor]:
        """A transaction that commits on success and rolls back on error."""
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        """The statement with `{now}` expanded and `?` placeholders in the driver's style."""
        return sql.replace("{now}", self.NOW)

    def _lock_owner(self, cur: Cursor, owner: str) -> None:
        """Serialise job creation per owner, so the active-job limit holds under concurrency."""

    def _is_unique_violation(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- schema ------------------------------------------------------------------------------

    def _ex(self, cur: Cursor, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cur.execute(self._sql(sql), tuple(params))
        return cur

    def _lock_migrations(self, cur: Cursor) -> None:
        """Serialise schema upgrades between processes starting at once."""

    def schema_version(self) -> int:
        with self._read() as cur:
            return self._version(cur)

    def _version(self, cur: Cursor) -> int:
        row = self._ex(cur, "SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self, target: int | None = None) -> int:
        """Apply the pending versions up to `target` (default the latest), each in its own
        transaction with its version row, so a crash mid-upgrade leaves a consistent version.
        A version only adds (tables, columns with defaults, indexes): no upgrade drops a job."""
        latest = len(self.MIGRATIONS)
        target = latest if target is None else target
        with self._write() as cur:
            self._lock_migrations(cur)
            self._ex(
                cur,
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)",
            )
        while True:
            with self._write() as cur:
                self._lock_migrations(cur)
                current = self._version(cur)  # read under the lock: another process may be ahead
                if current > latest:
                    raise StoreError(
                        f"the job store is at schema version {current}, newer than this contam "
                        f"({latest}): upgrade contam"
                    )
                if current >= target:
                    return current
                for statement in self.MIGRATIONS[current]:
                    self._ex(cur, statement)
                self._ex(
                    cur, "INSERT INTO schema_version (version, applied_at) VALUES (?, {now})", (current + 1,)
                )

    # -- jobs --------------------------------------------------------------------------------

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
        text = request_json if request_json is not None else json.dumps(request, ensure_ascii=False)
        try:
            return self._create_job(owner, kind, text, request, idempotency_key, max_active)
        except Exception as exc:
            # Two submits with one idempotency key raced; the other insert won: return its job.
            if idempotency_key is None or not self._is_unique_violation(exc):
                raise
            return self._create_job(owner, kind, text, request, idempotency_key, max_active)

    def _create_job(
        self,
        owner: str,
        kind: JobKind,
        request_json: str,
        request: dict[str, Any],
        idempotency_key: str | None,
        max_active: int | None,
    ) -> tuple[JobRecord, bool]:
        job_id = uuid.uuid4().hex
        with self._write() as cur:
            self._lock_owner(cur, owner)
            if idempotency_key is not None:
                row = self._ex(
                    cur,
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE owner = ? AND idempotency_key = ?",
                    (owner, idempotency_key),
                ).fetchone()
                if row is not None:
                    return _job(row), False
            if max_active is not None:
                (active,) = self._ex(
                    cur,
                    "SELECT count(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'running')",
                    (owner,),
                ).fetchone()
                if active >= max_active:
                    raise TooManyJobs(owner, max_active)
            row = self._ex(
                cur,
                "INSERT INTO jobs "
                "(id, owner, kind, status, request, idempotency_key, created_at, updated_at) "
                f"VALUES (?, ?, ?, 'queued', ?, ?, {{now}}, {{now}}) RETURNING {_JOB_COLUMNS}",
                (job_id, owner, kind, request_json, idempotency_key),
            ).fetchone()
        return _job(row, request), True

    def get_job(self, job_id: str, owner: str) -> JobRecord | None:
        with self._read() as cur:
            row = self._ex(
                cur, f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ? AND owner = ?", (job_id, owner)
            ).fetchone()
        return None if row is None else _job(row)

    def get_any_job(self, job_id: str) -> JobRecord | None:
        """A job whoever owns it (workers and operators; never the API)."""
        with self._read() as cur:
            row = self._ex(cur, f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def list_jobs(
        self, owner: str, limit: int, cursor: str | None = None, kind: JobKind | None = None
    ) -> tuple[list[JobRecord], str | None]:
        # The cursor is the sequence number of the last job of the previous page: stable while
        # jobs are added (new ones come before it), unlike an offset.
        where: list[str] = ["owner = ?"]
        params: list[Any] = [owner]
        if cursor is not None:
            if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
                raise InputError(f"{cursor[:40]!r} is not a cursor this service gave out", field="cursor")
            where.append("seq < ?")
            params.append(int(cursor))
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        limit = max(1, limit)
        with self._read() as cur:
            rows = self._ex(
                cur,
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
        page = rows[:limit]
        next_cursor = str(page[-1][19]) if len(rows) > limit else None
        return [_job(r) for r in page], next_cursor

    def request_cancel(self, job_id: str, owner: str) -> JobRecord | None:
        with self._write() as cur:
            self._ex(
                cur,
                "UPDATE jobs SET status = 'cancelled', finished_at = {now}, updated_at = {now}, "
                "cancel_requested = 1, worker = NULL, lease_expires = NULL "
                "WHERE id = ? AND owner = ? AND status = 'queued'",
                (job_id, owner),
            )
            self._ex(
                cur,
                "UPDATE jobs SET cancel_requested = 1, updated_at = {now} "
                "WHERE id = ? AND owner = ? AND status = 'running'",
                (job_id, owner),
            )
            row = self._ex(
                cur, f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ? AND owner = ?", (job_id, owner)
            ).fetchone()
        return None if row is None else _job(row)

    def claim(self, worker: str, lease_s: float, max_attempts: int | None = None) -> JobRecord | None:
        with self._write() as cur:
            if max_attempts is not None:
                # A job whose every worker died (one that kills its worker, say) is not retried forever.
                self._ex(
                    cur,
                    "UPDATE jobs SET status = 'failed', error = ?, finished_at = {now}, updated_at = {now}, "
                    "worker = NULL, lease_expires = NULL "
                    "WHERE status = 'running' AND lease_expires < {now} AND attempts >= ?",
                    (
                        f"abandoned: {max_attempts} workers took this job up and none of them finished it "
                        "(each stopped heartbeating: crashed or killed)",
                        max_attempts,
                    ),
                )
            # A job whose worker died after a cancel was asked is cancelled, not run again.
            self._ex(
                cur,
                "UPDATE jobs SET status = 'cancelled', finished_at = {now}, updated_at = {now}, "
                "worker = NULL, lease_expires = NULL "
                "WHERE status = 'running' AND cancel_requested = 1 AND lease_expires < {now}",
            )
            row = self._ex(
                cur,
                "SELECT id FROM jobs WHERE status = 'queued' "
                "OR (status = 'running' AND lease_expires < {now}) "
                f"ORDER BY seq LIMIT 1{self.CLAIM_LOCK}",
            ).fetchone()
            if row is None:
                return None
            claimed = self._ex(
                cur,
                "UPDATE jobs SET status = 'running', worker = ?, lease_expires = {now} + ?, "
                "attempts = attempts + 1, started_at = coalesce(started_at, {now}), updated_at = {now} "
                f"WHERE id = ? RETURNING {_JOB_COLUMNS}",
                (worker, float(lease_s), row[0]),
            ).fetchone()
        return _job(claimed)

    def heartbeat(self, job_id: str, worker: str, lease_s: float, progress: Progress) -> bool:
        with self._write() as cur:
            row = self._ex(
                cur,
                "UPDATE jobs SET lease_expires = {now} + ?, updated_at = {now}, items_done = ?, "
                "items_total = ?, calls_done = ?, calls_total = ? "
                "WHERE id = ? AND worker = ? AND status = 'running' RETURNING cancel_requested",
                (
                    float(lease_s),
                    progress.items_done,
                    progress.items_total,
                    progress.calls_done,
                    progress.calls_total,
                    job_id,
                    worker,
                ),
            ).fetchone()
        return row is not None and not row[0]

    def _settle(self, job_id: str, worker: str, status: JobStatus, sets: str, params: Sequence[Any]) -> None:
        with self._write() as cur:
            self._ex(
                cur,
                f"UPDATE jobs SET status = ?, {sets}, finished_at = {{now}}, updated_at = {{now}}, "
                "lease_expires = NULL WHERE id = ? AND worker = ? AND status = 'running'",
                (status.value, *params, job_id, worker),
            )

    def finish(self, job_id: str, worker: str, result_json: str) -> None:
        self._settle(job_id, worker, JobStatus.DONE, "result = ?, error = NULL", (result_json,))

    def fail(self, job_id: str, worker: str, error: str) -> None:
        self._settle(job_id, worker, JobStatus.FAILED, "error = ?", (error,))

    def mark_cancelled(self, job_id: str, worker: str) -> None:
        self._settle(job_id, worker, JobStatus.CANCELLED, "cancel_requested = 1", ())

    def release(self, job_id: str, worker: str) -> None:
        with self._write() as cur:
            self._ex(
                cur,
                "UPDATE jobs SET status = 'queued', worker = NULL, lease_expires = NULL, updated_at = {now} "
                "WHERE id = ? AND worker = ? AND status = 'running'",
                (job_id, worker),
            )

    def result(self, job_id: str, owner: str) -> str | None:
        with self._read() as cur:
            row = self._ex(
                cur,
                "SELECT result FROM jobs WHERE id = ? AND owner = ? AND status = 'done'",
                (job_id, owner),
            ).fetchone()
        return None if row is None else str(row[0])

    # -- keys --------------------------------------------------------------------------------

    def create_key(self, owner: str) -> tuple[KeyRecord, str]:
        if not owner.strip():
            raise InputError("an owner name is required", field="owner")
        key_id, secret = keys.new_key_id(), keys.new_secret()
        with self._write() as cur:
            row = self._ex(
                cur,
                "INSERT INTO api_keys (key_id, owner, secret_hash, created_at) VALUES (?, ?, ?, {now}) "
                "RETURNING key_id, owner, created_at, revoked_at",
                (key_id, owner, keys.hash_secret(secret)),
            ).fetchone()
        return _key(row), keys.format_token(key_id, secret)

    def list_keys(self, owner: str | None = None) -> list[KeyRecord]:
        with self._read() as cur:
            if owner is None:
                rows = self._ex(
                    cur, "SELECT key_id, owner, created_at, revoked_at FROM api_keys ORDER BY created_at"
                ).fetchall()
            else:
                rows = self._ex(
                    cur,
                    "SELECT key_id, owner, created_at, revoked_at FROM api_keys WHERE owner = ? "
                    "ORDER BY created_at",
                    (owner,),
                ).fetchall()
        return [_key(r) for r in rows]

    def revoke_key(self, key_id: str) -> bool:
        with self._write() as cur:
            row = self._ex(
                cur,
                "UPDATE api_keys SET revoked_at = {now} WHERE key_id = ? AND revoked_at IS NULL "
                "RETURNING key_id",
                (key_id,),
            ).fetchone()
        return row is not None

    def authenticate(self, secret: str) -> KeyRecord | None:
        parsed = keys.parse_token(secret)
        key_id = parsed[0] if parsed else ""
        with self._read() as cur:
            row = self._ex(
                cur,
                "SELECT key_id, owner, created_at, revoked_at, secret_hash FROM api_keys WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        # Hash even for a malformed token or an unknown id: the answer's timing says nothing.
        ok = keys.verify_secret(parsed[1] if parsed else secret, row[4] if row else None)
        if not ok or row is None or row[3] is not None:
            return None
        return _key(row)

    # -- liveness ----------------------------------------------------------------------------

    def worker_beat(self, worker: str) -> None:
        with self._write() as cur:
            self._ex(
                cur,
                "INSERT INTO workers (name, last_beat) VALUES (?, {now}) "
                "ON CONFLICT (name) DO UPDATE SET last_beat = excluded.last_beat",
                (worker,),
            )

    def worker_gone(self, worker: str) -> None:
        with self._write() as cur:
            self._ex(cur, "DELETE FROM workers WHERE name = ?", (worker,))

    def live_workers(self, within_s: float) -> int:
        with self._read() as cur:
            (n,) = self._ex(
                cur, "SELECT count(*) FROM workers WHERE last_beat > {now} - ?", (float(within_s),)
            ).fetchone()
        return int(n)

    def ping(self) -> bool:
        try:
            with self._read() as cur:
                return bool(self._ex(cur, "SELECT 1").fetchone())
        except Exception:
            return False


def migrations(seq_column: str) -> list[list[str]]:
    """The schema versions, in order; `seq_column` declares the dialect's auto-increment key.
    Never edit a released version: append one."""
    v1 = [
        f"""CREATE TABLE jobs (
            seq {seq_column},
            id TEXT NOT NULL UNIQUE,
            owner TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            request TEXT NOT NULL,
            idempotency_key TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            items_done INTEGER NOT NULL DEFAULT 0,
            items_total INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            worker TEXT,
            lease_expires DOUBLE PRECISION,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            result TEXT
        )""",
        "CREATE UNIQUE INDEX jobs_owner_idempotency ON jobs (owner, idempotency_key) "
        "WHERE idempotency_key IS NOT NULL",
        "CREATE INDEX jobs_queue ON jobs (status, seq)",
        "CREATE INDEX jobs_owner ON jobs (owner, seq)",
        """CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        )""",
    ]
    # v2: model-call progress beside item progress, and worker liveness for /readyz.
    v2 = [
        "ALTER TABLE jobs ADD COLUMN calls_done INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN calls_total INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE workers (name TEXT PRIMARY KEY, last_beat DOUBLE PRECISION NOT NULL)",
    ]
    # v3: the call cache in the store, for workers on machines that share no disk.
    v3 = [
        """CREATE TABLE call_cache (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            kind TEXT NOT NULL,
            request TEXT NOT NULL,
            response TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL
        )""",
    ]
    return [v1, v2, v3]
