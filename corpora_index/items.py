"""What the index needs of a benchmark item: an id, a partition and the text as published."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class ItemLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def partition(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ItemRef:
    id: str
    partition: str
    text: str


def as_refs(items: Iterable[ItemLike | tuple[str, str, str]]) -> tuple[ItemRef, ...]:
    """Accept `contam.types.Item`s (or anything with id/partition/text) or (id, partition, text) tuples."""
    out: list[ItemRef] = []
    for item in items:
        if isinstance(item, tuple):
            out.append(ItemRef(*item))
        else:
            out.append(ItemRef(item.id, item.partition, item.text))
    seen: set[tuple[str, str]] = set()
    for ref in out:
        key = (ref.partition, ref.id)
        if key in seen:
            raise ValueError(f"duplicate benchmark item {ref.id!r} in partition {ref.partition!r}")
        seen.add(key)
    return tuple(out)
