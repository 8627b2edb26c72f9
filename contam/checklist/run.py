"""Run a release checklist: every benchmark scanned, one verdict family over all their partitions.

Each benchmark is a `contam.scan.scan` through a runner on the shared SQLite call cache, so a
re-run (or a run resumed after a kill) repeats no completed model call. The verdicts are then
decided once over every tested partition of every benchmark, so Holm's step-down holds the
family-wise error at `alpha` over the whole checklist, not per benchmark: a release gate that
looks at eight partitions must not get eight chances to cry wolf. Each benchmark's report is
written with those same checklist-family verdicts, so a report and the checklist never disagree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contam.checklist.config import BenchmarkEntry, ChecklistConfig
from contam.errors import ContamError, InputError
from contam.models.base import ModelIdentity
from contam.probe import Probe
from contam.report import ScanReport, now
from contam.runner import Progress
from contam.types import Benchmark, Partition
from contam.verdicts.types import PartitionVerdict, Verdict, VerdictPolicy, VerdictSet
from corpora_index.report import OverlapReport

SCHEMA_VERSION = "1"
FailOn = Literal["contaminated", "suspicious"]
# Exit code of a failed release gate (0: nothing flagged; 1 and 2 are errors, as everywhere in the CLI).
FLAGGED = 3


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChecklistLine(_Frozen):
    """One benchmark partition: its verdict, the rule that decided, and the evidence that weighed most."""

    benchmark: str = Field(description="the benchmark's label in the checklist")
    partition: str
    verdict: Verdict
    rule: str = Field(description="the rule that decided, in one sentence with its numbers")
    rule_id: str
    combined_p: float | None = None
    adjusted_p: float | None = Field(default=None, description="after Holm over the whole checklist family")
    family: str = Field(description="the family its adjusted p-value belongs to")
    key_evidence: str | None = Field(default=None, description="the strongest evidence used, in one line")
    report: str = Field(description="the benchmark's report.json, relative to the checklist folder")


class BenchmarkRun(_Frozen):
    """What was scanned for one benchmark, and what it cost."""

    label: str
    source: str
    sha256: str
    reference: str | None
    partitions: tuple[str, ...]
    overlap: tuple[str, ...] = Field(default=(), description="overlap.json files and index folders used")
    report: str
    requests: int
    model_calls: int
    cache_hits: int


class ChecklistResult(_Frozen):
    schema_version: str = SCHEMA_VERSION
    created_at: datetime
    model: str = Field(description="the model spec, without any secret")
    identity: ModelIdentity
    alpha: float
    family: str = Field(description="the partitions over which the family-wise error is held at alpha")
    probes: tuple[str, ...]
    benchmarks: tuple[BenchmarkRun, ...]
    lines: tuple[ChecklistLine, ...]

    @property
    def model_calls(self) -> int:
        return sum(b.model_calls for b in self.benchmarks)

    def flagged(self, fail_on: FailOn = "contaminated") -> tuple[ChecklistLine, ...]:
        failing = {Verdict.CONTAMINATED} | ({Verdict.SUSPICIOUS} if fail_on == "suspicious" else set())
        return tuple(line for line in self.lines if line.verdict in failing)

    def exit_code(self, fail_on: FailOn = "contaminated") -> int:
        """0 when nothing fails the gate; 3 on any contaminated partition (or suspicious, if asked)."""
        return FLAGGED if self.flagged(fail_on) else 0

    def write(self, path: str | Path) -> None:
        from contam.checklist.render import atomic_write

        atomic_write(Path(path), self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> ChecklistResult:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class _Prepared:
    """One benchmark, opened and checked before any model call."""

    entry: BenchmarkEntry
    label: str
    bench: Benchmark
    reference: Partition | None
    reference_label: str | None
    partitions: tuple[str, ...] | None
    overlap: OverlapReport | None
    overlap_sources: tuple[str, ...]


def run_checklist(
    config: ChecklistConfig, *, out_dir: Path, cache_path: Path | None, progress: Progress | None = None
) -> ChecklistResult:
    """Run every benchmark of `config`, write the reports and the checklist into `out_dir`.

    `cache_path=None` keeps the call cache in memory (nothing resumes). Input problems found after
    loading (a partition name, an overlap file of another benchmark) are `InputError`s pointing at
    the YAML line, raised before the first model call.
    """
    return asyncio.run(arun_checklist(config, out_dir=out_dir, cache_path=cache_path, progress=progress))


async def arun_checklist(
    config: ChecklistConfig, *, out_dir: Path, cache_path: Path | None, progress: Progress | None = None
) -> ChecklistResult:
    from contam.cache import CallCache
    from contam.checklist.render import write_checklist
    from contam.models.spec import ModelSpec
    from contam.registry import create_model, get_probe
    from contam.runner import Runner
    from contam.scan import scan

    prepared = _prepare(config)
    probes: list[Probe] = [get_probe(p.name).from_options(p.params) for p in config.probes]
    policy = VerdictPolicy(alpha=config.alpha)
    spec = ModelSpec.parse(config.model, api_key_env=config.api_key_env)
    client = create_model(spec)
    cache = CallCache(cache_path)
    reports: list[ScanReport] = []
    try:
        for prep in prepared:
            # A runner per benchmark, so each report counts its own calls; client and cache shared.
            runner = Runner(client, cache, concurrency=config.concurrency, progress=progress)
            report = await scan(
                prep.bench,
                runner,
                probes,
                model_spec=str(spec),
                partitions=prep.partitions,
                reference=prep.reference,
                reference_label=prep.reference_label,
                seed=config.seed,
                policy=policy,
                overlap=prep.overlap,
            )
            reports.append(report)
    finally:
        await client.aclose()
        cache.close()

    labelled = [(prep.label, report) for prep, report in zip(prepared, reports, strict=True)]
    verdicts = decide_family(labelled, policy)
    family = _family_words(verdicts, len(prepared), config.alpha)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs: list[BenchmarkRun] = []
    lines: list[ChecklistLine] = []
    for prep, report, judged in zip(prepared, reports, verdicts, strict=True):
        report = report.model_copy(update={"verdicts": judged})
        report_path = _write_report(report, prep.bench, out_dir / prep.label / "report.json")
        relative = str(report_path.relative_to(out_dir))
        runs.append(
            BenchmarkRun(
                label=prep.label,
                source=prep.bench.source,
                sha256=prep.bench.sha256,
                reference=prep.reference_label,
                partitions=tuple(v.partition for v in judged.partitions),
                overlap=prep.overlap_sources,
                report=relative,
                requests=report.run.requests,
                model_calls=report.run.model_calls,
                cache_hits=report.run.cache_hits,
            )
        )
        lines += [_line(prep.label, v, family, relative) for v in judged.partitions]
    identity = reports[0].model.identity
    result = ChecklistResult(
        created_at=now(),
        model=str(spec),
        identity=identity,
        alpha=config.alpha,
        family=family,
        probes=tuple(p.name for p in config.probes),
        benchmarks=tuple(runs),
        lines=tuple(lines),
    )
    write_checklist(result, out_dir)
    return result


def decide_family(reports: Sequence[tuple[str, ScanReport]], policy: VerdictPolicy) -> list[VerdictSet]:
    """Every tested partition of every report decided as ONE family (Holm over all of them).

    Each scan already judged its partitions (blind baselines included); the evidence is rebuilt
    from those reports and `decide` is called once on all of it, partitions named
    "<label>/<partition>" so equal names in two benchmarks stay apart. Returned per report, with
    the plain partition names back.
    """
    from contam.verdicts import decide, evidence_of
    from contam.verdicts.evidence import BASELINE

    family = []
    for label, report in reports:
        if report.verdicts is None:
            raise ContamError(f"the scan of {label!r} returned no verdicts")
        # None: a baseline was attempted with too few items (evidence_of lists it as skipped).
        baselines = {
            v.partition: v.baseline
            for v in report.verdicts.partitions
            if v.baseline is not None or any(s.name == BASELINE for s in v.skipped)
        }
        for piece in evidence_of(report, baselines, policy):
            family.append(piece.model_copy(update={"partition": f"{label}/{piece.partition}"}))
    decided = decide(family, policy)
    out = []
    for label, _ in reports:
        prefix = f"{label}/"
        mine = tuple(
            v.model_copy(update={"partition": v.partition[len(prefix) :]})
            for v in decided.partitions
            if v.partition.startswith(prefix)
        )
        out.append(VerdictSet(policy=decided.policy, partitions=mine))
    return out


def _family_words(verdicts: Sequence[VerdictSet], benchmarks: int, alpha: float) -> str:
    tested = sum(1 for vs in verdicts for v in vs.partitions if v.combined_p is not None)
    total = sum(len(vs.partitions) for vs in verdicts)
    return (
        f"Holm over the {tested} partitions with a combined p-value (of {total} tested, in {benchmarks} "
        f"benchmark{'s' if benchmarks != 1 else ''}), family-wise error alpha = {alpha:g}"
    )


def _line(label: str, verdict: PartitionVerdict, family: str, report: str) -> ChecklistLine:
    used = [e for e in verdict.evidence if e.used]
    key = used[0].summary if used else (verdict.evidence[0].summary if verdict.evidence else None)
    return ChecklistLine(
        benchmark=label,
        partition=verdict.partition,
        verdict=verdict.verdict,
        rule=verdict.rule,
        rule_id=verdict.rule_id,
        combined_p=verdict.combined_p,
        adjusted_p=verdict.adjusted_p,
        family=family,
        key_evidence=key,
        report=report,
    )


def _write_report(report: ScanReport, bench: Benchmark, json_path: Path) -> Path:
    from contam.reports import select_excerpts, write_reports

    report = report.model_copy(update={"excerpts": select_excerpts(report, bench)})
    return Path(write_reports(report, json_path)["json"])


# --- preflight: everything that can be wrong with the input, found before the model is called


def _prepare(config: ChecklistConfig) -> list[_Prepared]:
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


def _prepare_one(config: ChecklistConfig, i: int, entry: BenchmarkEntry, label: str) -> _Prepared:
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
    return _Prepared(entry, label, bench, reference, reference_label, entry.partitions, overlap, sources)


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
