"""`decide`: every rule on hand-built evidence, Holm across partitions, floors and skipped probes."""

from __future__ import annotations

import pytest

from contam.results import Interval
from contam.verdicts import decide
from contam.verdicts.types import (
    BlindBaseline,
    CorpusSummary,
    Evidence,
    PartitionEvidence,
    Skipped,
    Verdict,
    VerdictPolicy,
)


def probe(name: str, p: float, auroc: float | None = 0.9, *, reference: bool = True) -> Evidence:
    """A probe's evidence; auroc=None is a test without an effect (exchangeability)."""
    return Evidence(
        source="probe",
        name=name,
        statistic="mann_whitney_u" if reference else "sharded_likelihood_t",
        p_value=p,
        effect_name="auroc" if auroc is not None else None,
        effect=auroc,
        effect_floor=0.6 if auroc is not None else None,
        meets_floor=None if auroc is None else auroc >= 0.6,
        uses_reference=reference,
        n=40,
        n_reference=40 if reference else None,
        summary=f"{name}: p = {p}",
    )


def corpus(dirty: int, partly: int, items: int = 40) -> CorpusSummary:
    return CorpusSummary(
        items=items,
        dirty=dirty,
        partly=partly,
        clean=items - dirty - partly,
        dirty_share=dirty / items,
        longest_span=40 if dirty else 5,
        index="13-grams of words",
    )


def corpus_ev(summary: CorpusSummary) -> Evidence:
    return Evidence(
        source="corpus",
        name="corpus_overlap",
        effect_name="dirty_share",
        effect=summary.dirty_share,
        effect_floor=0.1,
        meets_floor=summary.dirty_share >= 0.1,
        uses_reference=False,
        n=summary.items,
        summary="corpus",
    )


def baseline(auroc: float, low: float) -> BlindBaseline:
    return BlindBaseline(
        method="test",
        auroc=auroc,
        auroc_ci=Interval(low=low, high=min(1.0, auroc + 0.05), method="bootstrap(2000)"),
        n=40,
        n_reference=40,
        bound=0.6,
        distinguishes=low > 0.6,
    )


def one(pe: PartitionEvidence, policy: VerdictPolicy | None = None):
    (verdict,) = decide([pe], policy or VerdictPolicy()).partitions
    return verdict


def test_corpus_direct_decides_alone_and_comes_first() -> None:
    summary = corpus(dirty=12, partly=3)
    pe = PartitionEvidence(
        partition="test", evidence=(probe("loss", 0.6, 0.48), corpus_ev(summary)), corpus=summary
    )
    v = one(pe)
    assert (v.verdict, v.rule_id) == (Verdict.CONTAMINATED, "corpus_direct")
    assert "12 of 40 items (30%)" in v.rule
    assert v.evidence[0].source == "corpus"
    assert v.combined_p == pytest.approx(0.6)


def test_unfair_reference_sets_reference_probes_aside_and_is_inconclusive() -> None:
    pe = PartitionEvidence(
        partition="test",
        evidence=(probe("loss", 1e-12), probe("min_k", 1e-9)),
        baseline=baseline(0.97, 0.93),
    )
    v = one(pe)
    assert (v.verdict, v.rule_id) == (Verdict.INCONCLUSIVE, "blind_baseline")
    assert all(not e.used for e in v.evidence)
    assert v.combined_p is None and v.adjusted_p is None
    assert "AUROC 0.97 [0.93, 1.00] > 0.6" in v.rule and "not a fair control" in v.rule


def test_unfair_reference_leaves_significant_reference_free_evidence_to_decide() -> None:
    pe = PartitionEvidence(
        partition="test",
        evidence=(probe("loss", 1e-12), probe("exchangeability", 1e-5, None, reference=False)),
        baseline=baseline(0.97, 0.93),
    )
    v = one(pe)
    assert (v.verdict, v.rule_id) == (Verdict.CONTAMINATED, "combined")
    assert v.combined_p == pytest.approx(1e-5)  # the reference-based p = 1e-12 is not used
    used = {e.name: e.used for e in v.evidence}
    assert used == {"loss": False, "exchangeability": True}
    assert v.evidence[0].name == "exchangeability"  # used evidence first


