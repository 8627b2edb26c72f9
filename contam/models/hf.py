"""`hf`: a local transformers model, the embedded default (CPU, or GPU placed by accelerate).

Scoring sorts a batch by length and pads each chunk only to its longest text (dynamic padding),
then reads every position's full next-token distribution, so the Min-K%++ statistics are exact.
Generation: greedy requests share left-padded batches; sampled ones run per request under their
own seed, so a seeded request gives the same samples whatever it is batched with.

Nothing runs past `max_position_embeddings` (RoPE would extrapolate silently): such a text is
not scored (its result's `overflow` gives its length and the limit, as on vLLM), and such a
prompt plus `max_tokens` fails, while the rest of its batch completes. A text with no token to
score (empty, or one token without BOS) gives an empty result. BOS and token texts follow
`LocalTokenizer`, as on the vLLM engine. The identity carries the dtype, which changes every
number, and the computation version with the library versions.

Spec options: `hf:PATH?device=cpu|cuda|auto&batch=16&dtype=float32|bfloat16|float16&threads=N`.
"""

from __future__ import annotations

import asyncio
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
from contam.models.identity import folder_identity
from contam.models.local_tokenizer import LocalTokenizer
from contam.models.spec import ModelSpec
from contam.models.versions import computation

_OPTIONS = {"device", "batch", "dtype", "threads"}
# Bumped with any change to what scoring or generation returns for the same request.
# 2: BOS as the tokenizer's default; SentencePiece token texts; xlogy moments (-inf logits).
COMPUTATION = "hf/3"  # 3: completions carry their token ids
_LIBRARIES = ("torch", "transformers", "tokenizers")


def _import_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise BackendUnavailable(
            f"the hf backend needs torch and transformers ({exc}); "
            "install them with: pip install 'contam[hf]'"
        ) from exc
    return torch, transformers


