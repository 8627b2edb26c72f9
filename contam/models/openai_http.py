"""`openai`: any OpenAI-compatible HTTP server (a vLLM server, OpenAI, llama.cpp, SGLang) via httpx.

Scoring uses `/v1/completions` with `echo` and `logprobs` (prompt tokens come back with their
log-probs); generation uses `/v1/completions` with `n` samples, or `/v1/chat/completions` for a
chat-only model. One wire request per model request, at most `concurrency` in flight, so a vLLM
server batches them itself and stays saturated.

Each wire request is retried on its own (429, 5xx, timeouts, dropped connections) with
exponential backoff and full jitter, and never sooner than a server's Retry-After (capped). When
some requests of a batch fail for good, the others still finish and come back in a
`PartialBatchError`, so the runner caches them. The API key
is read from the environment variable the spec names and goes only into the Authorization header:
never into the identity, a repr, a log line, an error message or a report.

The identity hashes the server's model folder when the `root` it lists is readable here;
otherwise it is the served name and URL, with `weights_fingerprinted: false` saying so. No
OpenAI-compatible API reports the served dtype, which changes every number: a `dtype=` option
declares it, and without one the base URL goes into the identity, so a bf16 and an fp32 server of
one folder never share cached calls (`basis` says which it was).

BOS follows the server's tokenizer default, which is the policy of every backend (the tokenizer's
own `encode`); vLLM's `add_special_tokens` turns it off on request. A forced BOS the server cannot
give fails with that reason rather than score other tokens than `hf` would. Token texts are
aligned to the text (`token_text.align`), as the local backends' are. A text past the context is
not scored: the server's 400 answer becomes the result's `overflow`.

Capabilities are detected when the client is built (GET /models, one tiny echo call) and
declared. Over HTTP only the top-k alternatives per position are returned, so the distribution
statistics are `approx_top_k`, and results say so.

Spec options: `openai:NAME@URL?concurrency=16&batch=64&timeout=120&top_k=20&chat=1&dtype=float32`,
and the retry policy `retries=6&retry_base=0.5&retry_cap=30&max_retry_after=60` (attempts, backoff
seconds, and the longest Retry-After honoured).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import os
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contam.errors import BackendUnavailable, ModelCallError, ModelSpecError, TransientModelError
from contam.models.base import (
    Capabilities,
    Completion,
    ContextOverflow,
    GenerateRequest,
    GenerateResult,
    ModelIdentity,
    ScoreRequest,
    ScoreResult,
    TokenAlternative,
    empty_score,
    gather_each,
)
from contam.models.distribution import stats_from_logprobs
from contam.models.identity import folder_fingerprint, tokenizer_fingerprint
from contam.models.spec import ModelSpec
from contam.models.token_text import align, aligned
from contam.models.versions import computation
from contam.runner import RetryPolicy, with_retries

_OPTIONS = {
    "concurrency", "batch", "timeout", "top_k", "chat", "dtype",
    "retries", "retry_base", "retry_cap", "max_retry_after",
}  # fmt: skip
_TRANSIENT_STATUS = {408, 409, 425, 429}
_PROBE_TEXT = "Hello world"
# Bumped with any change to what this client makes of the same answers (parsing, token texts,
# BOS policy, approximate statistics). 2: BOS policy, aligned token texts, overflow results.
COMPUTATION = "openai/3"  # 3: completions carry a vLLM server's token ids
# The server's own words for a prompt past its context (vLLM, OpenAI, llama.cpp, SGLang).
_OVERFLOW = re.compile(
    r"maximum context length|context length exceeded|exceeds? the (?:available )?context", re.I
)
_LIMIT = re.compile(r"maximum context length is (\d+)", re.I)
_LENGTH = re.compile(r"(?:contains (?:at least )?|requested |has )(\d+) (?:input )?tokens", re.I)


class OverflowAnswer(ModelCallError):
    """The server refused a prompt as longer than its context."""

    def __init__(self, message: str, overflow: ContextOverflow) -> None:
        super().__init__(message)
        self.overflow = overflow


def _import_httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise BackendUnavailable(
            f"the openai backend needs httpx ({exc}); install it with: pip install 'contam[openai]'"
        ) from exc
    return httpx


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class OpenAIModel:
    """A `ModelClient` over an OpenAI-compatible server."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        batch: int = 64,
        timeout: float = 120.0,
        top_k: int | None = None,
        retry: RetryPolicy | None = None,
        chat: bool | None = None,
        dtype: str | None = None,
    ) -> None:
        self._httpx = _import_httpx()
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.batch = batch
        self.timeout = timeout
        self.dtype = dtype
        self.retry = retry or RetryPolicy()
        self._rng = random.Random(0)
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self.wire_requests = 0  # attempts sent, for accounting in tests and benchmarks
        info = self._detect_model()
        self.is_vllm = info.get("owned_by") == "vllm"
        root = info.get("root")
        self.server_adds_bos = False
        self._caps = self._detect_capabilities(chat, top_k)
        self._identity = self._make_identity(root if isinstance(root, str) else None, info)

    def __repr__(self) -> str:
        return f"OpenAIModel(name={self.name!r}, base_url={self.base_url!r})"

    # -- wire ----------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        return text.replace(key, "***") if key else text

    def _raise_for(self, status: int, body: str, headers: Any, path: str) -> None:
        if status < 400:
            return
        message = self._redact(_error_message(body))[:500]
        where = f"{path}: HTTP {status}: {message}"
        if status in _TRANSIENT_STATUS or status >= 500:
            raise TransientModelError(where, retry_after=parse_retry_after(headers.get("retry-after")))
        if status == 400 and _OVERFLOW.search(message):
            raise OverflowAnswer(where, overflow_of(message))
        raise ModelCallError(where)

    def _sync_call(
        self, method: str, path: str, payload: dict[str, Any] | None = None, *, base: str | None = None
    ) -> tuple[int, Any]:
        """A blocking call used only while building the client (capability detection)."""
        httpx = self._httpx
        for attempt in range(self.retry.attempts):
            try:
                with httpx.Client(timeout=self.timeout, headers=self._headers()) as client:
                    resp = client.request(method, (base or self.base_url) + path, json=payload)
                if resp.status_code in _TRANSIENT_STATUS or resp.status_code >= 500:
                    raise TransientModelError(
                        f"{path}: HTTP {resp.status_code}",
                        retry_after=parse_retry_after(resp.headers.get("retry-after")),
                    )
                return resp.status_code, _json_or_text(resp)
            except (httpx.TransportError, TransientModelError) as exc:
                if attempt == self.retry.attempts - 1:
                    raise ModelCallError(
                        f"{self.base_url}{path}: no answer after {self.retry.attempts} attempts: "
                        f"{self._redact(str(exc))}"
                    ) from exc
                retry_after = exc.retry_after if isinstance(exc, TransientModelError) else None
                time.sleep(self.retry.delay(attempt, retry_after, self._rng))
        raise AssertionError("unreachable")

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One wire request with its own retries; exhausted retries raise `ModelCallError`."""
        httpx = self._httpx
        client, semaphore = self._async_parts()

        async def attempt() -> dict[str, Any]:
            self.wire_requests += 1
            try:
                resp = await client.post(self.base_url + path, json=payload)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise TransientModelError(f"{path}: {type(exc).__name__}: {self._redact(str(exc))}") from exc
            self._raise_for(resp.status_code, resp.text, resp.headers, path)
            try:
                data: dict[str, Any] = resp.json()
            except ValueError as exc:
                raise TransientModelError(f"{path}: response is not JSON") from exc
            return data

        # The slot is held per attempt: a request sleeping out a backoff does not starve others.
        return await with_retries(attempt, self.retry, self._rng, limit=semaphore)

    def _async_parts(self) -> tuple[Any, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        # A client is bound to the loop it was made in; a CLI may run several loops in turn.
        if self._client is None or self._client_loop is not loop:
            httpx = self._httpx
            n = self.concurrency
            limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
            self._client = httpx.AsyncClient(timeout=self.timeout, headers=self._headers(), limits=limits)
            self._client_loop = loop
            self._semaphore = asyncio.Semaphore(self.concurrency)
        assert self._semaphore is not None
        return self._client, self._semaphore

    async def aclose(self) -> None:
        if self._client is not None and self._client_loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None
        self._client_loop = None

    # -- detection -----------------------------------------------------------------------------

    def _detect_model(self) -> dict[str, Any]:
        status, body = self._sync_call("GET", "/models")
        if status >= 400:
            message = self._redact(_error_message(body))
            raise ModelCallError(f"{self.base_url}/models: HTTP {status}: {message}")
        models = body.get("data", []) if isinstance(body, dict) else []
        for entry in models:
            if isinstance(entry, dict) and entry.get("id") == self.name:
                return entry
        served = ", ".join(str(m.get("id")) for m in models if isinstance(m, dict)) or "none"
        raise ModelSpecError(
            f"{self.base_url} does not serve {self.name!r} (it serves: {served})", field="--model"
        )

    def _server_version(self) -> str:
        """`vllm 0.32.0` from a vLLM server's /version; other servers do not say."""
        if not self.is_vllm:
            return "unknown"
        try:
            # vLLM serves /version beside /health, outside the /v1 API root.
            status, body = self._sync_call("GET", "/version", base=self.base_url.removesuffix("/v1"))
        except ModelCallError:
            return "unknown"
        found = body.get("version") if status == 200 and isinstance(body, dict) else None
        return f"vllm {found}" if isinstance(found, str) else "unknown"

    def _make_identity(self, root: str | None, info: dict[str, Any]) -> ModelIdentity:
        # What changes the numbers: top-k of the approximate statistics, chat mode, this client's
        # computation and the server's version, and the served dtype, which no OpenAI-compatible
        # API reports: declared (`dtype=`), or else stood in for by where it is served.
        settings = {
            "max_top_k": str(self._caps.max_top_k),
            "chat": str(int(self._caps.chat_only)),
            "computation": f"{computation(COMPUTATION, ('httpx',))} server={self._server_version()}",
        }
        if self.dtype is not None:
            settings["dtype"] = self.dtype
            dtype_basis = f"the declared dtype {self.dtype}"
        else:
            settings["server"] = self.base_url
            dtype_basis = "the server URL (its dtype is not known: declare it with dtype=)"
        bos = self.server_adds_bos if self._caps.prompt_logprobs else None
        if root and (Path(root) / "config.json").is_file():
            # The server's model folder is readable here: key the cache by its content.
            tok = tokenizer_fingerprint(root)
            return ModelIdentity(
                backend="openai",
                name=self.name,
                fingerprint=folder_fingerprint(root),
                tokenizer=f"{Path(root).name}:{tok}" if tok else None,
                settings=settings,
                bos_default=bos,
                basis=f"the served model folder's content and {dtype_basis}",
            )
        # Remote weights cannot be read: the key is the served name and where it is served, and
        # the identity says so, so a report never implies the weights were fingerprinted.
        blob = f"{self.base_url}\x00{self.name}\x00{root}"
        return ModelIdentity(
            backend="openai",
            name=self.name,
            fingerprint=hashlib.sha256(blob.encode()).hexdigest()[:32],
            settings=settings,
            bos_default=bos,
            basis=f"the served name and URL (weights not readable here) and {dtype_basis}",
            weights_fingerprinted=False,
        )

    def _detect_capabilities(self, chat: bool | None, top_k: int | None) -> Capabilities:
        max_top_k = top_k if top_k is not None else (20 if self.is_vllm else 5)
        if chat:
            return self._chat_capabilities()
        payload = {
            "model": self.name,
            "prompt": _PROBE_TEXT,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 1,
        }
        status, body = self._sync_call("POST", "/completions", payload)
        if status in (404, 405) and chat is None:
            return self._chat_capabilities()
        if status < 400 and isinstance(body, dict):
            choice = (body.get("choices") or [{}])[0]
            lp = choice.get("logprobs") or {}
            tokens = lp.get("tokens") or []
            if lp.get("token_logprobs"):
                n_prompt = (body.get("usage") or {}).get("prompt_tokens", len(tokens) - 1)
                prompt_tokens = [str(t) for t in tokens[:n_prompt]]
                # A BOS is a first token that is not part of the text, with the rest the whole text.
                self.server_adds_bos = (
                    align(prompt_tokens, _PROBE_TEXT, whole=True) is None
                    and align(prompt_tokens[1:], _PROBE_TEXT, whole=True) is not None
                )
                return Capabilities(
                    prompt_logprobs=True,
                    token_logprobs=True,
                    distribution="approx_top_k",
                    n_samples=True,
                    max_top_k=max_top_k,
                )
        # Completions without echo log-probs (as OpenAI's own completion models now are).
        payload = {"model": self.name, "prompt": _PROBE_TEXT, "max_tokens": 1, "logprobs": 1}
        status, body = self._sync_call("POST", "/completions", payload)
        if status >= 400:
            raise ModelCallError(
                f"{self.base_url}/completions: HTTP {status}: {self._redact(_error_message(body))}"
            )
        return Capabilities(
            prompt_logprobs=False,
            token_logprobs=True,
            distribution="none",
            n_samples=True,
            max_top_k=max_top_k,
        )

    def _chat_capabilities(self) -> Capabilities:
        payload = {
            "model": self.name,
            "messages": [{"role": "user", "content": _PROBE_TEXT}],
            "max_tokens": 1,
            "logprobs": True,
        }
        status, body = self._sync_call("POST", "/chat/completions", payload)
        if status >= 400:
            raise ModelCallError(
                f"{self.base_url}/chat/completions: HTTP {status}: {self._redact(_error_message(body))}"
            )
        choice = (body.get("choices") or [{}])[0] if isinstance(body, dict) else {}
        has_lp = bool((choice.get("logprobs") or {}).get("content"))
        return Capabilities(
            prompt_logprobs=False,
            token_logprobs=has_lp,
            distribution="none",
            chat_only=True,
            n_samples=True,
            max_top_k=0,
        )

    # -- ModelClient ---------------------------------------------------------------------------

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def max_batch(self) -> int:
        return self.batch

    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        if not self._caps.prompt_logprobs:
            raise ModelCallError(
                f"{self.name} at {self.base_url} returns no prompt log-probs "
                "(chat-only or no echo); it cannot score text"
            )
        return await gather_each([self._score_one(r) for r in requests])

    def _bos(self, request: ScoreRequest) -> bool:
        """Whether the server scores this request after a BOS; a forced choice it cannot honour fails."""
        if request.add_bos is None or request.add_bos == self.server_adds_bos:
            return self.server_adds_bos
        if request.add_bos is False and self.is_vllm:
            return False  # vLLM's add_special_tokens=false drops it
        wanted = "prepend" if request.add_bos else "leave out"
        raise ModelCallError(
            f"add_bos={str(request.add_bos).lower()}: {self.name} at {self.base_url} cannot be asked to "
            f"{wanted} a BOS token (its tokenizer {'does' if self.server_adds_bos else 'does not'} by "
            "default); leave add_bos unset to score as its tokenizer does, as every backend then does"
        )

    async def _score_one(self, request: ScoreRequest) -> ScoreResult:
        bos = self._bos(request)
        if not request.text:
            # No text token has a conditional log-prob: the empty result every backend gives.
            return empty_score(request, bos=bos, distribution="approx_top_k")
        k = request.top_k
        if request.distribution:
            k = max(k, self._caps.max_top_k)
        payload: dict[str, Any] = {
            "model": self.name,
            "prompt": request.text,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": k,
        }
        if self.is_vllm and self.server_adds_bos and not bos:
            payload["add_special_tokens"] = False  # vLLM's extension: no BOS (or other special token)
        try:
            data = await self._post("/completions", payload)
        except OverflowAnswer as exc:
            return empty_score(request, bos=bos, distribution="approx_top_k", overflow=exc.overflow)
        return self._parse_score(request, data, bos)

    def _parse_score(self, request: ScoreRequest, data: dict[str, Any], bos: bool) -> ScoreResult:
        try:
            choice = data["choices"][0]
            lp = choice["logprobs"]
            tokens: list[str] = lp["tokens"]
            token_lps: list[float | None] = lp["token_logprobs"]
            tops: list[dict[str, float] | None] = lp.get("top_logprobs") or [None] * len(tokens)
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelCallError(f"/completions: no echoed log-probs in the answer ({exc!r})") from exc
        n_prompt = (data.get("usage") or {}).get("prompt_tokens")
        if not isinstance(n_prompt, int):
            n_prompt = len(tokens) - 1  # max_tokens=1: everything but the generated token
        # The first prompt token has no conditional log-prob: it is BOS, or the text's first token.
        tokens, token_lps, tops = tokens[1:n_prompt], token_lps[1:n_prompt], tops[1:n_prompt]
        if any(v is None for v in token_lps):
            raise ModelCallError("/completions: a prompt token after the first came back without a log-prob")
        dist_mean = dist_std = None
        if request.distribution:
            stats = [stats_from_logprobs((top or {}).values(), renormalise=True) for top in tops]
            dist_mean = tuple(m for m, _ in stats)
            dist_std = tuple(s for _, s in stats)
        top_alts = None
        if request.top_k:
            top_alts = tuple(
                tuple(
                    TokenAlternative(token=t, logprob=float(v))
                    for t, v in sorted((top or {}).items(), key=lambda kv: -kv[1])[: request.top_k]
                )
                for top in tops
            )
        return ScoreResult(
            tokens=aligned([str(t) for t in tokens], request.text, whole=bos),
            logprobs=tuple(float(v) for v in token_lps if v is not None),
            bos=bos,
            dist_mean=dist_mean,
            dist_std=dist_std,
            distribution="approx_top_k" if request.distribution else "none",
            top=top_alts,
        )

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return await gather_each([self._generate_one(r) for r in requests])

    async def _generate_one(self, request: GenerateRequest) -> GenerateResult:
        common: dict[str, Any] = {
            "model": self.name,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "n": request.n,
        }
        if request.seed is not None:
            common["seed"] = request.seed
        if request.stop:
            common["stop"] = list(request.stop)
        if self._caps.chat_only or request.prompt is None:
            return await self._chat(request, common)
        payload = {**common, "prompt": request.prompt}
        if request.logprobs:
            payload["logprobs"] = request.logprobs
        if self.is_vllm:
            payload["return_token_ids"] = True  # vLLM's extension: the generated ids (CDD compares them)
        data = await self._post("/completions", payload)
        completions = []
        for choice in sorted(data.get("choices", []), key=lambda c: c.get("index", 0)):
            lp = choice.get("logprobs") or {}
            values = lp.get("token_logprobs") if request.logprobs else None
            ids = choice.get("token_ids")
            completions.append(
                Completion(
                    text=choice.get("text", ""),
                    finish_reason=choice.get("finish_reason"),
                    logprobs=tuple(float(v) for v in values if v is not None) if values else None,
                    token_ids=tuple(int(t) for t in ids) if isinstance(ids, list) else None,
                )
            )
        return _checked(completions, request)

    async def _chat(self, request: GenerateRequest, common: dict[str, Any]) -> GenerateResult:
        messages = (
            [m.model_dump() for m in request.messages]
            if request.messages
            else [{"role": "user", "content": request.prompt or ""}]
        )
        payload = {**common, "messages": messages}
        if request.logprobs:
            payload.update(logprobs=True, top_logprobs=request.logprobs)
        data = await self._post("/chat/completions", payload)
        completions = []
        for choice in sorted(data.get("choices", []), key=lambda c: c.get("index", 0)):
            content = (choice.get("logprobs") or {}).get("content") if request.logprobs else None
            completions.append(
                Completion(
                    text=(choice.get("message") or {}).get("content") or "",
                    finish_reason=choice.get("finish_reason"),
                    logprobs=tuple(float(t["logprob"]) for t in content) if content else None,
                )
            )
        return _checked(completions, request)


