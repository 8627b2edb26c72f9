"""The model contract: what a backend declares it can do, the requests it takes, what it returns.

Requests and results are pydantic so the runner can key and store them in the call cache
exactly; a backend translates them to and from its wire format and does nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from contam.errors import ModelCallError, TransientModelError

R = TypeVar("R", bound=BaseModel)

DistributionSupport = Literal["exact", "approx_top_k", "none"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Capabilities(_Frozen):
    """What a backend can really do. Probes needing more are skipped with the reason stated."""

    prompt_logprobs: bool = Field(description="log-probs of given text tokens (scoring)")
    token_logprobs: bool = Field(description="log-probs of generated tokens")
    distribution: DistributionSupport = Field(
        description="per-position mean/std of log p over the next-token distribution: exact (full "
        "vocabulary), approx_top_k (renormalised over the top-k returned), or none"
    )
    chat_only: bool = Field(default=False, description="only a chat endpoint; no raw completion")
    chat: bool = Field(
        default=True,
        description="takes chat messages (a chat endpoint with a template); local backends do not",
    )
    n_samples: bool = Field(default=True, description="n samples per request in one call")
    max_top_k: int = Field(default=0, description="most alternatives per position it returns")

    def missing(self, needs: Sequence[str]) -> list[str]:
        """Names in `needs` this backend lacks; `distribution` counts only when exact."""
        lacking = []
        for need in needs:
            if need == "distribution":
                if self.distribution != "exact":
                    lacking.append(need)
            elif not getattr(self, need):
                lacking.append(need)
        return lacking


class ModelIdentity(_Frozen):
    """Who answered: keys the call cache (a changed model invalidates it) and goes in reports."""

    backend: str
    name: str
    fingerprint: str = Field(description="content hash of the weights/config, or the served name+url")
    tokenizer: str | None = None
    settings: dict[str, str] = Field(
        default_factory=dict,
        description="backend options that change the numbers (dtype, max_model_len, top-k, ...)",
    )
    bos_default: bool | None = Field(
        default=None,
        description="whether the tokenizer prepends a BOS token by default, which scoring follows "
        "unless a request forces it (None: not known)",
    )
    basis: str | None = Field(
        default=None,
        description="what the fingerprint and settings cover, in words (weights, served dtype or URL)",
    )
    weights_fingerprinted: bool = Field(
        default=True,
        description="false when the weights could not be read (a remote server): the fingerprint "
        "then names the served model and URL only, and a change of weights behind that name goes "
        "unnoticed",
    )

    @property
    def key(self) -> str:
        base = f"{self.backend}:{self.name}:{self.fingerprint}"
        if not self.settings:
            return base
        return base + ":" + ",".join(f"{k}={v}" for k, v in sorted(self.settings.items()))


class ScoreRequest(_Frozen):
    """Score `text` exactly as given (never chat-templated)."""

    text: str
    add_bos: bool | None = Field(
        default=None,
        description="None: BOS as the tokenizer's own encode puts it (Llama yes, GPT-2 no), the same "
        "on every backend; true or false forces it (true needs a tokenizer with a BOS token)",
    )
    top_k: int = Field(default=0, ge=0, description="alternatives to return per position")
    distribution: bool = Field(default=False, description="also return per-position mean/std of log p")


class TokenAlternative(_Frozen):
    token: str
    logprob: float


class ContextOverflow(_Frozen):
    """Why a text was not scored: it does not fit the model's context."""

    tokens: int | None = Field(description="the text's length in tokens, BOS included (None: not said)")
    limit: int | None = Field(description="the model's longest sequence in tokens (None: not said)")
    setting: str = Field(description="where the limit comes from (max_model_len, the server, ...)")

    def message(self) -> str:
        length = f"{self.tokens} tokens" if self.tokens is not None else "longer than the context"
        limit = f"{self.limit} tokens" if self.limit is not None else "not stated"
        return f"the text is {length}; the model's maximum context length is {limit} ({self.setting})"


class ScoreResult(_Frozen):
    """Per-token log-probs of the scored text.

    `tokens[i]` has log-prob `logprobs[i]` given everything before it. Without a BOS the first
    text token has no conditional log-prob and is left out, which `bos` records. A text past the
    model's context is not scored: no tokens, and `overflow` says by how much, on every backend
    alike, so one long item leaves the rest of a scan to run (the runner can still refuse it).
    """

    tokens: tuple[str, ...]
    logprobs: tuple[float, ...]
    bos: bool
    dist_mean: tuple[float, ...] | None = None
    dist_std: tuple[float, ...] | None = None
    distribution: DistributionSupport = "none"
    top: tuple[tuple[TokenAlternative, ...], ...] | None = None
    overflow: ContextOverflow | None = None

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))

    @property
    def mean(self) -> float:
        return self.total / len(self.logprobs) if self.logprobs else float("nan")


def empty_score(
    request: ScoreRequest,
    *,
    bos: bool,
    distribution: DistributionSupport,
    overflow: ContextOverflow | None = None,
) -> ScoreResult:
    """The result for a text with no token that has a conditional log-prob (empty, or one token
    without BOS), or one past the context (`overflow`): nothing scored, said the same way by every
    backend instead of made up."""
    return ScoreResult(
        tokens=(),
        logprobs=(),
        bos=bos,
        dist_mean=() if request.distribution else None,
        dist_std=() if request.distribution else None,
        distribution=distribution if request.distribution else "none",
        top=() if request.top_k else None,
        overflow=overflow,
    )


