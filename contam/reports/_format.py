"""Numbers and facts both renderers print the same way, as plain text (each format escapes it)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from contam.report import ScanReport
from contam.results import Interval, ProbeResult
from contam.verdicts.evidence import fmt_p
from contam.verdicts.types import BlindBaseline, CorpusSummary, Evidence, PartitionVerdict, VerdictPolicy

VERDICTS_SINCE = (1, 3)
DASH = "–"


def p_value(p: float | None) -> str:
    """As the verdicts' own rule sentences and the terminal table write it."""
    return DASH if p is None else fmt_p(p)


def number(x: float | None, digits: int = 3) -> str:
    return DASH if x is None else f"{x:.{digits}f}"


def scores(by_probe: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.4g}" for name, value in by_probe.items())


def interval(ci: Interval | None) -> str:
    if ci is None:
        return ""
    return f"[{ci.low:.3f}, {ci.high:.3f}]"


def effect(ev: Evidence) -> str:
    if ev.effect is None:
        return DASH
    text = f"{ev.effect_name or 'effect'} {ev.effect:.3f}"
    if ev.effect_ci is not None:
        text += f" {interval(ev.effect_ci)}"
    return text


def floor(ev: Evidence) -> str:
    if ev.effect_floor is None:
        return DASH
    met = {True: "met", False: "not met", None: ""}[ev.meets_floor]
    return f"{ev.effect_floor:g} {met}".strip()


def schema_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def no_verdicts(report: ScanReport) -> str:
    """Why a report has no verdict table, in one line."""
    if schema_tuple(report.schema_version) < VERDICTS_SINCE:
        return f"no verdicts: report schema < 1.3 (this one is {report.schema_version})"
    return "no verdicts: the scan was run without a verdict policy"


def policy_line(policy: VerdictPolicy) -> str:
    return (
        f"alpha {policy.alpha:g} (family-wise over the partitions), {policy.combination} combination, "
        f"floors: AUROC {policy.auroc_floor:g}, rank-biserial {policy.rank_biserial_floor:g}, "
        f"rate difference {policy.rate_difference_floor:g}; corpus: dirty at {policy.dirty_coverage:.0%} "
        f"coverage with a span of {policy.min_span}+ words, clean below {policy.clean_coverage:.0%}, "
        f"decisive at {policy.corpus_share:.0%} dirty items; "
        f"blind-baseline bound AUROC {policy.baseline_bound:g}"
    )


def baseline_line(b: BlindBaseline) -> str:
    verdict = (
        "tells the partition from its reference without any model: the reference is not a fair control"
        if b.distinguishes
        else "does not tell them apart beyond the bound: the reference passes as a fair control"
    )
    return (
        f"{b.method}: AUROC {b.auroc:.3f} {interval(b.auroc_ci)} on {b.n} vs {b.n_reference} items, "
        f"bound {b.bound:g}; {verdict}"
    )


def corpus_facts(c: CorpusSummary) -> list[tuple[str, str]]:
    return [
        ("items", str(c.items)),
        ("dirty", f"{c.dirty} ({c.dirty_share:.1%})"),
        ("partly", str(c.partly)),
        ("clean", str(c.clean)),
        ("longest span", f"{c.longest_span} words"),
        ("index", c.index),
    ]


def evidence_row(ev: Evidence) -> list[str]:
    n = str(ev.n) + (f" vs {ev.n_reference}" if ev.n_reference is not None else "")
    return [
        ev.source,
        ev.name,
        ev.statistic or DASH,
        p_value(ev.p_value),
        effect(ev),
        floor(ev),
        n,
        "yes" if ev.used else "set aside",
        ev.summary,
    ]


EVIDENCE_HEADER = ["source", "name", "test", "p", "effect", "floor", "n", "used", "summary"]
VERDICT_HEADER = ["partition", "verdict", "combined p", "adjusted p", "rule"]
PROBE_HEADER = ["partition", "probe", "n", "mean [95% CI]", "test", "p", "effect [95% CI]", "vs", "notes"]


