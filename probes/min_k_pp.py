"""`min_k_pp` (Min-K%++, Zhang et al. 2024): each token's log-prob standardised by the mean and
standard deviation of log p under the model's next-token distribution at that position, then
the mean of the lowest k fraction.

Training drives a seen token toward a local maximum of the likelihood, above what is typical
of its position, so standardising against the position's own distribution sharpens Min-K%.
Higher = more likely seen. Where the next-token distribution is one-hot (sigma 0) the mode
scores 0 and any other token a large negative z (`DEGENERATE_Z`, counted in the item's detail).

Exact with the full vocabulary (`hf`, `vllm`). An OpenAI-compatible server returns only the top
k log-probs; the statistics over those, renormalised, are an approximation. It is used only when
the user allows it (`allow_approx`), and then the result says so in its params and notes.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from contam.errors import ModelCallError
from contam.models.base import ModelClient
from contam.probe import ProbeContext
from contam.registry import register_probe
from contam.results import ItemScore, ProbeResult, UnscoredItem
from contam.types import Item, Partition
from probes._likelihood import DEGENERATE_Z, lowest_fraction_mean, mink_pp_token_scores
from probes.loss import LikelihoodProbe
from probes.min_k import MinKParams

APPROX_NOTE = (
    "APPROXIMATION: Min-K%++ computed from top-k log-probs only (mean/std of log p renormalised over "
    "the returned alternatives), not the full next-token distribution; not comparable with exact scores"
)


class MinKPPParams(MinKParams):
    allow_approx: bool = Field(
        default=False,
        description="over HTTP (top-k log-probs only) compute a labelled approximation instead of skipping",
    )


@register_probe
class MinKPPProbe(LikelihoodProbe):
    name = "min_k_pp"
    Params = MinKPPParams
    params: MinKPPParams

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        support = model.capabilities.distribution
        if support == "none" or (support == "approx_top_k" and not self.params.allow_approx):
            why = (
                "only top-k log-probs are available (approx_top_k); pass min_k_pp.allow_approx=true for "
                "a labelled approximation"
                if support == "approx_top_k"
                else "no next-token distribution statistics"
            )
            return self.skipped(partition, f"model {model.identity.name!r} cannot give exact Min-K%++: {why}")
        result = await super().run(partition, model, ctx)
        params = {**result.params, "distribution": support}
        notes = (APPROX_NOTE, *result.notes) if support == "approx_top_k" else result.notes
        return result.model_copy(update={"params": params, "notes": notes})

    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> list[ItemScore | UnscoredItem]:
        results = await self.loglik([item.text for item in items], model, distribution=True)
        scores = []
        for item, r in zip(items, results, strict=True):
            if r.dist_mean is None or r.distribution == "none":
                raise ModelCallError(f"backend returned no distribution statistics for item {item.id!r}")
            z = mink_pp_token_scores(r)
            value, used = lowest_fraction_mean(z, self.params.k)
            detail = self.detail(r, k_tokens=used, distribution=r.distribution)
            if DEGENERATE_Z in z:
                detail["degenerate_tokens"] = z.count(DEGENERATE_Z)
            scores.append(self.item_score(item.id, value, detail, unscorable=self.unscorable(r)))
        return scores
