"""Scan orchestration: every (probe, partition) pair through one runner, into one `ScanReport`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from contam.models.base import ModelClient
from contam.probe import Probe, ProbeContext
from contam.report import BenchmarkInfo, ModelInfo, RunInfo, ScanReport, now
from contam.resolve import LocalResolver, Resolver
from contam.results import ProbeResult
from contam.runner import ItemProgress, Runner
from contam.types import Benchmark, Partition
from contam.verdicts.judge import judge
from contam.verdicts.types import DEFAULT_POLICY, VerdictPolicy
from corpora_index.report import OverlapReport


def contam_version() -> str:
    try:
        return version("contam")
    except PackageNotFoundError:
        return "0+unknown"


def suspect_partitions(
    bench: Benchmark, chosen: Sequence[str] | None, reference: Partition | None
) -> list[Partition]:
    """The partitions to test: those chosen, else all but the reference."""
    if chosen:
        return [bench.partition(name) for name in chosen]
    ref_name = reference.name if reference is not None else None
    return [p for name, p in bench.partitions.items() if name != ref_name]


async def scan(
    bench: Benchmark,
    runner: Runner,
    probes: Sequence[Probe],
    *,
    model_spec: str,
    partitions: Sequence[str] | None = None,
    reference: Partition | None = None,
    reference_label: str | None = None,
    seed: int = 0,
    policy: VerdictPolicy | None = DEFAULT_POLICY,
    overlap: OverlapReport | None = None,
    resolver: Resolver | None = None,
) -> ScanReport:
    """Run every probe on every tested partition; attach `overlap` (corpus evidence of the same
    benchmark, checked by the caller) and, unless `policy` is None, the verdicts decided under it.

    `resolver` opens what probe parameters name (`contam.resolve`); by default specs and paths,
    on the runner's call cache, so a second model's calls are cached and resumable too."""
    started = time.perf_counter()
    created = now()
    if resolver is None:
        resolver = LocalResolver(runner.cache)
    ctx = ProbeContext(benchmark=bench.name, reference=reference, seed=seed, resolver=resolver)
    model: ModelClient = runner
    targets = suspect_partitions(bench, partitions, reference)
    items = runner.progress if isinstance(runner.progress, ItemProgress) else None
    if items is not None:
        items.add_item_total(sum(len(part) for part in targets) * len(probes))

    async def run_one(probe: Probe, part: Partition) -> ProbeResult:
        result = await probe.run(part, model, ctx)
        if items is not None:
            items.advance_items(len(part))
        return result

    # The runner bounds concurrency and shares identical calls, so all pairs can go at once.
    results = await asyncio.gather(*(run_one(probe, part) for part in targets for probe in probes))
    stats = runner.stats
    report = ScanReport(
        benchmark=BenchmarkInfo.of(bench),
        model=ModelInfo(spec=model_spec, identity=runner.identity, capabilities=runner.capabilities),
        reference=reference_label,
        seed=seed,
        probes=tuple(results),
        run=RunInfo(
            created_at=created,
            duration_s=time.perf_counter() - started,
            contam_version=contam_version(),
            requests=stats.requested,
            cache_hits=stats.cache_hits,
            model_calls=stats.calls,
        ),
        overlap=overlap,
    )
    return report if policy is None else judge(report, bench, reference, policy)
