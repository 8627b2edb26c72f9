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
from pathlib import Path

from contam.cache import CallCache
from contam.checklist.config import ChecklistConfig
from contam.checklist.prepare import prepare
from contam.checklist.result import BenchmarkRun, ChecklistLine, ChecklistResult
from contam.errors import ContamError
from contam.probe import Probe
from contam.report import ScanReport, now
from contam.resolve import LocalResolver, Resolver
from contam.runner import Progress
from contam.types import Benchmark
from contam.verdicts.types import PartitionVerdict, VerdictPolicy, VerdictSet


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
    config: ChecklistConfig,
    *,
    out_dir: Path,
    cache_path: Path | None = None,
    cache: CallCache | None = None,
    progress: Progress | None = None,
    resolver: Resolver | None = None,
) -> ChecklistResult:
    """`run_checklist` in a running loop. `cache` is an open call cache to use instead of one at
    `cache_path` (the service's, which may live in its job store); the caller closes it.
    `resolver` opens what probe parameters name (default: specs and paths, on the call cache)."""
    from contam.checklist.render import write_checklist
    from contam.models.spec import ModelSpec
    from contam.registry import create_model, get_probe
    from contam.runner import Runner
    from contam.scan import scan

    prepared = prepare(config)
    probes: list[Probe] = [get_probe(p.name).from_options(p.params) for p in config.probes]
    # Checked before the cache or any model is opened (checking needs neither).
    checker = resolver or LocalResolver()
    for i, probe in enumerate(probes):
        checker.check(probe.params, field=f"probes[{i}].params")
    own_cache = cache is None
    calls = CallCache(cache_path) if cache is None else cache
    if resolver is None:
        resolver = LocalResolver(calls)
    policy = VerdictPolicy(alpha=config.alpha)
    spec = ModelSpec.parse(config.model, api_key_env=config.api_key_env)
    client = create_model(spec)
    reports: list[ScanReport] = []
    try:
        for prep in prepared:
            # A runner per benchmark, so each report counts its own calls; client and cache shared.
            runner = Runner(client, calls, concurrency=config.concurrency, progress=progress)
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
                resolver=resolver,
            )
            reports.append(report)
    finally:
        await client.aclose()
        if own_cache:
            calls.close()

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
