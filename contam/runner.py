"""The runner: the one place that owns concurrency, de-duplication, batching, retries and caching.

`Runner` wraps a backend and is itself a `ModelClient`, so probes stay pure: they ask for
what they need and the runner decides how the calls are made. Identical requests, within
one call, across concurrent probes, and across runs (through the SQLite cache), reach the
backend once; except a sampled generation without a seed (`is_reproducible`), which is a fresh
draw each time it is asked and is never merged with another request or cached.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from contam.cache import CallCache, call_key
from contam.errors import ModelCallError, TransientModelError
from contam.models.base import (
    Capabilities,
    GenerateRequest,
    GenerateResult,
    ModelClient,
    ModelIdentity,
    PartialBatchError,
    ScoreRequest,
    ScoreResult,
)

Req = TypeVar("Req", bound=BaseModel)
Res = TypeVar("Res", bound=BaseModel)
T = TypeVar("T")


# What a text past the model's context does: listed as unscored (skip) or fails the scan (fail).
OnTooLong = Literal["skip", "fail"]


class Progress(Protocol):
    """Where the runner reports progress; the CLI plugs in a progress bar."""

    def add_total(self, n: int) -> None: ...

    def advance(self, n: int, *, cached: bool = False) -> None: ...


@runtime_checkable
class ItemProgress(Progress, Protocol):
    """A `Progress` that also counts benchmark items: `contam.scan` reports (probe, item) pairs,
    done as each probe finishes a partition, so a bar can show items beside calls."""

    def add_item_total(self, n: int) -> None: ...

    def advance_items(self, n: int) -> None: ...


class _NoProgress:
    def add_total(self, n: int) -> None:
        return None

    def advance(self, n: int, *, cached: bool = False) -> None:
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After wins when it is longer.

    A Retry-After is trusted up to `max_retry_after` seconds, so one server's "come back in an
    hour" cannot stall a scan for an hour.
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if min(self.base, self.cap, self.max_retry_after) < 0:
            raise ValueError("retry delays must be >= 0")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0, min(self.cap, self.base * 2**attempt))
        return max(backoff, min(retry_after or 0.0, self.max_retry_after))


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    rng: random.Random | None = None,
    *,
    limit: asyncio.Semaphore | None = None,
) -> T:
    """Run `call`, retrying `TransientModelError` per `policy`; raise `ModelCallError` when spent.

    `limit`, if given, is held for each attempt only, never while sleeping between attempts, so
    a request waiting out a backoff leaves its concurrency slot to others.
    """
    rng = rng or random.Random()
    for attempt in range(policy.attempts):
        try:
            if limit is None:
                return await call()
            async with limit:
                return await call()
        except TransientModelError as exc:
            if attempt == policy.attempts - 1:
                raise ModelCallError(f"gave up after {policy.attempts} attempts: {exc}") from exc
            await asyncio.sleep(policy.delay(attempt, exc.retry_after, rng))
    raise AssertionError("unreachable")


def describe_request(request: BaseModel, width: int = 60) -> str:
    """A short, recognisable quote of a request's text, for error messages."""
    text = getattr(request, "text", None) or getattr(request, "prompt", None)
    if not isinstance(text, str):
        return type(request).__name__
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 1] + "…") + f" ({len(text)} characters)"


def is_reproducible(request: BaseModel) -> bool:
    """Whether asking `request` again must give the same answer, so it may be merged and cached.

    A sampled generation without a seed is a new draw each time (a probe that asks for k samples
    wants k draws, not one replayed k times); greedy, seeded and score requests are reproducible.
    """
    return not (isinstance(request, GenerateRequest) and request.temperature > 0 and request.seed is None)


