"""Sampled generations: a draw without a seed is asked of the backend every time; one with a seed,
and every greedy request, is de-duplicated and cached like any other call."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from contam.cache import CallCache
from contam.models.base import GenerateRequest
from contam.models.mock import MockModel
from contam.runner import Runner

UNSEEDED = GenerateRequest(prompt="def f(x):", temperature=0.8, max_tokens=4)
SEEDED = GenerateRequest(prompt="def f(x):", temperature=0.8, seed=7, max_tokens=4)
GREEDY = GenerateRequest(prompt="def f(x):", max_tokens=4)


class Counting:
    """Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.total = 0
        self.fresh = 0
        self.cached = 0

    def add_total(self, n: int) -> None:
        self.total += n

    def advance(self, n: int, *, cached: bool = False) -> None:
        if cached:
            self.cached += n
        else:
            self.fresh += n


def test_the_rule() -> None:
    from contam.runner import is_reproducible

    assert not is_reproducible(UNSEEDED)
    assert is_reproducible(SEEDED)
    assert is_reproducible(GREEDY)
    assert is_reproducible(GenerateRequest(prompt="p", seed=None, n=4))  # greedy, even n > 1


async def test_identical_unseeded_draws_in_one_call_each_reach_the_backend() -> None:
    model = MockModel()
    progress = Counting()
    runner = Runner(model, batch_size=2, progress=progress)
    results = await runner.generate([UNSEEDED, GREEDY, UNSEEDED, UNSEEDED, GREEDY])
    assert len(results) == 5
    assert [json.loads(r)["seed"] for _, r in model.calls].count(None) == 4  # 3 draws + 1 greedy
    assert len(model.calls) == 4
    assert runner.stats.requested == 5 and runner.stats.deduplicated == 1
    assert runner.stats.calls == 4 and runner.stats.cache_hits == 0
    assert (progress.total, progress.fresh, progress.cached) == (4, 4, 0)
    assert results[1] == results[4]


async def test_results_keep_order_with_draws_spread_over_batches() -> None:
    prompts = [f"prompt {i}" for i in range(7)]
    reqs = [GenerateRequest(prompt=p, temperature=1.0 if i % 2 else 0.0) for i, p in enumerate(prompts)]
    model = MockModel()
    runner = Runner(model, batch_size=2, concurrency=3)
    assert await runner.generate(reqs) == await MockModel().generate(reqs)


async def test_unseeded_draws_are_never_cached_across_calls_or_runners(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    model = MockModel()
    runner = Runner(model, CallCache(path))
    await runner.generate([UNSEEDED])
    await runner.generate([UNSEEDED])
    assert len(model.calls) == 2 and runner.stats.cache_hits == 0
    assert len(runner.cache) == 0
    runner.cache.close()

    later = MockModel()
    again = Runner(later, CallCache(path))
    await again.generate([UNSEEDED])
    assert len(later.calls) == 1 and again.stats.cache_hits == 0 and again.stats.calls == 1


async def test_concurrent_probes_asking_the_same_draw_each_get_their_own() -> None:
    model = MockModel(delay=0.05)
    runner = Runner(model, batch_size=1, concurrency=2)
    await asyncio.gather(runner.generate([UNSEEDED]), runner.generate([UNSEEDED]))
    assert len(model.calls) == 2
    assert runner._inflight == {}


async def test_seeded_and_greedy_requests_are_deduplicated_and_cached(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    model = MockModel()
    runner = Runner(model, CallCache(path))
    first = await runner.generate([SEEDED, SEEDED, GREEDY, GREEDY])
    assert len(model.calls) == 2 and runner.stats.deduplicated == 2
    assert await runner.generate([SEEDED, GREEDY]) == first[1:3]
    assert len(model.calls) == 2 and runner.stats.cache_hits == 2
    runner.cache.close()

    later = MockModel()
    again = Runner(later, CallCache(path))
    assert await again.generate([SEEDED, GREEDY]) == first[1:3]
    assert later.calls == [] and again.stats.cache_hits == 2


async def test_a_draw_shares_no_call_with_a_seeded_or_greedy_request(tmp_path: Path) -> None:
    model = MockModel(delay=0.02)
    runner = Runner(model, CallCache(tmp_path / "c.sqlite"), batch_size=1, concurrency=4)
    await asyncio.gather(runner.generate([SEEDED, UNSEEDED]), runner.generate([SEEDED, UNSEEDED, GREEDY]))
    assert len(model.calls) == 4  # one seeded, two draws, one greedy
    assert runner.stats.calls == 4 and len(runner.cache) == 2


def _rows(path: Path) -> list[dict[str, object]]:
    with sqlite3.connect(path) as db:
        return [json.loads(r) for (r,) in db.execute("SELECT request FROM calls")]


async def test_a_run_cut_short_stores_no_unseeded_draw(tmp_path: Path) -> None:
    # As a killed scan would leave it: some batches completed and written, the rest never ran.
    path = tmp_path / "calls.sqlite"
    reqs = [
        GenerateRequest(prompt=f"p{i}", temperature=0.7, seed=(i if i % 3 == 0 else None), max_tokens=2)
        for i in range(12)
    ]
    model = MockModel(delay=0.05)
    runner = Runner(model, CallCache(path), batch_size=2, concurrency=2)
    task = asyncio.create_task(runner.generate(reqs))
    while len(model.calls) < 6:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    runner.cache.close()

    stored = _rows(path)
    assert stored, "the seeded draws that completed are kept"
    assert all(r["seed"] is not None for r in stored)
    assert runner._inflight == {}

    resumed_model = MockModel()
    resumed = Runner(resumed_model, CallCache(path))
    await resumed.generate(reqs)
    asked = [json.loads(r) for _, r in resumed_model.calls]
    assert sum(r["seed"] is None for r in asked) == 8  # every draw asked again
    assert len(asked) == 12 - len(stored)
    assert all(r["seed"] is not None for r in _rows(path))
