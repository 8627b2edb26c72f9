"""`reference` (Carlini et al. 2021; Shi et al. 2023's "ppl/Ppl (ref)"): the target model's mean
token log-likelihood minus a reference model's, on the same text as published.

Sign convention, kept everywhere: score = loglik_target(x) - loglik_reference(x), each the mean
over that model's own tokens. A text the target has seen is more likely under it than under a
model that has not, so higher = more likely seen by the target. (The official code reports the
loss difference, target minus reference, where lower means seen; implementations that copy it
and then call higher "seen" invert the test.)

The reference model is a model reference (`contam.resolve.ModelRef`): a spec on the command line
(`--param reference.model=hf:PATH`), a registered model's name on the service. The scan's resolver
opens it behind a runner of its own on the scan's call cache, so its calls are cached and
resumable too, and shares that runner (one load of the reference weights) across the partitions
a scan runs concurrently, closing it when the last of them finishes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pydantic import Field

from contam.models.base import ModelClient
from contam.probe import ProbeContext
from contam.registry import register_probe
from contam.resolve import ModelRef
from contam.results import ItemScore, ProbeResult, UnscoredItem
from contam.types import Item, Partition
from probes.loss import LikelihoodProbe, LossParams

_REF = "reference_model"


class ReferenceParams(LossParams):
    model: ModelRef | None = Field(
        default=None,
        description="the reference model, one that has not seen the data: a model spec (hf:PATH) on "
        "the command line, a registered model's name on the service",
    )


@register_probe
class ReferenceProbe(LikelihoodProbe):
    name = "reference"
    Params = ReferenceParams
    params: ReferenceParams

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        if not self.params.model:
            return self.skipped(partition, "no reference model given (--param reference.model=SPEC)")
        async with ctx.resolver.model(self.params.model, field=f"{self.name}.model") as ref:
            lacking = ref.capabilities.missing(self.needs)
            if lacking:
                return self.skipped(
                    partition, f"reference model {ref.identity.name!r} lacks: {', '.join(lacking)}"
                )
            inner = dataclasses.replace(ctx, extras={**ctx.extras, _REF: ref})
            result = await super().run(partition, model, inner)
        note = f"score = loglik({model.identity.key}) - loglik({ref.identity.key}), per-token means"
        return result.model_copy(update={"notes": (*result.notes, note)})

    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> list[ItemScore | UnscoredItem]:
        ref: ModelClient = ctx.extras[_REF]
        texts = [item.text for item in items]
        target = await self.loglik(texts, model)
        other = await self.loglik(texts, ref)
        scores = []
        for item, t, r in zip(items, target, other, strict=True):
            # The two tokenizers may differ: the text needs scored tokens under both models.
            why = self.unscorable(t, r)
            extra = {} if why else {"loglik": t.mean, "loglik_reference": r.mean}
            detail = self.detail(t, **extra, reference_tokens=len(r.logprobs), reference_bos=r.bos)
            scores.append(self.item_score(item.id, t.mean - r.mean, detail, unscorable=why))
        return scores