class _Skipped(Exception):
    """A queued batch not started because another batch of the same call already failed."""


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
        on_too_long: OnTooLong = "skip",
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.on_too_long = on_too_long
        self.client = client
        self.cache = cache if cache is not None else CallCache(None)
        self.batch_size = batch_size or client.max_batch
        self.retry = retry or RetryPolicy()
        self.progress: Progress = progress or _NoProgress()
        self.stats = RunnerStats()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._inflight: dict[str, asyncio.Future[str]] = {}
        self._rng = random.Random(0)
        self._draws = itertools.count()

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
        results = await self._run("score", requests, ScoreResult, self.client.score)
        if self.on_too_long == "fail":
            # Cached like any answer; only this policy turns an unscored long text into a failure.
            for request, result in zip(requests, results, strict=True):
                if result.overflow is not None:
                    raise ModelCallError(
                        f"{result.overflow.message()}; the request: {describe_request(request)} "
                        "(--on-too-long skip lists it as unscored and goes on)"
                    )
        return results

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
        keys = [
            call_key(model_key, kind, rj) if is_reproducible(r) else self._draw_key()
            for r, rj in zip(requests, request_json, strict=True)
        ]
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
        cached = self.cache.get_many([k for k in fresh if is_reproducible(unique[k][0])])
        answers.update(cached)
        self.stats.cache_hits += len(cached)
        if cached:
            self.progress.advance(len(cached), cached=True)

        misses = [k for k in fresh if k not in cached]
        loop = asyncio.get_running_loop()
        for key in misses:
            self._inflight[key] = loop.create_future()
        batches = [misses[i : i + self.batch_size] for i in range(0, len(misses), self.batch_size)]
        # After one batch fails for good, batches not yet started are skipped; those in flight run
        # to their end, so everything they complete is cached before the error propagates.
        failed = asyncio.Event()
        try:
            outcomes = await asyncio.gather(
                *(self._call_batch(kind, model_key, b, unique, backend_call, failed) for b in batches),
                return_exceptions=True,
            )
        except BaseException:  # this call itself was cancelled
            self._settle(misses, None)
            raise
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            # Probes awaiting these requests see the same error, not a CancelledError.
            self._settle(misses, errors[0])
            raise errors[0]
        for done in outcomes:
            if not isinstance(done, BaseException):
                answers.update(done)
        self._settle(misses, None)
        for key, future in waiting.items():
            answers[key] = await future
            self.progress.advance(1, cached=True)
        return [result_type.model_validate_json(answers[k]) for k in keys]

    def _draw_key(self) -> str:
        """A key of its own for an unreproducible request: no other request, in this call, in
        another probe's or in the cache, can share it (not hex, so never a `call_key`)."""
        return f"draw:{next(self._draws)}"

    def _settle(self, keys: Sequence[str], error: BaseException | None) -> None:
        """Drop `keys` from the in-flight table; any still unanswered fail with `error` (or are
        cancelled when this call was)."""
        for key in keys:
            future = self._inflight.pop(key, None)
            if future is None or future.done():
                continue
            if error is None:
                future.cancel()
            else:
                future.set_exception(error)
                future.exception()  # marks it retrieved: nobody awaiting it is not an error

    async def _call_batch(
        self,
        kind: str,
        model_key: str,
        batch: list[str],
        unique: dict[str, tuple[Req, str]],
        backend_call: Callable[[Sequence[Req]], Awaitable[Sequence[Res]]],
        failed: asyncio.Event,
    ) -> dict[str, str]:
        reqs = [unique[k][0] for k in batch]

        async def attempt() -> Sequence[Res]:
            if failed.is_set():
                raise _Skipped
            return await backend_call(reqs)

        try:
            results = await with_retries(attempt, self.retry, self._rng, limit=self._semaphore)
        except _Skipped:
            return {}
        except PartialBatchError as exc:
            failed.set()
            kept = {batch[i]: r for i, r in exc.completed.items() if 0 <= i < len(batch)}
            self._complete(kind, model_key, kept, unique)
            first = min(exc.failed, default=None)
            if first is None or not 0 <= first < len(reqs):
                raise
            # The backend knows only batch positions; the user needs to know which text it was.
            raise PartialBatchError(
                f"{exc}; that request: {describe_request(reqs[first])}",
                completed=exc.completed,
                failed=exc.failed,
            ) from exc
        except ModelCallError as exc:
            failed.set()
            if len(reqs) != 1:
                raise
            raise ModelCallError(f"{exc}; the request: {describe_request(reqs[0])}") from exc
        except BaseException:
            failed.set()
            raise
        if len(results) != len(reqs):
            failed.set()
            raise ModelCallError(f"backend returned {len(results)} results for {len(reqs)} requests")
        self.stats.batches += 1
        return self._complete(kind, model_key, dict(zip(batch, results, strict=True)), unique)

    def _complete(
        self, kind: str, model_key: str, results: dict[str, BaseModel], unique: dict[str, tuple[Req, str]]
    ) -> dict[str, str]:
        """Cache completed results, then hand them to everyone awaiting them."""
        responses = {key: result.model_dump_json() for key, result in results.items()}
        self.stats.calls += len(responses)
        # Written before anyone sees the answer: a kill after this line loses nothing.
        self.cache.put_many(
            (key, model_key, kind, unique[key][1], rj)
            for key, rj in responses.items()
            if is_reproducible(unique[key][0])
        )
        for key, response in responses.items():
            future = self._inflight.get(key)
            if future is not None and not future.done():
                future.set_result(response)
        self.progress.advance(len(responses))
        return responses