def verdict_row(v: PartitionVerdict) -> list[str]:
    return [v.partition, v.verdict.value, p_value(v.combined_p), p_value(v.adjusted_p), v.rule]


def probe_row(r: ProbeResult) -> list[str]:
    if r.skipped:
        return [r.partition, r.probe, DASH, DASH, DASH, DASH, DASH, DASH, f"skipped: {r.skipped}"]
    n = str(len(r.items)) + (f" (+{len(r.unscored)} unscored)" if r.unscored else "")
    mean = DASH if r.mean is None else f"{r.mean:.3f} {interval(r.mean_ci)}".strip()
    st = r.statistic
    test, p, eff, vs = DASH, DASH, DASH, DASH
    if st is not None:
        test, p = st.name, p_value(st.p_value)
        if st.effect is not None:
            eff = f"{st.effect_name or 'effect'} {st.effect:.3f} {interval(st.effect_ci)}".strip()
        vs = st.reference or DASH
    return [r.partition, r.probe, n, mean, test, p, eff, vs, "; ".join(r.notes)]


def partitions_in_order(report: ScanReport) -> list[str]:
    """The verdicts' order, then any partition only the probes tested."""
    names = [v.partition for v in report.verdicts.partitions] if report.verdicts else []
    for r in report.probes:
        if r.partition not in names:
            names.append(r.partition)
    return names


def probe_params(report: ScanReport) -> Iterator[tuple[str, str]]:
    """(probe, parameters as compact JSON), once per distinct parameter set of a probe."""
    seen: set[tuple[str, str]] = set()
    for r in report.probes:
        key = (r.probe, as_json(r.params))
        if key not in seen:
            seen.add(key)
            yield key


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def model_facts(report: ScanReport) -> list[tuple[str, str]]:
    ident = report.model.identity
    facts = [("spec", report.model.spec)]
    facts += [(k, DASH if v is None else str(v)) for k, v in ident.model_dump(exclude={"settings"}).items()]
    facts += [(f"setting {k}", v) for k, v in sorted(ident.settings.items())]
    caps = report.model.capabilities.model_dump()
    facts.append(("capabilities", ", ".join(f"{k}={v}" for k, v in caps.items())))
    return facts


def benchmark_facts(report: ScanReport) -> list[tuple[str, str]]:
    b = report.benchmark
    parts = ", ".join(f"{name} ({count})" for name, count in b.partitions.items())
    return [
        ("name", b.name),
        ("source", b.source),
        ("format", b.format),
        ("sha256", b.sha256),
        ("partitions", parts),
        ("reference", report.reference or DASH),
        ("seed", str(report.seed)),
    ]


def index_facts(report: ScanReport) -> list[tuple[str, str]]:
    if report.overlap is None:
        return []
    o = report.overlap
    corpus = o.corpus
    facts = [
        ("fingerprint", as_json(o.fingerprint.model_dump(mode="json"))),
        ("mode", o.mode),
        ("frequency cap", DASH if o.frequency_cap is None else str(o.frequency_cap)),
        ("corpus", f"{corpus.documents} documents, {corpus.bytes} bytes, {len(corpus.sources)} source(s)"),
    ]
    if corpus.problems:
        facts.append(("corpus problems", f"{len(corpus.problems)} skipped line(s), row(s) or file(s)"))
    return facts


def run_facts(report: ScanReport) -> list[tuple[str, str]]:
    r = report.run
    return [
        ("created", r.created_at.isoformat()),
        ("duration", f"{r.duration_s:.1f} s"),
        ("contam", r.contam_version),
        ("requests", str(r.requests)),
        ("cache hits", str(r.cache_hits)),
        ("model calls", str(r.model_calls)),
        ("schema", report.schema_version),
    ]
