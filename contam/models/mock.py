"""The scripted mock model: deterministic, dependency-free, registered like any backend.

For unit tests of probe and runner logic only; every capability is also exercised against
real models in the integration tests.

Tokens are whitespace-delimited words (with their leading spaces). A token's log-prob is a
deterministic function of the previous and current token, so the same text always scores the
same; texts listed as `seen` score near zero, as memorised text would. The per-position
distribution is a fixed softmax over a small pseudo-vocabulary that contains the true token,
so Min-K%++ statistics are exact and consistent with the returned log-probs.

Spec options (`mock:delay=0.05,calls=calls.jsonl,seen=seen.json`):
    delay       seconds slept per call (a slow model, for kill/resume tests)
    calls       append one JSON line per completed request to this file (call accounting)
    seen        JSON file: a list of texts the model has "memorised"
    fail_every  raise a transient error on every Nth call (retry tests)
    chat_only   1 to declare a chat-only model without log-probs
    context     the longest text in tokens, BOS included; longer ones are not scored (`overflow`)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from contam.errors import ModelSpecError, TransientModelError
from contam.models.base import (
    Capabilities,
    Completion,
    ContextLimit,
    GenerateRequest,
    GenerateResult,
    ModelIdentity,
    ScoreRequest,
    ScoreResult,
    TokenAlternative,
    empty_score,
)
from contam.models.spec import ModelSpec

_TOKEN = re.compile(r"\s*\S+|\s+")
_VOCAB = 32  # pseudo-vocabulary size per position
_SEEN_LOGPROB = -0.05


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest(), "big")


def _position_logits(prev: str, token: str) -> list[float]:
    """Logits of a pseudo-vocabulary whose entry 0 is the true token."""
    return [((_h(prev, token, str(j)) % 1000) / 1000.0) * 6.0 - 3.0 for j in range(_VOCAB)]


def _log_softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    log_z = top + math.log(sum(math.exp(x - top) for x in logits))
    return [x - log_z for x in logits]


class MockModel:
    """A `ModelClient` whose answers are a pure function of the request (plus an optional script)."""

    def __init__(
        self,
        *,
        seen: Iterable[str] = (),
        score_script: Mapping[str, ScoreResult] | None = None,
        generate_fn: Callable[[GenerateRequest], GenerateResult] | None = None,
        delay: float = 0.0,
        calls_path: str | Path | None = None,
        fail_every: int = 0,
        chat_only: bool = False,
        name: str = "mock",
        context: int | None = None,
    ) -> None:
        self.seen = tuple(seen)
        self.limit = ContextLimit(context, "the mock's context option")
        self.score_script = dict(score_script or {})
        self.generate_fn = generate_fn
        self.delay = delay
        self.calls_path = Path(calls_path) if calls_path else None
        self.fail_every = fail_every
        self.calls: list[tuple[str, str]] = []  # (kind, request json), for in-process tests
        self._attempts = 0
        # Everything that changes an answer: seen texts, scripted results (values, not just keys),
        # the chat flag, and which generate function (code cannot be hashed by behaviour).
        script = {
            "seen": sorted(self.seen),
            "score": sorted((text, r.model_dump_json()) for text, r in self.score_script.items()),
            "chat_only": chat_only,
            "context": context,
            "generate_fn": _callable_name(generate_fn) if generate_fn is not None else None,
        }
        script_hash = hashlib.sha256(
            json.dumps(script, ensure_ascii=False, sort_keys=True).encode()
        ).hexdigest()[:16]
        self._identity = ModelIdentity(backend="mock", name=name, fingerprint=script_hash, tokenizer="words")
        if chat_only:
            self._caps = Capabilities(
                prompt_logprobs=False, token_logprobs=False, distribution="none", chat_only=True
            )
        else:
            self._caps = Capabilities(
                prompt_logprobs=True, token_logprobs=True, distribution="exact", max_top_k=_VOCAB
            )

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def max_batch(self) -> int:
        return 8

    async def aclose(self) -> None:
        return None

    async def _call(self, kind: str, requests: Sequence[ScoreRequest] | Sequence[GenerateRequest]) -> None:
        self._attempts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_every and self._attempts % self.fail_every == 0:
            raise TransientModelError(f"scripted failure on attempt {self._attempts}", retry_after=0.0)
        for request in requests:
            self.calls.append((kind, request.model_dump_json()))
        if self.calls_path is not None:
            with self.calls_path.open("a", encoding="utf-8") as fh:
                for request in requests:
                    fh.write(json.dumps({"kind": kind, "request": request.model_dump(mode="json")}) + "\n")

    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        if self._caps.chat_only:
            raise ModelSpecError("this mock is chat-only and cannot score text")
        await self._call("score", requests)
        return [self._score_one(r) for r in requests]

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        await self._call("generate", requests)
        return [self.generate_fn(r) if self.generate_fn else self._generate_one(r) for r in requests]

    def _score_one(self, request: ScoreRequest) -> ScoreResult:
        scripted = self.score_script.get(request.text)
        if scripted is not None:
            return scripted
        tokens = tokenize(request.text)
        memorised = any(request.text in s for s in self.seen)
        bos = request.add_bos is not False  # the mock's tokenizer adds BOS by default, as Llama's does
        overflow = self.limit.overflow(len(tokens) + bos)
        if overflow is not None:
            return empty_score(request, bos=bos, distribution="exact", overflow=overflow)
        scored = tokens if bos else tokens[1:]
        prevs = (["<s>", *tokens] if bos else tokens)[: len(scored)]
        logprobs, means, stds, tops = [], [], [], []
        for prev, tok in zip(prevs, scored, strict=True):
            logits = _position_logits(prev, tok)
            if memorised:
                logits[0] = max(logits) + 8.0  # the true token dominates, as when memorised
            logp = _log_softmax(logits)
            probs = [math.exp(x) for x in logp]
            mu = sum(p * x for p, x in zip(probs, logp, strict=True))
            var = sum(p * x * x for p, x in zip(probs, logp, strict=True)) - mu * mu
            logprobs.append(logp[0])
            means.append(mu)
            stds.append(math.sqrt(max(var, 0.0)))
            if request.top_k:
                order = sorted(range(_VOCAB), key=lambda j: -logp[j])[: request.top_k]
                tops.append(
                    tuple(TokenAlternative(token=tok if j == 0 else f"<{j}>", logprob=logp[j]) for j in order)
                )
        return ScoreResult(
            tokens=tuple(scored),
            logprobs=tuple(logprobs),
            bos=bos,
            dist_mean=tuple(means) if request.distribution else None,
            dist_std=tuple(stds) if request.distribution else None,
            distribution="exact" if request.distribution else "none",
            top=tuple(tops) if request.top_k else None,
        )

    def _generate_one(self, request: GenerateRequest) -> GenerateResult:
        prompt = request.prompt if request.prompt is not None else _chat_text(request)
        completions = []
        for i in range(request.n):
            continuation = None
            salt = f"{request.seed}:{i}" if request.temperature > 0 else "greedy"
            # A memorised text is continued verbatim from wherever the prompt leaves off: always
            # when greedy, and in 9 samples of 10 when sampling (its output distribution is peaked).
            if request.temperature == 0.0 or _h(prompt or "", salt, "copy") % 10:
                for text in self.seen:
                    if prompt and text.startswith(prompt) and len(text) > len(prompt):
                        continuation = text[len(prompt) :]
                        break
            if continuation is None:
                continuation = "".join(
                    f" w{_h(prompt, salt, str(k)) % 997}" for k in range(request.max_tokens)
                )
            words = tokenize(continuation)[: request.max_tokens]
            text = "".join(words)
            for stop in request.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text = text[:cut]
            lp = tuple(-0.05 if self.seen else -2.0 for _ in words) if request.logprobs else None
            ids = tuple(_h(w) % 50_000 for w in words)  # a word's id: the same word, the same id
            completions.append(Completion(text=text, finish_reason="length", logprobs=lp, token_ids=ids))
        return GenerateResult(completions=tuple(completions))


def _callable_name(fn: Callable[..., object]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _chat_text(request: GenerateRequest) -> str:
    return "\n".join(m.content for m in request.messages or ())


def create(spec: ModelSpec) -> MockModel:
    known = {"delay", "calls", "seen", "fail_every", "chat_only", "name", "context"}
    unknown = set(spec.options) - known
    if unknown:
        raise ModelSpecError(
            f"unknown mock option(s) {sorted(unknown)}; known: {sorted(known)}", field="--model"
        )
    opts = spec.options
    seen: list[str] = []
    if "seen" in opts:
        path = Path(opts["seen"])
        try:
            seen = list(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ModelSpecError(f"cannot read mock script: {exc}", path=str(path), field="seen") from exc
    try:
        return MockModel(
            seen=seen,
            delay=float(opts.get("delay", 0.0)),
            calls_path=opts.get("calls"),
            fail_every=int(opts.get("fail_every", 0)),
            chat_only=opts.get("chat_only", "0") in ("1", "true", "yes"),
            name=opts.get("name", "mock"),
            context=int(opts["context"]) if "context" in opts else None,
        )
    except ValueError as exc:
        raise ModelSpecError(f"bad mock option: {exc}", field="--model") from exc
