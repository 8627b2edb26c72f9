"""The benchmark's MinHash LSH in a real Redis (datasketch's Redis storage) gives the in-memory results."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpora_index import BenchmarkIndex, ShardTask, expand_sources, finalize, run_local
from corpora_index.readers import ReaderOptions, plan_shards
from corpora_index.redis_lsh import RedisTarget, basename, marker_key, publish, storage_config
from tests.fixtures.overlap_planted import build_planted

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (apt-get install -y redis-server)"
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(200):
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not answer PING within 10 s")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_redis_lsh_gives_the_in_memory_results(redis_url: str, tmp_path: Path) -> None:
    import redis

    planted = build_planted(tmp_path / "corpus", corpus_bytes=1_500_000, per_form=6, clean=12)
    index = BenchmarkIndex.build(planted.items)
    sources = expand_sources([planted.corpus])
    tasks = [ShardTask(s, ReaderOptions(), True, 1 << 20) for s in plan_shards(sources, 400 << 10)]
    local = finalize(index, run_local(index, tasks))

    shared = publish(index, RedisTarget.parse(redis_url))
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(basename(index) + b"*")
    assert keys, "the LSH was not written to Redis"
    # workers get the index as bytes and attach to the same Redis LSH
    remote = finalize(shared, run_local(BenchmarkIndex.from_bytes(shared.to_bytes()), tasks, workers=2))
    assert remote == local
    assert sum(i.minhash is not None for i in remote.items) >= 12
    # publishing again reuses the LSH already there
    before = client.dbsize()
    publish(index, RedisTarget.parse(redis_url))
    assert client.dbsize() == before


def test_a_partly_published_lsh_is_cleared_and_rebuilt(redis_url: str, tmp_path: Path) -> None:
    import redis

    from corpora_index.minhash import lean_minhash

    planted = build_planted(tmp_path / "corpus", corpus_bytes=600_000, per_form=2, clean=4)
    index = BenchmarkIndex.build(planted.items)
    assert index.near is not None
    sources = expand_sources([planted.corpus])
    tasks = [ShardTask(s, ReaderOptions(), True, 1 << 20) for s in plan_shards(sources, 200 << 10)]
    local = finalize(index, run_local(index, tasks))

    # a publish killed part way: some pieces in, a stray key, no completion marker
    target = RedisTarget.parse(redis_url)
    client = redis.Redis.from_url(redis_url)
    client.delete(marker_key(index))
    half = index.near.make_lsh(storage_config(index, target))
    pieces = index.near.piece_item.shape[0]
    with half.insertion_session() as session:
        for p in range(pieces // 3):
            session.insert(index.near.piece_key(p), lean_minhash(index.near.mh, index.near.piece_sigs[p]))
        session.insert(b"stray", lean_minhash(index.near.mh, index.near.piece_sigs[0]))
    keys_hash = basename(index) + b"_keys"
    assert client.hexists(keys_hash, b"stray") and not client.exists(marker_key(index))

    shared = publish(index, target)
    assert client.exists(marker_key(index))
    assert not client.hexists(keys_hash, b"stray")
    assert client.hlen(keys_hash) == pieces
    remote = finalize(shared, run_local(BenchmarkIndex.from_bytes(shared.to_bytes()), tasks))
    assert remote == local
