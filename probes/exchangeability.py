"""`exchangeability`: the sharded likelihood test of Oren et al. 2023 ("Proving test set
contamination in black box language models"; official code tatsu-lab/test_set_contamination).

If the model never saw the partition, its examples are exchangeable: the published (canonical)
order is no more likely than any permutation. The partition, in published order, is cut into
contiguous shards; for each shard the log-likelihood of its examples concatenated in canonical
order is compared with the mean over random permutations of them, and a one-sided t-test across
shards asks whether canonical exceeds permuted on average. No reference partition is needed:
exchangeability alone makes the shard differences centred on zero, which is why the partition
is never shuffled or subsampled before the test (that would destroy the order being tested).

The false-positive rate is controlled only as well as the t approximation holds across shards,
and the official statistic uses the population std (ddof=0), which inflates t by sqrt(m/(m-1)):
at a nominal 5%, for normal shard differences, it rejects about 6% of the time with 8 shards
and 7% with 2-4 (5.2% at 50 shards). A verdict takes the p-value at face value, so the exact
one-sample t test (sample std, ddof=1) is the default; `exact_t=false` gives the official
statistic, for comparison with the paper's numbers, and the notes then say how far its size is
from the nominal level at that many shards.

Long concatenations are scored in sliding windows (the official scheme, measured here in
characters because probes see text, not token ids); every window goes through the runner, so
calls are batched, de-duplicated (short shards repeat permutations) and cached.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from contam.errors import ModelCallError
from contam.models.base import ModelClient, ScoreRequest
from contam.probe import Probe, ProbeContext, ProbeParams, scales
from contam.registry import register_probe
from contam.results import PartitionStatistic, ProbeResult
from contam.stats import mean_ci
from contam.types import Partition
from probes._likelihood import (
    Window,
    official_t_size,
    shard_bounds,
    sharded_t_test,
    window_loglik,
    windows,
)
from probes.loss import bos_policy

NULL = (
    "the partition's examples are exchangeable: its published order is no more likely under the "
    "model than a random permutation (one-sided t-test across shards)"
)

FEW_SHARDS = 20  # below this the official ddof=0 statistic's excess false-positive rate exceeds ~0.4%


class ExchangeabilityParams(ProbeParams):
    shards: int = Field(
        default=50,
        ge=2,
        description="contiguous shards of the partition, in published order",
        json_schema_extra=scales("shards"),
    )
    permutations: int = Field(
        default=250,
        ge=1,
        description="random permutations scored per shard",
        json_schema_extra=scales("permutations"),
    )
    context_len: int = Field(
        default=2048,
        ge=16,
        description="sliding-window length in characters for long concatenations",
        json_schema_extra=scales("context_len"),
    )
    stride: int = Field(
        default=1024,
        ge=1,
        description="window step in characters (<= context_len)",
        json_schema_extra=scales("min_stride"),
    )
    separator: str = Field(default="\n\n", description="joins the examples of a shard into one text")
    min_shard_size: int = Field(
        default=2, ge=2, description="fewest examples per shard; fewer shards are used for small partitions"
    )
    add_bos: bool | None = Field(
        default=None,
        description="unset: BOS before every window as the model's tokenizer puts it by default; "
        "true or false forces it",
    )
    exact_t: bool = Field(
        default=True,
        description="the one-sample t test with the sample std (ddof=1); false: the official statistic "
        "(population std, anti-conservative: size 5.2% at 50 shards, 6.5% at 5, at a nominal 5%)",
    )


@register_probe
class ExchangeabilityProbe(Probe):
    name = "exchangeability"
    needs = ("prompt_logprobs",)
    Params = ExchangeabilityParams
    params: ExchangeabilityParams

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        p = self.params
        lacking = model.capabilities.missing(self.needs)
        if lacking:
            return self.skipped(partition, f"model {model.identity.name!r} lacks: {', '.join(lacking)}")
        if p.stride > p.context_len:
            return self.skipped(partition, f"stride {p.stride} exceeds context_len {p.context_len}")
        texts = [item.text for item in partition.items]  # published order, never shuffled
        shards = min(p.shards, len(texts) // p.min_shard_size)
        if shards < 2:
            return self.skipped(
                partition,
                f"{len(texts)} examples: the test needs at least 2 shards of {p.min_shard_size} examples",
            )
        notes = []
        if shards < p.shards:
            notes.append(
                f"partition has {len(texts)} examples: used {shards} shards of >= {p.min_shard_size}, "
                f"not the {p.shards} asked for"
            )
        bounds = shard_bounds(len(texts), shards)
        rng = np.random.default_rng([ctx.seed, len(texts), shards])
        sequences: list[str] = []  # per shard: canonical first, then its permutations
        for start, end in bounds:
            shard = texts[start:end]
            sequences.append(p.separator.join(shard))
            for _ in range(p.permutations):
                sequences.append(p.separator.join(shard[i] for i in rng.permutation(len(shard))))
        logliks, bos = await self._logliks(sequences, model)
        per = p.permutations + 1
        canonical = [logliks[s * per] for s in range(shards)]
        permuted = [logliks[s * per + 1 : (s + 1) * per] for s in range(shards)]
        z, p_value = sharded_t_test(canonical, permuted, exact_t=p.exact_t)
        diffs = [c - float(np.mean(row)) for c, row in zip(canonical, permuted, strict=True)]
        mean, interval = mean_ci(diffs)
        sizes = [end - start for start, end in bounds]
        said = "yes" if bos == {True} else "no" if bos == {False} else "for some windows only"
        notes.append(
            f"{shards} shards of {min(sizes)}-{max(sizes)} examples in published order, {p.permutations} "
            f"permutations each; statistic = canonical - mean permuted log-likelihood per shard (nats); "
            f"BOS prepended to each window: {said} ({bos_policy(p.add_bos)}); no chat template"
        )
        if p.exact_t:
            notes.append("p-value from the one-sample t test across shards (sample std, ddof=1)")
        else:
            notes.append(
                f"p-value anti-conservative: with {shards} shards the official statistic (population "
                f"std, ddof=0) rejects about {official_t_size(shards):.1%} of the time at a nominal 5% "
                "for normal shard differences; exchangeability.exact_t=true (the default) gives the "
                "exact one-sample t test"
            )
        notes.append(
            f"context_len {p.context_len} and stride {p.stride} are in characters, not tokens as in "
            "the official code (probes see text, not token ids)"
        )
        return ProbeResult(
            probe=self.name,
            partition=partition.name,
            params={**self.param_dict(), "shards_used": shards, "seed": ctx.seed},
            mean=mean,
            mean_ci=interval,
            statistic=PartitionStatistic(
                name="sharded_likelihood_t",
                value=z if math.isfinite(z) else math.copysign(sys.float_info.max, z),  # JSON has no inf
                p_value=p_value,
                null=NULL,
                n=len(texts),
            ),
            notes=tuple(notes),
        )

    async def _logliks(self, sequences: Sequence[str], model: ModelClient) -> tuple[list[float], set[bool]]:
        """Total log-likelihood of each sequence, windowed, and the windows' BOS flags as the
        backend reports them (a tokenizer may have no BOS to prepend); one runner call for all.
        """
        plan: list[list[Window]] = [
            windows(len(s), self.params.context_len, self.params.stride) for s in sequences
        ]
        requests = [
            ScoreRequest(text=s[w.start : w.end], add_bos=self.params.add_bos)
            for s, ws in zip(sequences, plan, strict=True)
            for w in ws
        ]
        answers = await model.score(requests)
        long = next((a.overflow for a in answers if a.overflow is not None), None)
        if long is not None:
            raise ModelCallError(
                f"a window of up to {self.params.context_len} characters does not fit the model: "
                f"{long.message()}; lower exchangeability.context_len and stride"
            )
        texts = iter(r.text for r in requests)
        results = iter(answers)
        try:
            logliks = [sum(window_loglik(w, next(results), next(texts)) for w in ws) for ws in plan]
        except ModelCallError as exc:
            who = f"model {model.identity.name!r} (tokenizer {model.identity.tokenizer or 'unknown'})"
            raise ModelCallError(f"{who}: {exc}") from exc
        return logliks, {r.bos for r in answers}
