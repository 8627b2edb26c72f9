"""A scan's probe results and corpus overlap, reduced to the evidence `decide` reads.

One `Evidence` per (probe, partition) with a p-value; a probe that gave none is `Skipped` with why,
so it is listed and never counts either way. Pydantic values only (no numpy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from contam.results import PartitionStatistic, ProbeResult
from contam.verdicts.types import (
    DEFAULT_POLICY,
    BlindBaseline,
    CorpusSummary,
    Evidence,
    PartitionEvidence,
    Skipped,
    VerdictPolicy,
)
from corpora_index.report import ItemOverlap
from corpora_index.settings import IndexSettings

if TYPE_CHECKING:  # contam.report imports contam.verdicts.types: no import cycle at run time
    from contam.report import ScanReport

NO_REFERENCE = "no reference partition: scores only, no test"
BASELINE = "blind_baseline"

_TEST_NAMES = {
    "mann_whitney_u": "Mann-Whitney",
    "wilcoxon_signed_rank": "Wilcoxon signed-rank",
    "fisher_exact": "Fisher exact",
    "sharded_likelihood_t": "sharded likelihood t-test",
}
_EFFECT_NAMES = {"auroc": "AUROC", "rank_biserial": "rank-biserial r", "rate_difference": "rate difference"}


def effect_floor(effect_name: str | None, policy: VerdictPolicy) -> float | None:
    """The floor an effect must reach to count as contamination; None for tests without an effect
    (exchangeability: its null is about order, there is no shift to be negligible)."""
    floors = {
        "auroc": policy.auroc_floor,
        "rank_biserial": policy.rank_biserial_floor,
        "rate_difference": policy.rate_difference_floor,
    }
    return floors.get(effect_name) if effect_name is not None else None


def effect_label(effect_name: str) -> str:
    return _EFFECT_NAMES.get(effect_name, effect_name)


def fmt_p(p: float) -> str:
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3g}"


def _summary(probe: str, st: PartitionStatistic, floor: float | None, meets: bool | None) -> str:
    parts = [f"{probe}:"]
    if st.effect_name is not None and st.effect is not None:
        effect = f"{effect_label(st.effect_name)} {st.effect:.2f}"
        if st.effect_ci is not None:
            effect += f" [{st.effect_ci.low:.2f}, {st.effect_ci.high:.2f}]"
        if meets is False and floor is not None:
            effect += f" (below its floor {floor:g})"
        parts.append(effect)
    if st.reference is not None:
        parts[-1] += f" vs {st.reference},"
    elif len(parts) > 1:
        parts[-1] += ","
    assert st.p_value is not None
    parts.append(f"{_TEST_NAMES.get(st.name, st.name)} p = {fmt_p(st.p_value)}")
    counts = f"(n {st.n}" + (f" / {st.n_reference})" if st.n_reference is not None else ")")
    parts.append(counts)
    return " ".join(parts)


def probe_evidence(
    result: ProbeResult, policy: VerdictPolicy, *, reference: str | None
) -> Evidence | Skipped:
    """One probe's test of one partition, or why it gives none."""
    if result.skipped:
        return Skipped(name=result.probe, reason=result.skipped)
    st = result.statistic
    if st is None:
        if reference is None:
            return Skipped(name=result.probe, reason=NO_REFERENCE)
        why = next((n for n in result.notes if "no test" in n), "the probe gave no partition statistic")
        return Skipped(name=result.probe, reason=why)
    if st.p_value is None:
        return Skipped(name=result.probe, reason=f"its statistic {st.name} has no p-value")
    floor = effect_floor(st.effect_name, policy) if st.effect is not None else None
    meets = None if floor is None or st.effect is None else st.effect >= floor
    return Evidence(
        source="probe",
        name=result.probe,
        statistic=st.name,
        p_value=st.p_value,
        effect_name=st.effect_name,
        effect=st.effect,
        effect_ci=st.effect_ci,
        effect_floor=floor,
        meets_floor=meets,
        uses_reference=st.reference is not None,
        n=st.n,
        n_reference=st.n_reference,
        summary=_summary(result.probe, st, floor, meets),
    )


