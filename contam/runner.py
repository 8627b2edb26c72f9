"""The runner: the one place that owns concurrency, de-duplication, batching, retries and caching.

`Runner` wraps a backend and is itself a `ModelClient`, so probes stay pure: they ask for
what they need and the runner decides how the calls are made. Identical requests, within
one call, across concurrent probes, and across runs (through the SQLite cache), reach the
backend once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import BaseModel

from contam.cache import CallCache, call_key
from contam.errors import ModelCallError, TransientModelError
from contam.models.base import (
    Capabilities,
    GenerateRequest,
    GenerateResult,
    ModelClient,
    ModelIdentity,
    ScoreRequest,
    ScoreResult,
)

Req = TypeVar("Req", bound=BaseModel)
Res = TypeVar("Res", bound=BaseModel)
T = TypeVar("T")


class Progress(Protocol):
    """Where the runner reports progress; the CLI plugs in a progress bar."""

    def add_total(self, n: int) -> None: ...

    def advance(self, n: int, *, cached: bool = False) -> None: ...


class _NoProgress:
    def add_total(self, n: int) -> None:
        return None

    def advance(self, n: int, *, cached: bool = False) -> None:
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After wins when it is longer."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0, min(self.cap, self.base * 2**attempt))
        return max(backoff, retry_after or 0.0)


async def with_retries(
    call: Callable[[], Awaitable[T]], policy: RetryPolicy, rng: random.Random | None = None
) -> T:
    """Run `call`, retrying `TransientModelError` per `policy`; raise `ModelCallError` when spent."""
    rng = rng or random.Random()
    for attempt in range(policy.attempts):
        try:
            return await call()
        except TransientModelError as exc:
            if attempt == policy.attempts - 1:
                raise ModelCallError(f"gave up after {policy.attempts} attempts: {exc}") from exc
            await asyncio.sleep(policy.delay(attempt, exc.retry_after, rng))
    raise AssertionError("unreachable")


@dataclass
class RunnerStats:
    requested: int = 0
    deduplicated: int = 0
    cache_hits: int = 0
    calls: int = 0  # requests actually sent to the backend
    batches: int = 0


class Runner:
    """A caching, batching, bounded-concurrency `ModelClient` in front of a backend."""

    def __init__(
        self,
        client: ModelClient,
        cache: CallCache | None = None,
        *,
        concurrency: int = 4,
        batch_size: int | None = None,
        retry: RetryPolicy | None = None,
        progress: Progress | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.cache = cache if cache is not None else CallCache(None)
        self.batch_size = batch_size or client.max_batch
        self.retry = retry or RetryPolicy()
        self.progress: Progress = progress or _NoProgress()
        self.stats = RunnerStats()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._inflight: dict[str, asyncio.Future[str]] = {}
        self._rng = random.Random(0)

    @property
    def identity(self) -> ModelIdentity:
        return self.client.identity

    @property
    def capabilities(self) -> Capabilities:
        return self.client.capabilities

    @property
    def max_batch(self) -> int:
        return self.batch_size

    async def aclose(self) -> None:
        await self.client.aclose()

    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        return await self._run("score", requests, ScoreResult, self.client.score)

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return await self._run("generate", requests, GenerateResult, self.client.generate)

    async def _run(
        self,
        kind: str,
        requests: Sequence[Req],
        result_type: type[Res],
        backend_call: Callable[[Sequence[Req]], Awaitable[Sequence[Res]]],
    ) -> list[Res]:
        model_key = self.identity.key
        request_json = [r.model_dump_json() for r in requests]
        keys = [call_key(model_key, kind, rj) for rj in request_json]
        self.stats.requested += len(keys)

        unique: dict[str, tuple[Req, str]] = {}
        for key, req, rj in zip(keys, requests, request_json, strict=True):
            unique.setdefault(key, (req, rj))
        self.stats.deduplicated += len(keys) - len(unique)
        self.progress.add_total(len(unique))

        answers: dict[str, str] = {}
        waiting: dict[str, asyncio.Future[str]] = {}
        fresh = [k for k in unique if k not in self._inflight]
        for key in unique:
            if key in self._inflight:
                waiting[key] = self._inflight[key]  # another probe is already asking this
        cached = self.cache.get_many(fresh)
        answers.update(cached)
        self.stats.cache_hits += len(cached)
        if cached:
            self.progress.advance(len(cached), cached=True)

        misses = [k for k in fresh if k not in cached]
        loop = asyncio.get_running_loop()
        for key in misses:
            self._inflight[key] = loop.create_future()
        batches = [misses[i : i + self.batch_size] for i in range(0, len(misses), self.batch_size)]
        try:
            for done in await asyncio.gather(
                *(self._call_batch(kind, model_key, b, unique, backend_call) for b in batches)
            ):
                answers.update(done)
        finally:
            for key in misses:
                future = self._inflight.pop(key, None)
                if future is not None and not future.done():
                    future.cancel()
        for key, future in waiting.items():
            answers[key] = await future
            self.progress.advance(1, cached=True)
        return [result_type.model_validate_json(answers[k]) for k in keys]

    async def _call_batch(
        self,
        kind: str,
        model_key: str,
        batch: list[str],
        unique: dict[str, tuple[Req, str]],
        backend_call: Callable[[Sequence[Req]], Awaitable[Sequence[Res]]],
    ) -> dict[str, str]:
        reqs = [unique[k][0] for k in batch]
        async with self._semaphore:
            results = await with_retries(lambda: backend_call(reqs), self.retry, self._rng)
        if len(results) != len(reqs):
            raise ModelCallError(f"backend returned {len(results)} results for {len(reqs)} requests")
        self.stats.calls += len(reqs)
        self.stats.batches += 1
        responses = {key: result.model_dump_json() for key, result in zip(batch, results, strict=True)}
        # Written before anyone sees the answer: a kill after this line loses nothing.
        self.cache.put_many((key, model_key, kind, unique[key][1], rj) for key, rj in responses.items())
        for key, response in responses.items():
            future = self._inflight.get(key)
            if future is not None and not future.done():
                future.set_result(response)
        self.progress.advance(len(batch))
        return responses
