"""`reference` (Carlini et al. 2021; Shi et al. 2023's "ppl/Ppl (ref)"): the target model's mean
token log-likelihood minus a reference model's, on the same text as published.

Sign convention, kept everywhere: score = loglik_target(x) - loglik_reference(x), each the mean
over that model's own tokens. A text the target has seen is more likely under it than under a
model that has not, so higher = more likely seen by the target. (The official code reports the
loss difference, target minus reference, where lower means seen; implementations that copy it
and then call higher "seen" invert the test.)

The reference model is named by its own spec (`--param reference.model=hf:PATH`); its calls go
through a runner of its own that shares the scan's call cache, so they are cached and resumable too.
A scan runs partitions concurrently on one probe instance; they share that runner (one load of
the reference weights), which is closed when the last of them finishes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence

from pydantic import Field

from contam.cache import CallCache
from contam.models.base import ModelClient
from contam.models.spec import ModelSpec
from contam.probe import ProbeContext, ProbeParams
from contam.registry import create_model, register_probe
from contam.results import ItemScore, ProbeResult, UnscoredItem
from contam.runner import Runner
from contam.types import Item, Partition
from probes.loss import LikelihoodProbe, LossParams

_REF = "reference_model"


class ReferenceParams(LossParams):
    model: str | None = Field(
        default=None,
        description="model spec of the reference model (e.g. hf:PATH), one that has not seen the data",
    )


@register_probe
class ReferenceProbe(LikelihoodProbe):
    name = "reference"
    Params = ReferenceParams
    params: ReferenceParams

    def __init__(self, params: ProbeParams | None = None) -> None:
        super().__init__(params)
        self._shared: Runner | None = None
        self._users = 0

    @contextlib.asynccontextmanager
    async def _reference(self, spec: str, ctx: ProbeContext) -> AsyncIterator[Runner]:
        """The reference runner, shared by every run in flight on this probe; closed by the last."""
        # Built synchronously: no other run can interleave between the check and the assignment.
        if self._shared is None:
            cache = ctx.extras.get("cache")
            self._shared = Runner(
                create_model(ModelSpec.parse(spec)),
                cache if isinstance(cache, CallCache) else None,
            )
        ref = self._shared
        self._users += 1
        try:
            yield ref
        finally:
            self._users -= 1
            if self._users == 0:
                self._shared = None  # a later run, after this close, builds a fresh one
                await ref.aclose()

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        if not self.params.model:
            return self.skipped(partition, "no reference model given (--param reference.model=SPEC)")
        async with self._reference(self.params.model, ctx) as ref:
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
