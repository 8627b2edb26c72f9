"""`loss`: mean token log-likelihood of each item as published (Carlini et al. 2021; the
baseline every membership score in Shi et al. 2023 is compared with).

Higher mean log-likelihood = lower loss = more likely seen. `LikelihoodProbe` is the base of
every score probe that reads token log-probs: typed parameters, declared needs, the text scored
exactly as published (never chat-templated), and whether a BOS was prepended recorded per item
and in the notes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from contam.models.base import ModelClient, ScoreRequest, ScoreResult
from contam.probe import ItemScoreProbe, ProbeContext, ProbeParams
from contam.registry import register_probe
from contam.results import ItemScore, ProbeResult, UnscoredItem
from contam.types import Item, Partition


class LossParams(ProbeParams):
    add_bos: bool | None = Field(
        default=None,
        description="unset: BOS as the model's tokenizer puts it by default (the same on every backend); "
        "true or false forces it",
    )


NO_TOKENS = (
    "no scored tokens (an empty text, or a one-token text without BOS: its first token has no log-prob)"
)
NOT_FINITE = "a token log-prob is not finite"
TOO_LONG = "longer than the model's context"


class LikelihoodProbe(ItemScoreProbe):
    """Base of the log-likelihood scores: subclasses turn each text's `ScoreResult` into one number.

    A text whose result has no scored token, or a non-finite log-prob, has no score; it is
    reported as unscored with the reason (`unscorable`) and left out of the statistics.
    """

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
        detail: dict[str, Any] = {"tokens": len(result.logprobs), "bos": result.bos, **extra}
        if result.overflow is not None:
            # Its length and the limit, so a reader sees by how much it missed.
            detail.update(length=result.overflow.tokens, limit=result.overflow.limit)
        return detail

    @staticmethod
    def unscorable(*results: ScoreResult) -> str | None:
        """Why no score can come from these results (one per text the score reads), or None."""
        for result in results:
            if result.overflow is not None:
                return TOO_LONG
            if not result.logprobs:
                return NO_TOKENS
            if not all(math.isfinite(lp) for lp in result.logprobs):
                return NOT_FINITE
        return None

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        result = await super().run(partition, model, ctx)
        bos = {s.detail.get("bos") for s in result.items} | {u.detail.get("bos") for u in result.unscored}
        if not bos:
            return result
        said = "yes" if bos == {True} else "no" if bos == {False} else "for some items only"
        note = (
            f"text scored exactly as published (no chat template); BOS token prepended: {said} "
            f"({bos_policy(self.params.add_bos)})"
        )
        return result.model_copy(update={"notes": (*result.notes, note)})


def bos_policy(add_bos: bool | None) -> str:
    """The BOS policy in words, for a probe's notes."""
    if add_bos is None:
        return "as the model's tokenizer does by default, on every backend"
    return f"forced by add_bos={str(add_bos).lower()}"


@register_probe
class LossProbe(LikelihoodProbe):
    name = "loss"

    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> list[ItemScore | UnscoredItem]:
        results = await self.loglik([item.text for item in items], model)
        return [
            self.item_score(item.id, r.mean, self.detail(r), unscorable=self.unscorable(r))
            for item, r in zip(items, results, strict=True)
        ]