def overflow_of(message: str) -> ContextOverflow:
    """The length and limit a server's too-long answer states (None where it does not say)."""
    limit, length = _LIMIT.search(message), _LENGTH.search(message)
    return ContextOverflow(
        tokens=int(length.group(1)) if length else None,
        limit=int(limit.group(1)) if limit else None,
        setting="the server's max_model_len",
    )


def _checked(completions: list[Completion], request: GenerateRequest) -> GenerateResult:
    if len(completions) != request.n:
        raise ModelCallError(f"asked for n={request.n} samples, the server returned {len(completions)}")
    return GenerateResult(completions=tuple(completions))


def _json_or_text(resp: Any) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


def _error_message(body: Any) -> str:
    if isinstance(body, str):
        try:
            import json

            body = json.loads(body)
        except ValueError:
            return str(body).strip()
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)
    return str(body)


def create(spec: ModelSpec) -> OpenAIModel:
    unknown = set(spec.options) - _OPTIONS
    if unknown:
        raise ModelSpecError(
            f"unknown openai option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}", field="--model"
        )
    if spec.base_url is None:
        raise ModelSpecError("the openai backend needs a base URL: openai:NAME@URL", field="--model")
    opts = spec.options
    try:
        policy = RetryPolicy(
            attempts=int(opts.get("retries", "6")),
            base=float(opts.get("retry_base", "0.5")),
            cap=float(opts.get("retry_cap", "30")),
            max_retry_after=float(opts.get("max_retry_after", "60")),
        )
        chat_opt = opts.get("chat")
        return OpenAIModel(
            spec.target,
            spec.base_url,
            api_key_env=spec.api_key_env,
            concurrency=int(opts.get("concurrency", "16")),
            batch=int(opts.get("batch", "64")),
            timeout=float(opts.get("timeout", "120")),
            top_k=int(opts["top_k"]) if "top_k" in opts else None,
            retry=policy,
            chat=None if chat_opt is None else chat_opt in ("1", "true", "yes"),
            dtype=opts.get("dtype"),
        )
    except ValueError as exc:
        raise ModelSpecError(f"bad openai option: {exc}", field="--model") from exc