def test_a_fair_reference_lets_probes_count() -> None:
    pe = PartitionEvidence(partition="test", evidence=(probe("loss", 1e-6),), baseline=baseline(0.52, 0.45))
    v = one(pe)
    assert (v.verdict, v.rule_id) == (Verdict.CONTAMINATED, "combined")
    assert v.baseline is not None and not v.baseline.distinguishes


def test_combined_significant_with_a_probe_meeting_its_floor_is_contaminated() -> None:
    pe = PartitionEvidence(partition="test", evidence=(probe("loss", 1e-6, 0.9), probe("zlib", 0.3, 0.55)))
    v = one(pe)
    assert (v.verdict, v.rule_id) == (Verdict.CONTAMINATED, "combined")
    assert v.combined_p is not None and v.combined_p < 1e-5
    assert "loss" in v.rule and "AUROC 0.90 >= its floor 0.6" in v.rule


def test_significant_but_below_every_floor_is_suspicious() -> None:
    """A huge partition makes a negligible shift significant: AUROC 0.55 at p = 1e-6."""
    pe = PartitionEvidence(partition="test", evidence=(probe("loss", 1e-6, 0.55), probe("min_k", 1e-4, 0.56)))
    v = one(pe)
    assert (v.verdict, v.rule_id) == (Verdict.SUSPICIOUS, "combined_below_floor")
    assert "loss AUROC 0.55 < 0.6" in v.rule


def test_a_test_without_an_effect_has_no_floor() -> None:
    pe = PartitionEvidence(
        partition="test", evidence=(probe("exchangeability", 1e-4, None, reference=False),)
    )
    assert one(pe).rule_id == "combined"


def test_holm_controls_the_family_wise_error_across_partitions() -> None:
    """p = 0.02 alone is contaminated; among five partitions Holm's adjustment (5 x 0.02 = 0.1)
    leaves it unflagged: significant alone, not after the family-wise correction, which the rule
    says (issue 17, finding 1: it was `suspicious`, so a clean family was flagged one time in three)."""
    alone = decide([PartitionEvidence(partition="a", evidence=(probe("loss", 0.02),))])
    assert alone.of("a").rule_id == "combined"
    family = [PartitionEvidence(partition="a", evidence=(probe("loss", 0.02),))]
    family += [PartitionEvidence(partition=f"n{i}", evidence=(probe("loss", 0.5),)) for i in range(4)]
    vs = decide(family)
    a = vs.of("a")
    assert (a.verdict, a.rule_id) == (Verdict.NO_EVIDENCE, "combined_not_adjusted")
    assert "not flagged" in a.rule and vs.flagged == ()
    assert a.combined_p == pytest.approx(0.02) and a.adjusted_p == pytest.approx(0.1)
    assert "over 5 partition(s)" in a.rule
    assert all(vs.of(f"n{i}").verdict is Verdict.NO_EVIDENCE for i in range(4))


def test_holm_step_down_keeps_the_strongest_partitions() -> None:
    family = [
        PartitionEvidence(partition="x16", evidence=(probe("loss", 1e-9),)),
        PartitionEvidence(partition="x4", evidence=(probe("loss", 0.012),)),
        PartitionEvidence(partition="x1", evidence=(probe("loss", 0.03),)),
    ]
    vs = decide(family)
    # sorted 1e-9, 0.012, 0.03 -> 3e-9, 0.024, 0.03: all three at or below 0.05
    assert [v.adjusted_p for v in vs.partitions] == pytest.approx([3e-9, 0.024, 0.03])
    assert [v.verdict for v in vs.partitions] == [Verdict.CONTAMINATED] * 3
    strict = decide(family, VerdictPolicy(alpha=0.025))  # x1: p = 0.03 is above alpha itself
    assert [v.rule_id for v in strict.partitions] == ["combined", "combined", "not_significant"]
    stricter = decide(family, VerdictPolicy(alpha=0.02))  # x4: 0.012 <= alpha < its adjusted 0.024
    assert [v.rule_id for v in stricter.partitions] == [
        "combined",
        "combined_not_adjusted",
        "not_significant",
    ]


