"""`loss`: mean token log-likelihood of each item as published (Carlini et al. 2021; the
baseline every membership score in Shi et al. 2023 is compared with).

Higher mean log-likelihood = lower loss = more likely seen. This is the template for every
score probe: typed parameters, declared needs, requests built from items, scores out.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from contam.models.base import ModelClient, ScoreRequest
from contam.probe import ItemScoreProbe, ProbeContext, ProbeParams
from contam.registry import register_probe
from contam.results import ItemScore
from contam.types import Item


class LossParams(ProbeParams):
    add_bos: bool = Field(default=True, description="prepend the tokenizer's BOS token before scoring")


@register_probe
class LossProbe(ItemScoreProbe):
    name = "loss"
    needs = ("prompt_logprobs",)
    Params = LossParams
    params: LossParams

    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> list[ItemScore]:
        results = await model.score(
            [ScoreRequest(text=item.text, add_bos=self.params.add_bos) for item in items]
        )
        return [
            ItemScore(id=item.id, score=r.mean, detail={"tokens": len(r.logprobs), "bos": r.bos})
            for item, r in zip(items, results, strict=True)
        ]
