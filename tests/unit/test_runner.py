"""The runner: de-duplication, the persistent call cache, resumption, retries, concurrency bound."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from contam.cache import CallCache
from contam.errors import ModelCallError
from contam.models.base import GenerateRequest, ScoreRequest, ScoreResult
from contam.models.mock import MockModel
from contam.runner import RetryPolicy, Runner

TEXTS = [f"item number {i} with some words" for i in range(20)]

FAST_RETRY = RetryPolicy(attempts=4, base=0.0, cap=0.0)


def score_requests(texts: Sequence[str]) -> list[ScoreRequest]:
    return [ScoreRequest(text=t) for t in texts]


async def test_duplicates_reach_the_backend_once() -> None:
    model = MockModel()
    runner = Runner(model, batch_size=4)
    results = await runner.score(score_requests(TEXTS + TEXTS[:5] + TEXTS))
    assert len(results) == 45
    assert results[0] == results[20] == results[25]
    assert len(model.calls) == 20
    assert runner.stats.deduplicated == 25


async def test_results_keep_request_order_across_batches() -> None:
    runner = Runner(MockModel(), batch_size=3, concurrency=3)
    results = await runner.score(score_requests(TEXTS))
    direct = await MockModel().score(score_requests(TEXTS))
    assert results == direct


async def test_concurrent_identical_requests_share_one_call() -> None:
    model = MockModel(delay=0.05)
    runner = Runner(model, batch_size=2, concurrency=2)
    a, b = await asyncio.gather(runner.score(score_requests(TEXTS)), runner.score(score_requests(TEXTS)))
    assert a == b
    assert len(model.calls) == len(TEXTS)


async def test_cache_persists_across_runners(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    first = MockModel()
    runner = Runner(first, CallCache(path))
    expected = await runner.score(score_requests(TEXTS))
    runner.cache.close()

    second = MockModel()
    again = Runner(second, CallCache(path))
    assert await again.score(score_requests(TEXTS)) == expected
    assert second.calls == []
    assert again.stats.cache_hits == len(TEXTS)


async def test_cache_key_includes_every_parameter(tmp_path: Path) -> None:
    model = MockModel()
    runner = Runner(model, CallCache(tmp_path / "c.sqlite"))
    await runner.generate([GenerateRequest(prompt="p", seed=1, temperature=1.0)])
    await runner.generate([GenerateRequest(prompt="p", seed=2, temperature=1.0)])
    await runner.generate([GenerateRequest(prompt="p", seed=1, temperature=1.0)])
    await runner.score([ScoreRequest(text="p", add_bos=False)])
    assert len(model.calls) == 3


async def test_changed_model_does_not_read_old_answers(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    await Runner(MockModel(), cache).score(score_requests(TEXTS))
    other = MockModel(seen=["a memorised text"])  # different script, different identity
    assert other.identity.key != MockModel().identity.key
    await Runner(other, cache).score(score_requests(TEXTS))
    assert len(other.calls) == len(TEXTS)


async def test_resume_after_partial_run_repeats_no_completed_call(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    partial = MockModel()
    await Runner(partial, CallCache(path)).score(score_requests(TEXTS[:7]))
    rest = MockModel()
    full = await Runner(rest, CallCache(path)).score(score_requests(TEXTS))
    assert len(rest.calls) == len(TEXTS) - 7
    assert full == await MockModel().score(score_requests(TEXTS))


async def test_transient_failures_are_retried() -> None:
    model = MockModel(fail_every=2)  # every second attempt fails
    runner = Runner(model, batch_size=5, concurrency=1, retry=FAST_RETRY)
    results = await runner.score(score_requests(TEXTS))
    assert len(results) == len(TEXTS)
    assert len(model.calls) == len(TEXTS)  # failed attempts recorded no completed call


async def test_retries_are_bounded() -> None:
    model = MockModel(fail_every=1)
    runner = Runner(model, retry=FAST_RETRY)
    with pytest.raises(ModelCallError, match="gave up after 4 attempts"):
        await runner.score(score_requests(TEXTS[:1]))
    assert model._attempts == 4


async def test_concurrency_is_bounded() -> None:
    in_flight = 0
    peak = 0

    class Slow(MockModel):
        async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return await super().score(requests)

    runner = Runner(Slow(), batch_size=1, concurrency=3)
    await runner.score(score_requests(TEXTS))
    assert peak == 3


def test_retry_delay_honours_retry_after() -> None:
    import random

    policy = RetryPolicy(base=0.1, cap=1.0)
    rng = random.Random(0)
    assert policy.delay(0, 5.0, rng) == 5.0
    assert 0.0 <= policy.delay(10, None, rng) <= 1.0