@dataclass(frozen=True)
class ContextLimit:
    """A model's longest sequence in tokens, and the setting it comes from (for the message)."""

    tokens: int | None
    setting: str

    def overflow(self, n_tokens: int) -> ContextOverflow | None:
        """Why a text of `n_tokens` cannot be scored, or None if it fits."""
        if self.tokens is None or n_tokens <= self.tokens:
            return None
        return ContextOverflow(tokens=n_tokens, limit=self.tokens, setting=self.setting)

    def check(self, n_tokens: int, what: str) -> ModelCallError | None:
        """An error for a sequence past the limit (past it a local model's numbers mean nothing)."""
        if self.tokens is None or n_tokens <= self.tokens:
            return None
        return ModelCallError(
            f"{what} is {n_tokens} tokens; the model's maximum context length is "
            f"{self.tokens} tokens ({self.setting})"
        )

    def check_prompt(self, n_prompt: int, max_tokens: int) -> ModelCallError | None:
        """The same for a generation: the prompt and every token it may add must fit."""
        what = f"the prompt ({n_prompt} tokens) plus max_tokens={max_tokens}"
        return self.check(n_prompt + max_tokens, what)


@dataclass
class ScoreTriage:
    """A score batch sorted before it reaches a local model: texts with nothing to score or past
    the context (answered in `results`), and the indices left to run."""

    results: dict[int, ScoreResult]
    runnable: list[int]

    @classmethod
    def of(
        cls,
        requests: Sequence[ScoreRequest],
        encoded: Sequence[Sequence[int]],
        *,
        bos: Sequence[bool],
        limit: ContextLimit,
        distribution: DistributionSupport,
    ) -> ScoreTriage:
        triage = cls({}, [])
        for i, (req, ids, with_bos) in enumerate(zip(requests, encoded, bos, strict=True)):
            # Per request, so one long text does not fail the whole batch.
            overflow = limit.overflow(len(ids))
            if overflow is not None or len(ids) < 2:  # < 2: no token with a conditional log-prob
                triage.results[i] = empty_score(
                    req, bos=with_bos, distribution=distribution, overflow=overflow
                )
            else:
                triage.runnable.append(i)
        return triage


class ChatMessage(_Frozen):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerateRequest(_Frozen):
    """A completion (`prompt`) or, for chat-only models, a conversation (`messages`)."""

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    max_tokens: int = Field(default=64, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int = Field(default=0, ge=0, description="top-k log-probs per generated token")


class Completion(_Frozen):
    text: str
    finish_reason: str | None = None
    logprobs: tuple[float, ...] | None = None
    token_ids: tuple[int, ...] | None = Field(
        default=None,
        description="the generated token ids, an end-of-sequence token included as vLLM reports it; "
        "None where the backend does not give them (APIs other than vLLM's)",
    )


class GenerateResult(_Frozen):
    completions: tuple[Completion, ...]


@runtime_checkable
class ModelClient(Protocol):
    """A model behind any backend. One batch in, one result per request out, same order."""

    @property
    def identity(self) -> ModelIdentity: ...

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def max_batch(self) -> int:
        """How many requests the backend prefers per call (the runner batches to this)."""
        ...

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]: ...

    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]: ...

    async def aclose(self) -> None: ...


class PartialBatchError(ModelCallError):
    """Some requests of a batch failed for good, others completed.

    `completed` maps a request's index in the batch to its result, so the runner can cache
    those before the error propagates; `failed` maps the other indices to their errors.
    """

    def __init__(
        self,
        message: str,
        *,
        completed: Mapping[int, BaseModel],
        failed: Mapping[int, BaseException],
    ) -> None:
        super().__init__(message)
        self.completed = dict(completed)
        self.failed = dict(failed)


def batch_failure(
    completed: Mapping[int, BaseModel], failed: Mapping[int, BaseException], total: int
) -> BaseException:
    """The error to raise when `failed` requests of a batch of `total` failed for good: a
    `PartialBatchError` carrying the completed results, or the first error if none completed."""
    first_index, first = min(failed.items())
    if not completed:
        return first
    error = PartialBatchError(
        f"{len(failed)} of {total} requests failed ({len(completed)} completed and kept); "
        f"request {first_index}: {first}",
        completed=completed,
        failed=failed,
    )
    error.__cause__ = first
    return error


async def gather_each(calls: Sequence[Awaitable[R]]) -> list[R]:
    """Await every per-request call to its end, in order.

    If some failed with a model-call error, raise `batch_failure(...)`, which keeps the
    completed results. Any other exception (a bug, an input error, a cancellation) propagates
    unchanged.
    """
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    failed = {i: o for i, o in enumerate(outcomes) if isinstance(o, BaseException)}
    if not failed:
        return [o for o in outcomes if not isinstance(o, BaseException)]
    for exc in failed.values():
        if not isinstance(exc, ModelCallError | TransientModelError):
            raise exc
    completed = {i: o for i, o in enumerate(outcomes) if not isinstance(o, BaseException)}
    raise batch_failure(completed, failed, len(outcomes))
