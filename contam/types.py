"""Frozen value types that every layer exchanges: items, partitions, benchmarks.

Hot in-memory data, so these are slotted frozen dataclasses; what crosses a process or
disk boundary (requests, results, reports) is pydantic, in `contam.models.base` and
`contam.report`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

BenchmarkFormat = Literal["text", "qa", "mc"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Item:
    """One benchmark instance as published, mapped from whatever columns the file had.

    `text` is the instance exactly as a web copy would carry it (what likelihood probes score
    and what the corpus index looks for); `prompt`/`reference` are the split that completion
    probes need; `choices`/`answer_index` the multiple-choice form.
    """

    id: str
    partition: str
    text: str
    prompt: str | None = None
    reference: str | None = None
    choices: tuple[str, ...] | None = None
    answer_index: int | None = None
    label: str | None = None
    meta: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False, hash=False)

    def __post_init__(self) -> None:
        if (
            self.choices is not None
            and self.answer_index is not None
            and not 0 <= self.answer_index < len(self.choices)
        ):
            raise ValueError(
                f"item {self.id!r}: answer_index {self.answer_index} out of range "
                f"for {len(self.choices)} choices"
            )
        if not isinstance(self.meta, MappingProxyType):
            object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))


@dataclass(frozen=True, slots=True)
class Partition:
    """A named split (train / validation / test, or a testbed's seen_x16 ...) in published order.

    The order is kept because the exchangeability test depends on it.
    """

    name: str
    items: tuple[Item, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A loaded benchmark: its partitions in file order plus where it came from."""

    name: str
    format: BenchmarkFormat
    partitions: Mapping[str, Partition]
    source: str
    sha256: str

    def partition(self, name: str) -> Partition:
        try:
            return self.partitions[name]
        except KeyError:
            known = ", ".join(self.partitions) or "none"
            raise KeyError(f"benchmark {self.name!r} has no partition {name!r} (has: {known})") from None

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(p) for name, p in self.partitions.items()}

    def items(self) -> Iterator[Item]:
        for partition in self.partitions.values():
            yield from partition.items


def content_sha256(*chunks: bytes | str) -> str:
    """Stable digest of some content, for provenance and cache keys."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
        digest.update(b"\x00")
    return digest.hexdigest()
