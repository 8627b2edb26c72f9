"""Request rate limits: token buckets, refilled continuously. One limiter is keyed by API key
(requests per key), another by client address (failed authentications per address, see
`servers.auth`).

In-process: with several `contam serve` processes each enforces its own bucket, so a key's
rate is at most `processes x rate`. The concurrent-job limit is enforced by the store
(`create_job(max_active=...)`), which every process shares.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


MAX_BUCKETS = 100_000


class RateLimiter:
    """`take(key)` spends one token; None when allowed, else the seconds until one is available.
    `wait(key)` says the same without spending.

    At most `max_buckets` keys are remembered (client addresses are the client's to choose): past
    that, buckets that have refilled are forgotten, as a new bucket starts full anyway; if every
    one is still in use, all are, which errs towards letting requests through."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_buckets = max_buckets
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._forget(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        return bucket

    def _forget(self, now: float) -> None:
        full = self.burst - 1e-9
        self._buckets = {
            k: b for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * self.rate < full
        }
        if len(self._buckets) >= self.max_buckets:
            self._buckets.clear()

    def take(self, key: str) -> float | None:
        now = self._clock()
        with self._lock:
            bucket = self._refilled(key, now)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / self.rate

    def wait(self, key: str) -> float | None:
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return None
            tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            return None if tokens >= 1.0 else (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """Retry-After is whole seconds (RFC 9110); never 0, or a client would retry at once."""
        return str(max(1, math.ceil(wait_s)))
