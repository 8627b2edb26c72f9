"""The MinHash LSH of a benchmark, kept in Redis through datasketch's own Redis storage.

Many scan workers (processes, Ray tasks, machines) then share one LSH instead of each building
its own. Keys are bytes and `prepickle=False`, so nothing in Redis is pickled. The Redis key prefix
(`basename`) is derived from the index fingerprint and the benchmark's items, so two benchmarks, or
two settings, never share buckets.

A publish writes a completion marker (`basename:complete`) after the last piece; an LSH without it
(a publish that was killed part way) is cleared and rebuilt, never trusted. Two publishers racing on
the same empty basename both rebuild it; neither trusts the other's half.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from contam.errors import BackendUnavailable, InputError
from corpora_index.benchmark_index import BenchmarkIndex


@dataclass(frozen=True, slots=True)
class RedisTarget:
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0

    @classmethod
    def parse(cls, url: str) -> RedisTarget:
        parsed = urlparse(url if "://" in url else f"redis://{url}")
        if parsed.scheme != "redis" or not parsed.hostname:
            raise InputError(f"{url!r} is not redis://HOST:PORT[/DB]", field="--redis")
        db = int(parsed.path.lstrip("/") or 0)
        return cls(parsed.hostname, parsed.port or 6379, db)


def _require_redis() -> None:
    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(
            "a Redis-backed LSH needs the redis client: pip install 'contam[redis]'"
        ) from exc


def basename(index: BenchmarkIndex) -> bytes:
    digest = hashlib.sha256(index.settings.model_dump_json().encode())
    for item in index.items:
        digest.update(f"{item.partition}\x00{item.id}\x00".encode())
    if index.near is not None:
        digest.update(index.near.piece_sigs.tobytes())
    return b"contam:lsh:" + digest.hexdigest()[:24].encode()


def marker_key(index: BenchmarkIndex) -> bytes:
    """Written last by `publish`; datasketch's own keys are `basename_...`, so it never collides."""
    return basename(index) + b":complete"


def storage_config(index: BenchmarkIndex, target: RedisTarget) -> dict[str, Any]:
    return {
        "type": "redis",
        "basename": basename(index),
        "redis": {"host": target.host, "port": target.port, "db": target.db},
    }


def publish(index: BenchmarkIndex, target: RedisTarget) -> BenchmarkIndex:
    """Put the index's LSH into Redis (once) and return the index wired to it.

    The returned index carries the storage config, so workers it is broadcast to attach to the
    same Redis LSH.
    """
    _require_redis()
    if index.near is None:
        raise InputError("a Redis LSH needs the MinHash tier (drop --no-minhash)", field="--redis")
    import redis

    config = storage_config(index, target)
    client = redis.Redis(host=target.host, port=target.port, db=target.db)
    try:
        marker = marker_key(index)
        # the basename is content-derived, so a complete LSH already there is this one: reuse it
        if not client.exists(marker):
            _clear(client, basename(index))
            lsh = index.near.make_lsh(config)
            index.near.insert_into(lsh)
            client.set(marker, str(index.near.piece_item.shape[0]))
    except redis.ConnectionError as exc:
        raise BackendUnavailable(f"cannot reach Redis at {target.host}:{target.port}: {exc}") from exc
    finally:
        client.close()
    return BenchmarkIndex(index.settings, index.items, index.exact, index.near, lsh_storage=config)


def _clear(client: Any, prefix: bytes) -> None:
    """Delete what a killed publish left under `prefix` (datasketch's keys are `prefix_...`)."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=prefix + b"_*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)
