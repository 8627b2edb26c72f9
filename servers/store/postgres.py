"""The PostgreSQL job store (psycopg 3), for workers on several machines sharing one queue.

A claim locks the row it takes with `FOR UPDATE SKIP LOCKED`, so concurrent workers never wait
on nor take the same job; times come from the server's clock. One autocommit connection per
thread; writes run in explicit transactions.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from typing import Any

from servers.store.base import StoreError
from servers.store.connections import ThreadConnections
from servers.store.sql import Cursor, SQLStore, migrations

_MIGRATION_LOCK = 0x636F6E74  # "cont": an advisory lock id of our own for schema upgrades


class PostgresStore(SQLStore):
    NOW = "(extract(epoch from clock_timestamp())::double precision)"
    CLAIM_LOCK = " FOR UPDATE SKIP LOCKED"
    MIGRATIONS = migrations("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        try:
            import psycopg
        except ModuleNotFoundError as exc:
            raise StoreError("a PostgreSQL store needs psycopg: pip install 'contam[server]'") from exc
        self._psycopg = psycopg
        self.url = url
        self._timeout = connect_timeout
        self._conns: ThreadConnections[Any] = ThreadConnections()
        self._closed = False

    def _conn(self) -> Any:
        conn = self._conns.current()
        if conn is not None and conn.closed:
            conn = None  # the server dropped it: reconnect
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            try:
                conn = self._psycopg.connect(self.url, autocommit=True, connect_timeout=int(self._timeout))
            except self._psycopg.OperationalError as exc:
                raise StoreError(f"cannot reach the PostgreSQL store: {exc}") from exc
            self._conns.add(conn)
        return conn

    def _sql(self, sql: str) -> str:
        return super()._sql(sql).replace("?", "%s")

    @contextlib.contextmanager
    def _read(self) -> Iterator[Cursor]:
        with self._unreachable(), self._conn().cursor() as cur:
            yield cur

    @contextlib.contextmanager
    def _write(self) -> Iterator[Cursor]:
        with self._unreachable():
            conn = self._conn()
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    @contextlib.contextmanager
    def _unreachable(self) -> Iterator[None]:
        """A dropped connection or a server going down is the store's failure, not a bug: a
        `StoreError` (the next call reconnects)."""
        try:
            yield
        except self._psycopg.OperationalError as exc:
            raise StoreError(f"the PostgreSQL store failed: {exc}") from exc

    def _lock_owner(self, cur: Cursor, owner: str) -> None:
        # Held to the end of the transaction: one job creation at a time per owner.
        key = zlib.crc32(owner.encode()) - 2**31  # into int4's range
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_MIGRATION_LOCK, key))

    def _lock_migrations(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, self._psycopg.errors.UniqueViolation)

    def close(self) -> None:
        self._closed = True
        self._conns.close_all()
