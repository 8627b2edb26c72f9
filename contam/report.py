"""`ScanReport`: the versioned record of a scan. Serialised only through pydantic, never pickled.

It carries everything needed to reproduce and audit a result: benchmark and model provenance,
every probe's parameters and per-item scores, what the run cost, and optionally the corpus overlap
evidence of the same benchmark (`overlap.json`), so verdicts can weigh both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contam.errors import InputError
from contam.models.base import Capabilities, ModelIdentity
from contam.results import ProbeResult
from contam.types import Benchmark
from contam.verdicts.types import VerdictSet

# pydantic models only (no numpy, numba or datasketch): keeps `import contam` light
from corpora_index.report import ItemOverlap, OverlapReport

# 1.1: optional `overlap` (corpus overlap evidence). 1.2: the model identity's `bos_default` and
# `basis`; unscored items longer than the context (detail `length`, `limit`). 1.3: `verdicts` (one per
# partition, with the policy) and `excerpts` (the most suspicious items' text). Older reports still load.
SCHEMA_VERSION = "1.3"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BenchmarkInfo(_Frozen):
    name: str
    source: str
    sha256: str
    format: str
    partitions: dict[str, int]

    @classmethod
    def of(cls, bench: Benchmark) -> BenchmarkInfo:
        return cls(
            name=bench.name,
            source=bench.source,
            sha256=bench.sha256,
            format=bench.format,
            partitions=bench.counts,
        )


class ModelInfo(_Frozen):
    spec: str = Field(description="the model spec as given, without any secret")
    identity: ModelIdentity
    capabilities: Capabilities


class RunInfo(_Frozen):
    """Facts about this particular run; excluded when comparing two reports' findings."""

    created_at: datetime
    duration_s: float
    contam_version: str
    requests: int
    cache_hits: int
    model_calls: int


class CorpusSnippet(_Frozen):
    """The corpus text at one matched span, read from the corpus document when it was readable."""

    document: str
    start: int = Field(description="character offset of `text` in the document")
    end: int
    text: str = Field(description="the corpus text of the span, with a little context either side")
    span_start: int = Field(description="offset of the matched span itself within `text`")
    span_end: int


class ItemExcerpt(_Frozen):
    """An item shown in the report among the most suspicious, with its text and corpus matches."""

    partition: str
    id: str
    text: str = Field(description="the item's text, cut to a few thousand characters")
    truncated: bool = False
    why: str = Field(description="why it is shown, e.g. 'highest min_k_pp score in seen_x16'")
    scores: dict[str, float] = Field(default_factory=dict, description="probe name -> its item score")
    snippets: tuple[CorpusSnippet, ...] = ()


class ScanReport(_Frozen):
    schema_version: str = SCHEMA_VERSION
    benchmark: BenchmarkInfo
    model: ModelInfo
    reference: str | None = Field(default=None, description="the reference partition or file, if any")
    seed: int
    probes: tuple[ProbeResult, ...]
    run: RunInfo
    overlap: OverlapReport | None = Field(
        default=None,
        description="corpus overlap evidence per item (overlap.json of the same benchmark), if attached",
    )
    verdicts: VerdictSet | None = Field(
        default=None, description="one verdict per tested partition and the policy (absent before 1.3)"
    )
    excerpts: tuple[ItemExcerpt, ...] = Field(
        default=(), description="the most suspicious items with their text, for the reports"
    )

    def item_overlap(self, partition: str, item_id: str) -> ItemOverlap | None:
        """The overlap evidence of one item, or None when no overlap report is attached."""
        if self.overlap is None:
            return None
        return self.overlap.by_key().get((partition, item_id))

    def findings(self) -> dict[str, Any]:
        """Everything but the run facts: two runs of the same scan must agree on this exactly."""
        return self.model_dump(mode="json", exclude={"run"})

    def write(self, path: str | Path) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(target)  # atomic: a killed scan never leaves a truncated report

    @classmethod
    def read(cls, path: str | Path) -> ScanReport:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def check_overlap(
    overlap: OverlapReport, bench: Benchmark, tested: Sequence[str], *, where: str = "overlap.json"
) -> None:
    """Refuse overlap evidence that is not of this benchmark's items.

    Every item of the overlap report must be a (partition, id) of the benchmark, every partition it
    covers must be covered whole, and it must cover each partition the scan tests.
    """
    have: dict[str, set[str]] = {}
    for item in overlap.items:
        ids = have.setdefault(item.partition, set())
        if item.id in ids:
            raise InputError(f"item {item.id!r} of partition {item.partition!r} appears twice", path=where)
        ids.add(item.id)
    for partition, ids in have.items():
        if partition not in bench.partitions:
            known = ", ".join(bench.partitions)
            raise InputError(
                f"partition {partition!r} is not in benchmark {bench.name!r} (has: {known}); "
                "was it made for another benchmark?",
                path=where,
            )
        want = set(bench.partitions[partition].ids)
        unknown, missing = sorted(ids - want), sorted(want - ids)
        if unknown:
            raise InputError(
                f"{len(unknown)} item(s) of partition {partition!r} are not in benchmark {bench.name!r} "
                f"(first: {unknown[0]!r}); was it made for another benchmark or version?",
                path=where,
            )
        if missing:
            raise InputError(
                f"lacks {len(missing)} of the {len(want)} items of partition {partition!r} "
                f"(first: {missing[0]!r}); re-run `contam overlap` on this benchmark",
                path=where,
            )
    for partition in tested:
        if partition not in have:
            raise InputError(
                f"has no items of partition {partition!r}, which this scan tests; run `contam overlap` "
                f"on the whole benchmark or with --partition {partition}",
                path=where,
            )


def now() -> datetime:
    return datetime.now(UTC)
