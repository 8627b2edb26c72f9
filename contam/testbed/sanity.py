"""Sanity figures, computed directly with transformers: does the model separate seen from unseen?

For each item: mean token log-likelihood (loss), Min-K% (Shi et al. 2023: mean of the lowest k
fraction of token log-probs) and Min-K%++ (Zhang et al. 2024: each token's log-prob standardised
by the mean and std of log p over the next-token distribution, then the lowest k fraction).
Then, per seen partition, the AUROC of each score against `unseen`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from contam.stats import auroc
from contam.types import Partition

SCORES = ("loss", "min_k", "min_k_pp")


@dataclass(frozen=True, slots=True)
class ItemScores:
    loss: float
    min_k: float
    min_k_pp: float
    tokens: int


class SanityRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: str
    exposures: int
    n: int
    mean_loglik: float
    auroc_loss: float
    auroc_min_k: float
    auroc_min_k_pp: float


class Sanity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    k: float
    unseen_n: int
    unseen_mean_loglik: float
    rows: tuple[SanityRow, ...]
    truncated_items: int

    def table(self) -> str:
        head = (f"{'partition':<12} {'n':>4} {'mean loglik':>11} {'AUROC loss':>10} "
                f"{'Min-K%':>7} {'Min-K%++':>8}")
        lines = [f"seen vs unseen (n={self.unseen_n}, mean loglik {self.unseen_mean_loglik:.3f}); "
                 f"Min-K% and Min-K%++ at k={self.k}", head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.partition:<12} {r.n:>4} {r.mean_loglik:>11.3f} {r.auroc_loss:>10.3f} "
                         f"{r.auroc_min_k:>7.3f} {r.auroc_min_k_pp:>8.3f}")
        return "\n".join(lines)


def score_texts(model: Any, tokenizer: Any, texts: Sequence[str], k: float = 0.2,
                max_tokens: int = 1024) -> tuple[list[ItemScores], int]:
    """Per-text scores, BOS prepended; texts longer than `max_tokens` are cut (count returned)."""
    import torch

    out: list[ItemScores] = []
    truncated = 0
    model.eval()
    with torch.inference_mode():
        for text in texts:
            ids = [tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]
            if len(ids) > max_tokens:
                ids = ids[:max_tokens]
                truncated += 1
            input_ids = torch.tensor([ids], dtype=torch.long)
            logits = model(input_ids=input_ids).logits[0, :-1].float()
            logp = torch.log_softmax(logits, dim=-1)
            target = input_ids[0, 1:]
            token_lp = logp.gather(1, target[:, None])[:, 0]
            probs = logp.exp()
            mu = (probs * logp).sum(-1)
            sigma = ((probs * logp.square()).sum(-1) - mu.square()).clamp_min(1e-12).sqrt()
            standardised = (token_lp - mu) / sigma
            n = token_lp.numel()
            low = max(1, int(n * k))
            out.append(ItemScores(
                loss=float(token_lp.mean()),
                min_k=float(torch.topk(token_lp, low, largest=False).values.mean()),
                min_k_pp=float(torch.topk(standardised, low, largest=False).values.mean()),
                tokens=n,
            ))
    return out, truncated


def sanity(model: Any, tokenizer: Any, partitions: Mapping[int, Partition], k: float = 0.2,
           max_tokens: int = 1024) -> Sanity:
    """AUROC of each score, each seen partition against `unseen` (exposure 0)."""
    scores: dict[int, list[ItemScores]] = {}
    truncated = 0
    for count, part in partitions.items():
        scores[count], cut = score_texts(model, tokenizer, [i.text for i in part.items], k, max_tokens)
        truncated += cut
    unseen = scores[0]
    rows = []
    for count, part in partitions.items():
        if count == 0:
            continue
        seen = scores[count]
        rows.append(SanityRow(
            partition=part.name,
            exposures=count,
            n=len(seen),
            mean_loglik=sum(s.loss for s in seen) / len(seen),
            auroc_loss=auroc([s.loss for s in seen], [s.loss for s in unseen]),
            auroc_min_k=auroc([s.min_k for s in seen], [s.min_k for s in unseen]),
            auroc_min_k_pp=auroc([s.min_k_pp for s in seen], [s.min_k_pp for s in unseen]),
        ))
    return Sanity(
        k=k,
        unseen_n=len(unseen),
        unseen_mean_loglik=sum(s.loss for s in unseen) / len(unseen),
        rows=tuple(rows),
        truncated_items=truncated,
    )