def test_partitions_without_a_test_are_not_in_the_family() -> None:
    family = [
        PartitionEvidence(partition="a", evidence=(probe("loss", 0.03),)),
        PartitionEvidence(partition="b", skipped=(Skipped(name="loss", reason="no reference"),)),
    ]
    vs = decide(family)
    assert vs.of("a").adjusted_p == pytest.approx(0.03) and vs.of("a").verdict is Verdict.CONTAMINATED
    assert vs.of("b").adjusted_p is None


@pytest.mark.parametrize(("dirty", "partly"), [(2, 0), (0, 5)])
def test_partial_corpus_overlap_is_suspicious(dirty: int, partly: int) -> None:
    summary = corpus(dirty=dirty, partly=partly)
    pe = PartitionEvidence(
        partition="t", evidence=(probe("loss", 0.5, 0.5), corpus_ev(summary)), corpus=summary
    )
    v = one(pe)
    assert (v.verdict, v.rule_id) == (Verdict.SUSPICIOUS, "corpus_partial")


def test_nothing_significant_is_no_evidence_never_clean() -> None:
    v = one(PartitionEvidence(partition="t", evidence=(probe("loss", 0.4, 0.52), probe("min_k", 0.7, 0.47))))
    assert (v.verdict, v.rule_id) == (Verdict.NO_EVIDENCE, "not_significant")
    assert "> alpha 0.05" in v.rule
    summary = corpus(dirty=0, partly=1)
    clean = one(PartitionEvidence(partition="t", evidence=(corpus_ev(summary),), corpus=summary))
    assert (clean.verdict, clean.rule_id) == (Verdict.NO_EVIDENCE, "not_significant")


def test_only_skipped_probes_is_nothing_testable_and_they_are_listed() -> None:
    skipped = (Skipped(name="loss", reason="no reference partition: scores only, no test"),)
    v = one(PartitionEvidence(partition="t", skipped=skipped))
    assert (v.verdict, v.rule_id) == (Verdict.INCONCLUSIVE, "nothing_testable")
    assert v.skipped == skipped and "no reference partition" in v.rule


def test_skipped_probes_never_count() -> None:
    skipped = (Skipped(name="min_k_pp", reason="model lacks: vocabulary statistics"),)
    with_skip = one(PartitionEvidence(partition="t", evidence=(probe("loss", 0.2),), skipped=skipped))
    without = one(PartitionEvidence(partition="t", evidence=(probe("loss", 0.2),)))
    assert with_skip.combined_p == without.combined_p == pytest.approx(0.2)
    assert with_skip.verdict is without.verdict is Verdict.NO_EVIDENCE
    assert with_skip.skipped == skipped


def test_evidence_is_ordered_by_strength() -> None:
    pe = PartitionEvidence(
        partition="t",
        evidence=(probe("a", 0.3), probe("b", 1e-4), probe("c", 0.02)),
    )
    assert [e.name for e in one(pe).evidence] == ["b", "c", "a"]


def test_holm_combination_within_a_partition() -> None:
    pe = PartitionEvidence(partition="t", evidence=(probe("a", 0.01), probe("b", 0.5), probe("c", 0.9)))
    v = one(pe, VerdictPolicy(combination="holm"))
    assert v.combined_p == pytest.approx(0.03) and "Bonferroni-combined" in v.rule


def test_policy_is_stored_and_duplicates_are_refused() -> None:
    policy = VerdictPolicy(alpha=0.01)
    vs = decide([PartitionEvidence(partition="t", evidence=(probe("loss", 0.02),))], policy)
    assert vs.policy == policy and vs.of("t").rule_id == "not_significant"
    with pytest.raises(ValueError, match="twice"):
        decide([PartitionEvidence(partition="t"), PartitionEvidence(partition="t")])


# -- issue 17: every flagged verdict controlled, the floor after correction, corpus beside the baseline --


