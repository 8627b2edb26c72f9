"""A short-lived memory of keys this process has verified, so a client polling a job does not pay
a salted hash and a store round trip on every request.

An entry lives `ttl_s` seconds (1 s by default): a revoked key is refused by every process
within that time. Entries are keyed by the SHA-256 of the bearer token, never the token itself,
and only successes are remembered, so a wrong key is always checked against the store.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from servers.store.base import KeyRecord

DEFAULT_TTL_S = 1.0
MAX_ENTRIES = 10_000


class KeyCache:
    def __init__(self, ttl_s: float = DEFAULT_TTL_S, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[bytes, tuple[KeyRecord, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def get(self, token: str) -> KeyRecord | None:
        if self.ttl_s <= 0:
            return None
        digest = self._digest(token)
        with self._lock:
            hit = self._entries.get(digest)
            if hit is None:
                return None
            record, expires = hit
            if self.clock() >= expires:
                del self._entries[digest]
                return None
            return record

    def put(self, token: str, record: KeyRecord) -> None:
        if self.ttl_s <= 0:
            return
        digest = self._digest(token)
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                now = self.clock()
                self._entries = {d: e for d, e in self._entries.items() if e[1] > now}
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
            self._entries[digest] = (record, self.clock() + self.ttl_s)
