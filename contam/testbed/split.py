"""Seeded split of a benchmark's items into one partition per exposure count."""

from __future__ import annotations

import random
from collections.abc import Sequence

from contam.testbed.config import partition_name
from contam.types import Item, Partition

HELDOUT = "heldout"


def split_items(
    items: Sequence[Item], exposures: Sequence[int], seed: int, max_items: int = 0
) -> dict[int, Partition]:
    """exposure count -> partition of about len(items)/len(exposures) items.

    Items are drawn at random from the seed (at most `max_items`, 0 = all); inside a partition
    they keep the benchmark's published order, which `canonical_dump` and the exchangeability
    test rely on. Items are renamed to the new partition; ids are unchanged.
    """
    if not items:
        raise ValueError("no benchmark items to split")
    if len(items) < len(exposures):
        raise ValueError(f"{len(items)} items cannot fill {len(exposures)} partitions")
    order = _draw_order(len(items), seed)
    if max_items:
        order = order[:max_items]
    parts: dict[int, Partition] = {}
    n = len(exposures)
    for j, count in enumerate(exposures):
        chosen = sorted(order[j::n])  # round-robin keeps sizes within one of each other
        name = partition_name(count)
        parts[count] = Partition(name, tuple(_renamed(items[i], name) for i in chosen))
    return parts


def heldout_items(items: Sequence[Item], seed: int, max_items: int = 0) -> Partition:
    """The items `split_items` did not draw (beyond `max_items`), as partition `heldout`, in
    published order: never injected, so exposure 0, and a pool of never-seen references."""
    name = HELDOUT
    if not max_items or max_items >= len(items):
        return Partition(name, ())
    left = sorted(_draw_order(len(items), seed)[max_items:])
    return Partition(name, tuple(_renamed(items[i], name) for i in left))


def _draw_order(n: int, seed: int) -> list[int]:
    """The seeded order both functions cut from: the first `max_items` are drawn, the rest held out."""
    order = list(range(n))
    random.Random(f"contam-testbed-split:{seed}").shuffle(order)
    return order


def _renamed(item: Item, partition: str) -> Item:
    meta = {**item.meta, "source_partition": item.partition}
    return Item(
        id=item.id,
        partition=partition,
        text=item.text,
        prompt=item.prompt,
        reference=item.reference,
        choices=item.choices,
        answer_index=item.answer_index,
        label=item.label,
        meta=meta,
    )
