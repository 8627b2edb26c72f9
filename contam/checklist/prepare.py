"""Before the first model call: every benchmark opened, its reference, partitions and corpus
overlap resolved and checked, each problem an `InputError` at the line of the YAML key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from contam.checklist.config import BenchmarkEntry, ChecklistConfig
from contam.errors import InputError
from contam.types import Benchmark, Partition
from corpora_index.report import OverlapReport


@dataclass(frozen=True)
class Prepared:
    """One benchmark, opened and checked before any model call."""

    entry: BenchmarkEntry
    label: str
    bench: Benchmark
    reference: Partition | None
    reference_label: str | None
    partitions: tuple[str, ...] | None
    overlap: OverlapReport | None
    overlap_sources: tuple[str, ...]


def prepare(config: ChecklistConfig) -> list[Prepared]:
    labels = _labels(config.benchmarks)
    pairs = zip(config.benchmarks, labels, strict=True)
    return [_prepare_one(config, i, entry, label) for i, (entry, label) in enumerate(pairs)]


def _labels(entries: Sequence[BenchmarkEntry]) -> list[str]:
    """A folder name per benchmark: its label, else the built-in name or the file's stem, with the
    parent folder's name in front when the stem alone is shared (two testbeds' benchmark.jsonl)."""
    simple = [e.label or Path(e.name).stem for e in entries]
    labels = []
    for entry, name in zip(entries, simple, strict=True):
        if entry.label is None and simple.count(name) > 1 and Path(entry.name).parent.name:
            name = f"{Path(entry.name).parent.name}-{name}"
        labels.append(_slug(name))
    return _dedupe(labels)


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "benchmark"


def _dedupe(labels: list[str]) -> list[str]:
    out: list[str] = []
    for label in labels:
        candidate, n = label, 2
        while candidate in out:
            candidate, n = f"{label}-{n}", n + 1
        out.append(candidate)
    return out


def _prepare_one(config: ChecklistConfig, i: int, entry: BenchmarkEntry, label: str) -> Prepared:
    from contam.benchmarks import FieldMap, load_benchmark

    here: tuple[str | int, ...] = ("benchmarks", i)
    try:
        bench = load_benchmark(entry.name, fields=FieldMap.parse(entry.field_args), format=entry.format)
    except InputError as exc:
        raise config.error(f"{_where(exc)}{exc.message}", (*here, "name")) from None
    reference, reference_label = _reference(config, i, entry, bench)
    ref_name = reference.name if reference is not None else None
    if entry.partitions is not None:
        for j, name in enumerate(entry.partitions):
            if name not in bench.partitions:
                known = ", ".join(bench.partitions)
                message = f"no partition {name!r} in {bench.name!r} (has: {known})"
                raise config.error(message, (*here, "partitions", j))
            if name == ref_name:
                message = f"{name!r} is the reference; it cannot be tested against itself"
                raise config.error(message, (*here, "partitions", j))
    tested = list(entry.partitions or [name for name in bench.partitions if name != ref_name])
    if not tested:
        raise config.error(f"nothing to test: {bench.name!r} has no partition besides the reference", here)
    overlap, sources = _overlap(config, i, entry, bench, tested)
    return Prepared(entry, label, bench, reference, reference_label, entry.partitions, overlap, sources)


def _where(exc: InputError) -> str:
    """The location inside another file (a benchmark's bad row), to keep in front of the message."""
    if exc.path is None:
        return ""
    spot = f":{exc.line}" if exc.line is not None else (f" row {exc.row}" if exc.row is not None else "")
    return f"{exc.path}{spot}: " + (f"field {exc.field!r}: " if exc.field else "")


def _reference(
    config: ChecklistConfig, i: int, entry: BenchmarkEntry, bench: Benchmark
) -> tuple[Partition | None, str | None]:
    """A partition of the benchmark, or a file of items the model never saw, read with the
    benchmark's own field mapping and format (as `contam scan --reference` does)."""
    from contam.benchmarks import FieldMap, load_benchmark

    ref = entry.reference
    if ref is None:
        return None, None
    if ref in bench.partitions:
        return bench.partitions[ref], ref
    loc: tuple[str | int, ...] = ("benchmarks", i, "reference")
    if not Path(ref).exists():
        known = ", ".join(bench.partitions)
        raise config.error(f"{ref!r} is neither a partition of {bench.name!r} ({known}) nor a file", loc)
    try:
        ref_bench = load_benchmark(ref, fields=FieldMap.parse(entry.field_args), format=entry.format)
    except InputError as exc:
        raise config.error(f"{_where(exc)}{exc.message}", loc) from None
    items = tuple(ref_bench.items())
    return Partition(f"reference:{ref_bench.name}", items), f"file:{ref}"


def _overlap(
    config: ChecklistConfig, i: int, entry: BenchmarkEntry, bench: Benchmark, tested: Sequence[str]
) -> tuple[OverlapReport | None, tuple[str, ...]]:
    """The benchmark's corpus overlap: its overlap.json and each index queried, merged per item."""
    from contam.report import check_overlap

    found: list[tuple[str, OverlapReport]] = []
    if entry.overlap is not None:
        try:
            report = OverlapReport.read(entry.overlap)
            check_overlap(report, bench, tested, where=entry.overlap)
        except InputError as exc:
            raise config.error(f"{_where(exc)}{exc.message}", ("benchmarks", i, "overlap")) from None
        found.append((entry.overlap, report))
    if config.indexes:
        from corpora_index.api import check_index

        items = list(bench.items())
        for j, index in enumerate(config.indexes):
            try:
                found.append((index, check_index(items, index, benchmark=bench.name)))
            except InputError as exc:
                raise config.error(f"{_where(exc)}{exc.message}", ("indexes", j)) from None
    if not found:
        return None, ()
    try:
        merged = merge_overlaps(found)
    except InputError as exc:
        raise config.error(f"{_where(exc)}{exc.message}", ("indexes",)) from None
    return merged, tuple(source for source, _ in found)


def merge_overlaps(reports: Sequence[tuple[str, OverlapReport]]) -> OverlapReport:
    """Several overlap reports of one benchmark as one: per item, the strongest match found in any
    corpus (highest word coverage, then longest span). The union of two corpora could cover more
    of an item than either alone, so this is a lower bound on the union's coverage: it never
    overstates. Reports must share one n-gram setting, or "coverage" would not mean the same."""
    first_source, merged = reports[0]
    if len(reports) == 1:
        return merged
    best = {(item.partition, item.id): item for item in merged.items}
    sources = list(merged.corpus.sources)
    documents, size, problems = merged.corpus.documents, merged.corpus.bytes, list(merged.corpus.problems)
    for source, report in reports[1:]:
        if report.fingerprint != merged.fingerprint:
            raise InputError(
                f"its index settings ({report.fingerprint.model_dump(mode='json')}) differ from those of "
                f"{first_source} ({merged.fingerprint.model_dump(mode='json')}); overlap evidence "
                "can only be merged across indexes built with the same settings",
                path=source,
            )
        for item in report.items:
            key = (item.partition, item.id)
            held = best.get(key)
            if held is None or (item.token_coverage, item.longest_span) > (
                held.token_coverage,
                held.longest_span,
            ):
                best[key] = item
        sources += report.corpus.sources
        documents += report.corpus.documents
        size += report.corpus.bytes
        problems += report.corpus.problems
    corpus = merged.corpus.model_copy(
        update={"sources": tuple(sources), "documents": documents, "bytes": size, "problems": tuple(problems)}
    )
    modes = {report.mode for _, report in reports}
    return merged.model_copy(
        update={
            "items": tuple(best.values()),
            "corpus": corpus,
            "mode": modes.pop() if len(modes) == 1 else "merged",
            "frequency_cap": None if len({r.frequency_cap for _, r in reports}) > 1 else merged.frequency_cap,
        }
    )
