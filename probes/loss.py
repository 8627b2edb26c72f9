"""`loss`: mean token log-likelihood of each item as published (Carlini et al. 2021; the
baseline every membership score in Shi et al. 2023 is compared with).

Higher mean log-likelihood = lower loss = more likely seen. `LikelihoodProbe` is the base of
every score probe that reads token log-probs: typed parameters, declared needs, the text scored
exactly as published (never chat-templated), and whether a BOS was prepended recorded per item
and in the notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from contam.models.base import ModelClient, ScoreRequest, ScoreResult
from contam.probe import ItemScoreProbe, ProbeContext, ProbeParams
from contam.registry import register_probe
from contam.results import ItemScore, ProbeResult
from contam.types import Item, Partition


class LossParams(ProbeParams):
    add_bos: bool = Field(default=True, description="prepend the tokenizer's BOS token before scoring")


class LikelihoodProbe(ItemScoreProbe):
    """Base of the log-likelihood scores: subclasses turn each text's `ScoreResult` into one number."""

    needs = ("prompt_logprobs",)
    Params = LossParams
    params: LossParams

    async def loglik(
        self, texts: Sequence[str], model: ModelClient, *, distribution: bool = False
    ) -> list[ScoreResult]:
        return await model.score(
            [ScoreRequest(text=t, add_bos=self.params.add_bos, distribution=distribution) for t in texts]
        )

    @staticmethod
    def detail(result: ScoreResult, **extra: Any) -> dict[str, Any]:
        return {"tokens": len(result.logprobs), "bos": result.bos, **extra}

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        result = await super().run(partition, model, ctx)
        bos = {s.detail.get("bos") for s in result.items}
        if not bos:
            return result
        said = "yes" if bos == {True} else "no" if bos == {False} else "for some items only"
        note = f"text scored exactly as published (no chat template); BOS token prepended: {said}"
        return result.model_copy(update={"notes": (*result.notes, note)})


@register_probe
class LossProbe(LikelihoodProbe):
    name = "loss"

    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> list[ItemScore]:
        results = await self.loglik([item.text for item in items], model)
        return [
            ItemScore(id=item.id, score=r.mean, detail=self.detail(r))
            for item, r in zip(items, results, strict=True)
        ]