class HFModel:
    """A `ModelClient` over a transformers causal LM in this process."""

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "auto",
        batch: int = 16,
        dtype: str = "float32",
        threads: int | None = None,
    ) -> None:
        torch, transformers = _import_torch()
        self._torch = torch
        root = Path(path)
        if dtype not in ("float32", "bfloat16", "float16"):
            raise ModelSpecError(f"dtype {dtype!r}: expected float32, bfloat16 or float16", field="dtype")
        # dtype changes every number; device and batch change only float noise, so they share a key.
        settings = {"dtype": dtype, "computation": computation(COMPUTATION, _LIBRARIES)}
        identity = folder_identity("hf", root, settings=settings)  # checks the folder too
        if threads:
            torch.set_num_threads(threads)
        torch_dtype = getattr(torch, dtype)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(root))
        self.local = LocalTokenizer(self.tokenizer)
        self._identity = identity.model_copy(
            update={"bos_default": self.local.default_bos, "basis": "model folder content and dtype"}
        )
        if device == "cuda":
            # accelerate places (and if needed shards) the weights over the visible GPUs.
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                str(root), dtype=torch_dtype, device_map="auto"
            )
        else:
            self.model = transformers.AutoModelForCausalLM.from_pretrained(str(root), dtype=torch_dtype)
            self.model.to(device)
        self.model.eval()
        self.device = next(self.model.parameters()).device
        positions = getattr(self.model.config, "max_position_embeddings", None)
        # Past max_position_embeddings RoPE extrapolates and the numbers mean nothing: refused.
        self.limit = ContextLimit(int(positions) if isinstance(positions, int) else None,
                                  "max_position_embeddings")  # fmt: skip
        self.batch = batch
        tok = self.tokenizer
        eos = self.model.generation_config.eos_token_id
        eos = tok.eos_token_id if eos is None else eos
        # Some configs list several end tokens (Llama 3); generation stops at any of them.
        self.eos_ids: list[int] = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        pad = tok.pad_token_id
        self.pad_id: int = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)
        # One forward at a time: torch already uses every core, and the model is not re-entrant.
        self._lock = threading.Lock()
        self._caps = Capabilities(
            prompt_logprobs=True,
            token_logprobs=True,
            distribution="exact",
            n_samples=True,
            chat=False,  # completes prompts only: a local folder may have no chat template
            max_top_k=int(self.model.config.vocab_size),
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
        return None

    def token_ids(self, text: str, add_bos: bool | None = None) -> list[int]:
        return self.local.encode(text, add_bos)

    # -- scoring -------------------------------------------------------------------------------

    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        return await asyncio.to_thread(self._score_sync, list(requests))

    def _score_sync(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        encoded = self.local.encode_many([r.text for r in requests], [r.add_bos for r in requests])
        bos = [self.local.bos(r.add_bos) for r in requests]
        triage = ScoreTriage.of(requests, encoded, bos=bos, limit=self.limit, distribution="exact")
        results, runnable = triage.results, triage.runnable
        order = sorted(runnable, key=lambda i: len(encoded[i]))
        for start in range(0, len(order), self.batch):
            chunk = order[start : start + self.batch]
            chunk_results = self._score_chunk(
                [requests[i] for i in chunk], [encoded[i] for i in chunk], [bos[i] for i in chunk]
            )
            for i, result in zip(chunk, chunk_results, strict=True):
                results[i] = result
        return [results[i] for i in range(len(requests))]

    def _score_chunk(
        self, requests: list[ScoreRequest], encoded: list[list[int]], bos: list[bool]
    ) -> list[ScoreResult]:
        torch = self._torch
        width = max(len(ids) for ids in encoded)
        ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, seq in enumerate(encoded):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            # Row by row over real positions only: a [T, V] log-softmax stays in cache and skips the
            # padding, about 4x faster on CPU than one over the padded [B, T, V] block.
            return [
                self._score_row(req, seq, logits[row, : len(seq) - 1], with_bos)
                for row, (req, seq, with_bos) in enumerate(zip(requests, encoded, bos, strict=True))
            ]

    def _score_row(self, req: ScoreRequest, seq: list[int], logits: Any, bos: bool) -> ScoreResult:
        """Position t predicts token t+1; right padding leaves real positions untouched."""
        torch = self._torch
        n = len(seq) - 1  # positions with a conditional log-prob
        logp = torch.log_softmax(logits.float(), dim=-1)
        target = torch.tensor(seq[1:], dtype=torch.long, device=logp.device)
        token_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).cpu()
        dist_mean = dist_std = None
        if req.distribution:
            mean, std = distribution_moments(torch, logp)
            dist_mean = tuple(mean.cpu().tolist())
            dist_std = tuple(std.cpu().tolist())
        top = None
        if req.top_k:
            top_lp, top_ids = (t.cpu() for t in logp.topk(min(req.top_k, logp.shape[-1]), dim=-1))
            top = tuple(
                tuple(
                    TokenAlternative(token=self.local.piece(int(t), seq, pos + 1), logprob=float(lp))
                    for t, lp in zip(top_ids[pos].tolist(), top_lp[pos].tolist(), strict=True)
                )
                for pos in range(n)
            )
        return ScoreResult(
            tokens=self.local.scored_texts(seq, req.text, bos=bos),
            logprobs=tuple(token_lp.tolist()),
            bos=bos,
            dist_mean=dist_mean,
            dist_std=dist_std,
            distribution="exact" if req.distribution else "none",
            top=top,
        )

    # -- generation ----------------------------------------------------------------------------

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return await asyncio.to_thread(self._generate_sync, list(requests))

    def _generate_sync(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        for r in requests:
            if r.prompt is None:
                raise ModelSpecError(
                    "the hf backend completes prompts; chat messages need a chat "
                    "template the local model may not have",
                    field="messages",
                )
        results: dict[int, GenerateResult] = {}
        failed: dict[int, BaseException] = {}
        for i, r in enumerate(requests):
            too_long = self.limit.check_prompt(len(self.token_ids(r.prompt or "")), r.max_tokens)
            if too_long is not None:
                failed[i] = too_long
        greedy = [i for i, r in enumerate(requests) if r.temperature == 0.0 and i not in failed]
        # Greedy requests batch together when they share a length budget, n and log-prob ask.
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i in greedy:
            r = requests[i]
            groups.setdefault((r.max_tokens, r.logprobs, r.n), []).append(i)
        for members in groups.values():
            for start in range(0, len(members), self.batch):
                chunk = members[start : start + self.batch]
                for i, res in zip(chunk, self._generate_batch([requests[i] for i in chunk]), strict=True):
                    results[i] = res
        for i, r in enumerate(requests):
            if r.temperature > 0.0 and i not in failed:
                results[i] = self._generate_batch([r])[0]
        if failed:
            raise batch_failure(results, failed, len(requests))
        return [results[i] for i in range(len(requests))]

    def _generate_batch(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        torch = self._torch
        first = requests[0]
        encoded = [self.token_ids(r.prompt or "") for r in requests]
        width = max(len(e) for e in encoded)
        # Left padding, so every prompt ends where generation starts.
        ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, seq in enumerate(encoded):
            ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
        sample = first.temperature > 0.0
        kwargs: dict[str, Any] = {
            "max_new_tokens": first.max_tokens,
            "do_sample": sample,
            "num_return_sequences": first.n,
            "pad_token_id": self.pad_id,
            "eos_token_id": self.eos_ids or None,
            "return_dict_in_generate": True,
            "output_logits": bool(first.logprobs),
        }
        if sample:
            kwargs.update(temperature=first.temperature, top_p=first.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with self._lock, torch.inference_mode():
            generator_state = None
            if sample and first.seed is not None:
                generator_state = torch.random.get_rng_state()
                torch.manual_seed(first.seed)
            try:
                out = self.model.generate(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs
                )
            finally:
                if generator_state is not None:
                    torch.random.set_rng_state(generator_state)
        new = out.sequences[:, width:].cpu()
        step_lp = None
        if first.logprobs:
            # Raw-model log-probs of the chosen tokens (before temperature), as vLLM reports them.
            stacked = torch.stack([s.float() for s in out.logits], dim=1).log_softmax(-1).cpu()
            step_lp = stacked.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        results = []
        for row_req, req in enumerate(requests):
            completions = []
            for j in range(req.n):
                row = row_req * req.n + j
                toks = new[row].tolist()
                length = len(toks)
                finish = "length"
                ends = [toks.index(e) for e in self.eos_ids if e in toks]
                if ends:
                    length = min(ends)
                    finish = "stop"
                text = self.tokenizer.decode(toks[:length], skip_special_tokens=True)
                text, stopped = _apply_stop(text, req.stop)
                lps = None
                kept = length + (finish == "stop")  # the end token counts, as vLLM reports it
                if step_lp is not None:
                    lps = tuple(step_lp[row, :kept].tolist())
                completions.append(
                    Completion(
                        text=text,
                        finish_reason="stop" if stopped else finish,
                        logprobs=lps,
                        token_ids=tuple(toks[:kept]),
                    )
                )
            results.append(GenerateResult(completions=tuple(completions)))
        return results


def distribution_moments(torch: Any, logp: Any) -> tuple[Any, Any]:
    """Per row of log-probs `logp` [T, V]: the mean and std of log p under p (Min-K%++'s mu, sigma).

    A token with p = 0 (logit -inf, as masked or padded vocabulary entries have) contributes
    nothing, as the limit p log p -> 0 says: its log p is masked to 0 first, where p * log p
    would be 0 * -inf = NaN. (Masking keeps log p exact; `xlogy(p, p)` would recompute it from p.)
    """
    p = logp.exp()
    finite = torch.where(torch.isfinite(logp), logp, torch.zeros_like(logp))
    mean = (p * finite).sum(-1)
    second = (p * finite * finite).sum(-1)
    return mean, (second - mean * mean).clamp_min(0).sqrt()


def _apply_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    cuts = [text.find(s) for s in stops if s and s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def create(spec: ModelSpec) -> HFModel:
    unknown = set(spec.options) - _OPTIONS
    if unknown:
        raise ModelSpecError(
            f"unknown hf option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}", field="--model"
        )
    opts = spec.options
    try:
        batch = int(opts.get("batch", "16"))
        threads = int(opts["threads"]) if "threads" in opts else None
    except ValueError as exc:
        raise ModelSpecError(f"bad hf option: {exc}", field="--model") from exc
    return HFModel(
        spec.target,
        device=opts.get("device", "auto"),
        batch=batch,
        dtype=opts.get("dtype", "float32"),
        threads=threads,
    )
