"""`judge`: a scan report in, the same report with its verdicts out (blind baselines included)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contam.types import Benchmark, Partition
from contam.verdicts.engine import decide
from contam.verdicts.evidence import evidence_of
from contam.verdicts.types import DEFAULT_POLICY, BlindBaseline, VerdictPolicy

if TYPE_CHECKING:  # contam.report imports contam.verdicts.types: no import cycle at run time
    from contam.report import ScanReport


def baselines_of(
    report: ScanReport, bench: Benchmark, reference: Partition | None, policy: VerdictPolicy
) -> dict[str, BlindBaseline | None]:
    """A blind baseline per tested partition against the reference (None: too few items)."""
    if reference is None:
        return {}
    from contam.verdicts.baseline import blind_baseline  # numpy and scipy, only when a reference exists

    ref_texts = [item.text for item in reference.items]
    out: dict[str, BlindBaseline | None] = {}
    for name in dict.fromkeys(r.partition for r in report.probes):
        if name == reference.name or name not in bench.partitions:
            continue
        texts = [item.text for item in bench.partitions[name].items]
        out[name] = blind_baseline(texts, ref_texts, seed=report.seed, bound=policy.baseline_bound)
    return out


def judge(
    report: ScanReport,
    bench: Benchmark,
    reference: Partition | None,
    policy: VerdictPolicy = DEFAULT_POLICY,
) -> ScanReport:
    """The report with `verdicts` set: baselines, then `evidence_of`, then `decide`."""
    baselines = baselines_of(report, bench, reference, policy)
    verdicts = decide(evidence_of(report, baselines, policy), policy)
    return report.model_copy(update={"verdicts": verdicts})