def index_words(settings: IndexSettings) -> str:
    norm = settings.normalizer
    folds = [
        name
        for name, on in (
            (norm.unicode_form, norm.unicode_form != "none"),
            ("lowercase", norm.lowercase),
            ("punctuation folded", norm.fold_punctuation),
            ("digits folded", norm.fold_digits),
        )
        if on
    ]
    folded = ", ".join(folds) or "no normalisation"
    return f"{settings.n}-grams of words ({folded}), {settings.hash}, seed {settings.seed}"


def corpus_summary(items: Sequence[ItemOverlap], policy: VerdictPolicy, index: str) -> CorpusSummary:
    """Dirty: verbatim by coverage and by one long span (both, as the Llama 2 report's rule asks of
    a token-level match); clean: coverage below clean_coverage; partly: the rest."""
    dirty = sum(
        i.token_coverage >= policy.dirty_coverage and i.longest_span >= policy.min_span for i in items
    )
    clean = sum(i.token_coverage < policy.clean_coverage for i in items)
    return CorpusSummary(
        items=len(items),
        dirty=dirty,
        partly=len(items) - dirty - clean,
        clean=clean,
        dirty_share=dirty / len(items) if items else 0.0,
        longest_span=max((i.longest_span for i in items), default=0),
        index=index,
    )


def corpus_evidence(summary: CorpusSummary, policy: VerdictPolicy) -> Evidence:
    share = summary.dirty_share
    line = (
        f"corpus: {summary.dirty} of {summary.items} items verbatim ({share:.0%}; coverage >= "
        f"{policy.dirty_coverage:.0%} and a span >= {policy.min_span} words), {summary.partly} partly, "
        f"{summary.clean} clean (< {policy.clean_coverage:.0%}); longest span {summary.longest_span} words"
    )
    return Evidence(
        source="corpus",
        name="corpus_overlap",
        effect_name="dirty_share",
        effect=share,
        effect_floor=policy.corpus_share,
        meets_floor=share >= policy.corpus_share,
        uses_reference=False,
        n=summary.items,
        summary=line,
    )


TOO_FEW = "blind baseline: too few items (its 5-fold cross-validation needs 10 a side)"


def evidence_of(
    report: ScanReport,
    baselines: Mapping[str, BlindBaseline | None],
    policy: VerdictPolicy = DEFAULT_POLICY,
) -> list[PartitionEvidence]:
    """Evidence per tested partition (those the scan's probes ran on, in their order).

    `baselines` maps a partition to its blind baseline; None there means one was attempted with too
    few items (listed as skipped); a missing partition means none was run (no reference texts).
    """
    order: list[str] = []
    by_partition: dict[str, list[ProbeResult]] = {}
    for result in report.probes:
        if result.partition not in by_partition:
            order.append(result.partition)
        by_partition.setdefault(result.partition, []).append(result)
    overlap: dict[str, list[ItemOverlap]] = {}
    index = ""
    if report.overlap is not None:
        index = index_words(report.overlap.fingerprint)
        for item in report.overlap.items:
            overlap.setdefault(item.partition, []).append(item)
    out = []
    for partition in order:
        evidence: list[Evidence] = []
        skipped: list[Skipped] = []
        for result in by_partition[partition]:
            piece = probe_evidence(result, policy, reference=report.reference)
            if isinstance(piece, Evidence):
                evidence.append(piece)
            else:
                skipped.append(piece)
        corpus = None
        if partition in overlap:
            corpus = corpus_summary(overlap[partition], policy, index)
            evidence.append(corpus_evidence(corpus, policy))
        if partition in baselines and baselines[partition] is None:
            skipped.append(Skipped(name=BASELINE, reason=TOO_FEW))
        out.append(
            PartitionEvidence(
                partition=partition,
                evidence=tuple(evidence),
                skipped=tuple(skipped),
                baseline=baselines.get(partition),
                corpus=corpus,
            )
        )
    return out
