"""The runner: de-duplication, the persistent call cache, resumption, retries, concurrency bound."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from contam.cache import CallCache
from contam.errors import ModelCallError
from contam.models.base import GenerateRequest, PartialBatchError, ScoreRequest, ScoreResult
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


def test_retry_after_is_capped() -> None:
    import random

    policy = RetryPolicy(base=0.1, cap=1.0, max_retry_after=60.0)
    assert policy.delay(0, 3600.0, random.Random(0)) == 60.0
    assert RetryPolicy().max_retry_after == 60.0
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


class Poisoned(MockModel):
    """Fails for good on any batch holding `poison`; counts the batches it was handed."""

    def __init__(self, poison: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.poison = poison
        self.batches: list[list[str]] = []

    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        self.batches.append([r.text for r in requests])
        await asyncio.sleep(0.01)
        if any(r.text == self.poison for r in requests):
            raise ModelCallError("bad request: poisoned batch")
        return await super().score(requests)


async def test_probes_awaiting_a_failed_batch_see_its_error_not_a_cancellation() -> None:
    runner = Runner(Poisoned(TEXTS[1]), batch_size=2, concurrency=1)
    first, second = await asyncio.gather(
        runner.score(score_requests(TEXTS[:4])),
        runner.score(score_requests(TEXTS[:2])),  # waits on the first call's in-flight requests
        return_exceptions=True,
    )
    assert isinstance(first, ModelCallError) and "poisoned" in str(first)
    assert isinstance(second, ModelCallError) and "poisoned" in str(second)
    assert runner._inflight == {}


async def test_after_a_batch_fails_queued_batches_are_skipped_and_in_flight_ones_cached() -> None:
    model = Poisoned(TEXTS[0])
    runner = Runner(model, batch_size=2, concurrency=2)
    with pytest.raises(ModelCallError, match="poisoned"):
        await runner.score(score_requests(TEXTS[:10]))
    # Batches 0 and 1 ran side by side; 0 failed, 1 completed and is cached; 2-4 never started.
    assert model.batches == [TEXTS[0:2], TEXTS[2:4]]
    assert runner.stats.calls == 2 and len(runner.cache) == 2
    again = Runner(MockModel(), runner.cache)
    await again.score(score_requests(TEXTS[2:4]))
    assert again.stats.cache_hits == 2


async def test_partial_batch_results_are_cached_before_the_error_propagates(tmp_path: Path) -> None:
    class Partial(MockModel):
        async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
            done = await super().score(requests)
            raise PartialBatchError(
                "1 of 3 requests failed",
                completed={i: r for i, r in enumerate(done) if i != 1},
                failed={1: ModelCallError("HTTP 400")},
            )

    path = tmp_path / "c.sqlite"
    runner = Runner(Partial(), CallCache(path), batch_size=3)
    waiter_error: list[BaseException] = []

    async def waiter() -> None:
        try:
            await runner.score(score_requests(TEXTS[:3]))
        except ModelCallError as exc:
            waiter_error.append(exc)

    first, _ = await asyncio.gather(runner.score(score_requests(TEXTS[:3])), waiter(), return_exceptions=True)
    assert isinstance(first, PartialBatchError)
    assert f"that request: {TEXTS[1]!r}" in str(first)  # names the text, not only its batch index
    assert len(waiter_error) == 1 and not isinstance(waiter_error[0], asyncio.CancelledError)
    assert runner.stats.calls == 2 and len(runner.cache) == 2
    runner.cache.close()
    resumed_model = MockModel()
    resumed = Runner(resumed_model, CallCache(path))
    assert await resumed.score(score_requests(TEXTS[:3])) == await MockModel().score(score_requests(TEXTS[:3]))
    assert [json.loads(r)["text"] for _, r in resumed_model.calls] == [TEXTS[1]]


async def test_backoff_does_not_hold_the_concurrency_slot() -> None:
    from contam.errors import TransientModelError
    from contam.runner import with_retries

    slot = asyncio.Semaphore(1)
    events: list[str] = []
    tries = 0

    async def flaky() -> str:
        nonlocal tries
        tries += 1
        events.append(f"flaky{tries}")
        if tries == 1:
            raise TransientModelError("503", retry_after=0.2)
        return "ok"

    async def quick() -> str:
        await asyncio.sleep(0)
        events.append("quick")
        return "ok"

    policy = RetryPolicy(attempts=3, base=0.0, cap=0.0)
    await asyncio.gather(with_retries(flaky, policy, limit=slot), with_retries(quick, policy, limit=slot))
    assert events == ["flaky1", "quick", "flaky2"]
