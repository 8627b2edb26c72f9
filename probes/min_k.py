"""`min_k` (Min-K% Prob, Shi et al. 2023): the mean log-prob of the lowest k fraction of tokens.

An unseen text has a few very unlikely tokens; a seen one has few outliers, so its lowest
log-probs are higher. Higher = more likely seen (the negation of the official code's output).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from contam.models.base import ModelClient
from contam.probe import ProbeContext
from contam.registry import register_probe
from contam.results import ItemScore, UnscoredItem
from contam.types import Item
from probes._likelihood import lowest_fraction_mean
from probes.loss import LikelihoodProbe, LossParams


class MinKParams(LossParams):
    k: float = Field(default=0.2, gt=0.0, le=1.0, description="fraction of lowest-probability tokens kept")


@register_probe
class MinKProbe(LikelihoodProbe):
    name = "min_k"
    Params = MinKParams
    params: MinKParams

    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> list[ItemScore | UnscoredItem]:
        results = await self.loglik([item.text for item in items], model)
        scores = []
        for item, r in zip(items, results, strict=True):
            value, used = lowest_fraction_mean(r.logprobs, self.params.k)
            detail = self.detail(r, k_tokens=used)
            scores.append(self.item_score(item.id, value, detail, unscorable=self.unscorable(r)))
        return scores
