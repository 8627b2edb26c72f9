"""`lowercase` (Carlini et al. 2021; as in Shi et al. 2023's code): the ratio of the mean token
log-likelihood of the lower-cased text to that of the text as published.

Both are negative. Memorised text is likely only in its published casing, so its own
log-likelihood is near zero while the lower-cased one is not: the ratio grows. Higher = more
likely seen. A text without cased letters gives exactly 1. A text whose own log-likelihood is
exactly 0 has no ratio and is reported unscored.
"""

from __future__ import annotations

from collections.abc import Sequence

from contam.models.base import ModelClient
from contam.probe import ProbeContext
from contam.registry import register_probe
from contam.results import ItemScore, UnscoredItem
from contam.types import Item
from probes.loss import LikelihoodProbe

ZERO_LOGLIK = "the text's mean log-likelihood is 0 (every token certain): the ratio is undefined"


@register_probe
class LowercaseProbe(LikelihoodProbe):
    name = "lowercase"

    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> list[ItemScore | UnscoredItem]:
        texts = [item.text for item in items]
        # One call for both: the runner batches them and shares the unchanged texts' answers.
        results = await self.loglik(texts + [t.lower() for t in texts], model)
        plain, lower = results[: len(texts)], results[len(texts) :]
        scores = []
        for item, r, lo in zip(items, plain, lower, strict=True):
            why = self.unscorable(r, lo) or (ZERO_LOGLIK if r.mean == 0.0 else None)
            if why:
                scores.append(self.item_score(item.id, 0.0, self.detail(r), unscorable=why))
                continue
            detail = self.detail(r, loglik=r.mean, loglik_lower=lo.mean)
            scores.append(self.item_score(item.id, lo.mean / r.mean, detail))
        return scores
