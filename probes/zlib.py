"""`zlib` (Carlini et al. 2021; as in Shi et al. 2023's code): mean token log-likelihood divided
by the zlib-compressed byte length of the text.

Compression length stands in for how predictable the text is to anyone, so the ratio discounts
text that is merely repetitive. Higher (closer to zero) = more likely seen.
"""

from __future__ import annotations

from collections.abc import Sequence

from contam.models.base import ModelClient
from contam.probe import ProbeContext
from contam.registry import register_probe
from contam.results import ItemScore, UnscoredItem
from contam.types import Item
from probes._likelihood import zlib_bytes
from probes.loss import LikelihoodProbe


@register_probe
class ZlibProbe(LikelihoodProbe):
    name = "zlib"

    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> list[ItemScore | UnscoredItem]:
        results = await self.loglik([item.text for item in items], model)
        scores = []
        for item, r in zip(items, results, strict=True):
            size = zlib_bytes(item.text)  # never 0: zlib adds a header and a checksum
            detail = self.detail(r, zlib_bytes=size)
            scores.append(self.item_score(item.id, r.mean / size, detail, unscorable=self.unscorable(r)))
        return scores