def test_a_clean_family_is_flagged_at_most_alpha_of_the_time() -> None:
    """Finding 1, by simulation: 8 clean partitions, 3 independent null probes each (p uniform).
    Today's engine flagged some partition in about 0.34 of such families (`suspicious` on the
    unadjusted p); the family-wise rate must hold for every flagged level. 4,000 families: the
    binomial standard error at 0.05 is 0.0034, so 0.065 is more than 4 of them above."""
    import random

    rng = random.Random(17)
    families = 4000
    flagged = 0
    for _ in range(families):
        family = [
            PartitionEvidence(
                partition=f"p{i}", evidence=tuple(probe(f"probe{j}", rng.random(), 0.5) for j in range(3))
            )
            for i in range(8)
        ]
        flagged += bool(decide(family).flagged)
    assert flagged / families <= 0.065, flagged / families


def test_the_floor_counts_only_for_a_probe_significant_after_correction() -> None:
    """Finding 3, the issue's own case: loss p = 1e-6 with AUROC 0.55, zlib p = 0.04 with AUROC
    0.70, beside two null probes. zlib's corrected p is 4 x 0.04 = 0.16, so its AUROC cannot carry
    the partition: significant, but only through a probe below its floor."""
    pe = PartitionEvidence(
        partition="test",
        evidence=(
            probe("loss", 1e-6, 0.55),
            probe("zlib", 0.04, 0.70),
            probe("min_k", 0.5, 0.5),
            probe("lowercase", 0.7, 0.5),
        ),
    )
    v = one(pe)
    assert (v.verdict, v.rule_id) == (Verdict.SUSPICIOUS, "combined_below_floor"), v.rule
    assert "loss AUROC 0.55 < 0.6" in v.rule and "zlib" not in v.rule.split("below its floor")[1]
    # zlib at p = 0.01 is significant after correction (4 x 0.01 = 0.04): its AUROC counts.
    stronger = PartitionEvidence(
        partition="test",
        evidence=(
            probe("loss", 1e-6, 0.55),
            probe("zlib", 0.01, 0.70),
            probe("min_k", 0.5, 0.5),
            probe("lowercase", 0.7, 0.5),
        ),
    )
    v = one(stronger)
    assert (v.verdict, v.rule_id) == (Verdict.CONTAMINATED, "combined") and "zlib" in v.rule


def test_the_floor_correction_includes_the_holm_factor() -> None:
    # Alone, zlib's 2 x 0.02 = 0.04 passes; among three partitions the Holm factor takes it over.
    evidence = (probe("loss", 1e-8, 0.55), probe("zlib", 0.02, 0.70))
    assert one(PartitionEvidence(partition="a", evidence=evidence)).rule_id == "combined"
    family = [PartitionEvidence(partition="a", evidence=evidence)]
    family += [PartitionEvidence(partition=f"n{i}", evidence=(probe("loss", 0.9, 0.5),)) for i in range(2)]
    assert decide(family).of("a").rule_id == "combined_below_floor"


def test_corpus_evidence_still_decides_beside_an_unfair_reference() -> None:
    """Finding 4, the issue's case: 2 of 40 items dirty in the corpus with an unfair reference was
    `inconclusive`; the corpus needs no reference, so it is `suspicious` on the corpus."""
    summary = corpus(dirty=2, partly=0)
    pe = PartitionEvidence(
        partition="test",
        evidence=(probe("loss", 0.3), corpus_ev(summary)),
        baseline=baseline(0.9, 0.8),
        corpus=summary,
    )
    v = one(pe)
    assert (v.verdict, v.rule_id) == (Verdict.SUSPICIOUS, "corpus_partial"), v.rule
    assert "2 of 40 items are verbatim" in v.rule and "not a fair control" in v.rule
    assert all(not e.used for e in v.evidence if e.uses_reference)
    # With a clean corpus and the same unfair reference, nothing can be said.
    clean = corpus(dirty=0, partly=0)
    pe = PartitionEvidence(
        partition="test",
        evidence=(probe("loss", 0.3), corpus_ev(clean)),
        baseline=baseline(0.9, 0.8),
        corpus=clean,
    )
    assert one(pe).rule_id == "blind_baseline"
