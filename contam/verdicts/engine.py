"""`decide`: per-partition evidence in, one verdict per partition out. Pure: no I/O, no model.

A verdict is `contaminated`, `suspicious`, `no_evidence` (never "clean": a probe that finds nothing
is absence of evidence) or `inconclusive` (the test itself is not valid). The first rule that
applies decides, and its id and a one-sentence account with the numbers go into the verdict.

Rules, in order
---------------
1. ``corpus_direct`` -> contaminated. At least ``corpus_share`` (10%) of the partition's items are
   verbatim in the corpus: matched n-grams cover ``dirty_coverage`` (80%) of an item's words and one
   contiguous span is ``min_span`` (13) words or longer. Decisive on its own, whatever the probes say.
2. ``blind_baseline`` -> inconclusive. A model-free classifier (logistic regression on hashed
   character 2-4-grams and length, 5-fold cross-validated; `contam.verdicts.baseline`) tells the
   partition from its reference with an AUROC whose 95% CI lies above ``baseline_bound`` (0.6). Every
   reference-based probe is set aside (``used=False``): the reference is not a fair control, and any
   likelihood probe would separate the two with no contamination at all. Only what depends on the
   reference is set aside: the verdict is inconclusive unless the reference-free evidence left
   (exchangeability) passes rule 4, or the corpus evidence, which needs no
   reference, decides (rules 1 and 7).
3. Combination. The used probes' p-values are combined (``combination``: Bonferroni on the smallest,
   Holm's first step, by default; or the Cauchy combination of Liu & Xie 2020; both valid under any
   dependence between probes) into ``combined_p``; Holm's step-down (Holm 1979) over every partition
   of the scan with a combined p gives ``adjusted_p``, so the family-wise error over the scan's
   partitions is at most ``alpha`` (0.05). The Cauchy combination is exact when the probes are
   independent or identical and accurate in the tail; at alpha 0.05 under moderate positive
   dependence it is slightly liberal (measured on three null Mann-Whitney probes, 20,000 draws:
   size 0.051 at score correlation 0.9, 0.056 at 0.5; Bonferroni 0.027 and 0.043). A verdict's error
   rate is the product's promise, so Bonferroni is the default; ``--combination cauchy`` buys power
   when several weak probes agree.
4. ``combined`` -> contaminated: ``adjusted_p <= alpha`` and at least one used probe that is
   significant after the same correction has an effect at or above its floor (or a test without
   an effect size). A probe's corrected p is ``adjusted_p * p / min p`` over the partition's probes:
   for Bonferroni exactly its own p times the probes and the Holm factor; the strongest probe's is
   the partition's own. So a probe's raw ``p <= alpha`` is not enough for its effect to count.
5. ``combined_below_floor`` -> suspicious: significant after adjustment, but every probe that is
   significant after correction has an effect below its floor (a large partition can make a
   negligible shift significant).
6. ``combined_not_adjusted`` -> no_evidence: ``combined_p <= alpha`` but not after Holm's
   adjustment. Said in the rule, never flagged: only what holds after adjustment over the
   partitions is flagged, so a clean family is flagged by its probes (``contaminated`` or
   ``suspicious``) with probability at most ``alpha``.
7. ``corpus_partial`` -> suspicious: some items are dirty (fewer than ``corpus_share``), or at least
   ``corpus_share`` of the items are partly covered.
8. ``not_significant`` -> no_evidence: there was a test (a probe or the corpus) and nothing above held.
9. ``nothing_testable`` -> inconclusive: no used probe test and no corpus evidence (skipped probes,
   or no reference for probes that need one). Skipped probes never count either way.

Thresholds and where they come from
-----------------------------------
- ``alpha`` 0.05: the conventional level; the user's ``--alpha``.
- ``dirty_coverage`` 0.8 and ``clean_coverage`` 0.2: the Llama 2 report's contamination analysis
  (Touvron et al. 2023, appendix A.6: "dirty" above 80% of tokens contaminated, "clean" below 20%),
  reused by infini-gram-mini's benchmark contamination monitor.
- ``min_span`` 13 words: the 13-gram of GPT-3's decontamination (Brown et al. 2020, appendix C), the
  index's default n; Llama 2 required matched spans longer than 10 tokens.
- ``corpus_share`` 0.1: this project's choice (no paper fixes a partition-level share): one item in
  ten verbatim in the corpus is beyond chance collisions of 13-word spans.
- Effect floors, this project's choice at conventional "small effect" sizes: AUROC 0.6 (a Cohen's d
  of about 0.36), matched-pairs rank-biserial r 0.1 (Cohen's small r), rate difference 0.02.
- ``baseline_bound`` 0.6: model-free "blind" classifiers separate the members and non-members of
  published MIA benchmarks (Duan et al. 2024, "Do membership inference attacks work on large
  language models?"; Das et al. 2024, "Blind baselines beat membership inference attacks for
  foundation models"); a CI entirely above 0.6 means the split is reliably not random.
"""

from __future__ import annotations

from collections.abc import Sequence

from contam.verdicts.combine import combine, holm_adjust
from contam.verdicts.evidence import effect_label, fmt_p
from contam.verdicts.types import (
    DEFAULT_POLICY,
    Evidence,
    PartitionEvidence,
    PartitionVerdict,
    Verdict,
    VerdictPolicy,
    VerdictSet,
)

_METHOD = {"cauchy": "Cauchy-combined", "holm": "Bonferroni-combined"}


def _set_aside(evidence: Sequence[Evidence], unfair: bool) -> tuple[Evidence, ...]:
    """Reference-based evidence is not used when the reference is not a fair control."""
    if not unfair:
        return tuple(evidence)
    return tuple(e.model_copy(update={"used": False}) if e.uses_reference else e for e in evidence)


def _tested(evidence: Sequence[Evidence]) -> list[Evidence]:
    return [e for e in evidence if e.used and e.source == "probe" and e.p_value is not None]


def _order(evidence: Sequence[Evidence], corpus_first: bool) -> tuple[Evidence, ...]:
    def key(e: Evidence) -> tuple[int, int, float]:
        corpus = 0 if corpus_first and e.source == "corpus" else 1
        return (corpus, 0 if e.used else 1, e.p_value if e.p_value is not None else 2.0)

    return tuple(sorted(evidence, key=key))


def _combined_words(policy: VerdictPolicy, tested: Sequence[Evidence], combined: float) -> str:
    names = ", ".join(e.name for e in tested)
    method = _METHOD.get(policy.combination, policy.combination)
    return f"{method} p = {fmt_p(combined)} over {len(tested)} probe(s) ({names})"


def decide(partitions: Sequence[PartitionEvidence], policy: VerdictPolicy = DEFAULT_POLICY) -> VerdictSet:
    """One verdict per partition, in the order given; the rules are in this module's docstring."""
    names = [pe.partition for pe in partitions]
    if len(set(names)) != len(names):
        raise ValueError(f"a partition appears twice: {names}")
    evidence = [
        _set_aside(pe.evidence, pe.baseline is not None and pe.baseline.distinguishes) for pe in partitions
    ]
    tested = [_tested(ev) for ev in evidence]
    combined: list[float | None] = [
        combine([e.p_value for e in t if e.p_value is not None], policy.combination) if t else None
        for t in tested
    ]
    family = [i for i, c in enumerate(combined) if c is not None]
    adjusted: list[float | None] = [None] * len(partitions)
    for i, adj in zip(family, holm_adjust([c for c in combined if c is not None]), strict=True):
        adjusted[i] = adj
    m = len(family)

    verdicts = []
    for i, pe in enumerate(partitions):
        verdict, rule_id, rule = _rule(pe, evidence[i], tested[i], combined[i], adjusted[i], m, policy)
        verdicts.append(
            PartitionVerdict(
                partition=pe.partition,
                verdict=verdict,
                rule=rule,
                rule_id=rule_id,
                combined_p=combined[i],
                adjusted_p=adjusted[i],
                evidence=_order(evidence[i], corpus_first=rule_id == "corpus_direct"),
                skipped=pe.skipped,
                baseline=pe.baseline,
                corpus=pe.corpus,
            )
        )
    return VerdictSet(policy=policy, partitions=tuple(verdicts))


def _rule(
    pe: PartitionEvidence,
    evidence: Sequence[Evidence],
    tested: Sequence[Evidence],
    combined: float | None,
    adjusted: float | None,
    family: int,
    policy: VerdictPolicy,
) -> tuple[Verdict, str, str]:
    alpha = policy.alpha
    corpus = pe.corpus
    if corpus is not None and corpus.items and corpus.dirty_share >= policy.corpus_share:
        return (
            Verdict.CONTAMINATED,
            "corpus_direct",
            f"{corpus.dirty} of {corpus.items} items ({corpus.dirty_share:.0%}) are verbatim in the corpus "
            f"(>= {policy.dirty_coverage:.0%} of their words in matched n-grams and a span >= "
            f"{policy.min_span} words), at or above the {policy.corpus_share:.0%} share that decides "
            "on its own",
        )
    significant = adjusted is not None and adjusted <= alpha
    baseline = pe.baseline
    set_aside = [e for e in evidence if not e.used and e.uses_reference]
    partial = _corpus_partial(pe, policy)
    if baseline is not None and baseline.distinguishes and set_aside and not significant:
        ci = baseline.auroc_ci
        unfair = (
            f"a model-free classifier tells {pe.partition} from the reference with AUROC "
            f"{baseline.auroc:.2f} [{ci.low:.2f}, {ci.high:.2f}] > {baseline.bound:g}: the reference "
            f"is not a fair control; no reference-based probe is used ({len(set_aside)} set aside)"
        )
        if partial is not None:  # the corpus needs no reference: its evidence still decides
            return Verdict.SUSPICIOUS, "corpus_partial", f"{partial}; {unfair}"
        return Verdict.INCONCLUSIVE, "blind_baseline", unfair
    if combined is not None and adjusted is not None:
        words = _combined_words(policy, tested, combined)
        holm = f"Holm-adjusted over {family} partition(s) p = {fmt_p(adjusted)}"
        if significant:
            strong = _significant_after_correction(tested, adjusted, alpha)
            meeting = [e for e in strong if e.meets_floor is not False]
            if meeting:
                best = min(meeting, key=lambda e: e.p_value if e.p_value is not None else 1.0)
                return (
                    Verdict.CONTAMINATED,
                    "combined",
                    f"{words}; {holm} <= alpha {alpha:g}; {_effect_words(best)}",
                )
            floors = "; ".join(
                f"{e.name} {effect_label(e.effect_name or 'effect')} {e.effect:.2f} < {e.effect_floor:g}"
                for e in strong
                if e.effect is not None and e.effect_floor is not None
            )
            return (
                Verdict.SUSPICIOUS,
                "combined_below_floor",
                f"{words}; {holm} <= alpha {alpha:g}, but every probe significant after correction "
                f"has an effect below its floor ({floors})",
            )
        if combined <= alpha and partial is None:
            return (
                Verdict.NO_EVIDENCE,
                "combined_not_adjusted",
                f"{words} <= alpha {alpha:g}, but {holm} > alpha: not flagged (only what holds "
                "after adjustment over the partitions is)",
            )
    if partial is not None:
        return Verdict.SUSPICIOUS, "corpus_partial", partial
    if combined is not None and adjusted is not None:
        return (
            Verdict.NO_EVIDENCE,
            "not_significant",
            f"{_combined_words(policy, tested, combined)}, Holm-adjusted over {family} partition(s) "
            f"p = {fmt_p(adjusted)} > alpha {alpha:g}"
            + (f"; corpus: {corpus.dirty} of {corpus.items} items verbatim" if corpus is not None else ""),
        )
    if corpus is not None and corpus.items:
        return (
            Verdict.NO_EVIDENCE,
            "not_significant",
            f"no probe test; corpus: none of {corpus.items} items verbatim and {corpus.partly} "
            f"partly covered (below the {policy.corpus_share:.0%} share)",
        )
    reasons = (
        "; ".join(f"{s.name}: {s.reason}" for s in pe.skipped) or "no probe evidence and no corpus overlap"
    )
    return Verdict.INCONCLUSIVE, "nothing_testable", f"nothing could be tested ({reasons})"


def _significant_after_correction(
    tested: Sequence[Evidence], adjusted: float, alpha: float
) -> list[Evidence]:
    """The probes significant after the correction that made the partition significant: each
    probe's p scaled as the strongest probe's was to reach `adjusted` (for Bonferroni, its own p
    times the number of probes and the Holm factor)."""
    ps = [e.p_value for e in tested if e.p_value is not None]
    smallest = min(ps) if ps else 0.0
    if smallest <= 0.0:  # p underflowed to 0: only the probes at 0 are as strong as the partition
        return [e for e in tested if e.p_value == 0.0]
    return [e for e in tested if e.p_value is not None and adjusted * e.p_value / smallest <= alpha]


def _corpus_partial(pe: PartitionEvidence, policy: VerdictPolicy) -> str | None:
    """Why the corpus makes the partition suspicious (some items dirty, or partly covered), or None."""
    corpus = pe.corpus
    if corpus is None or not corpus.items:
        return None
    if corpus.dirty == 0 and corpus.partly / corpus.items < policy.corpus_share:
        return None
    return (
        f"{corpus.dirty} of {corpus.items} items are verbatim in the corpus (below the "
        f"{policy.corpus_share:.0%} share that decides) and {corpus.partly} partly covered "
        f"({corpus.partly / corpus.items:.0%}; {policy.clean_coverage:.0%}-"
        f"{policy.dirty_coverage:.0%} of their words)"
    )


def _effect_words(e: Evidence) -> str:
    p = fmt_p(e.p_value) if e.p_value is not None else "-"
    if e.effect is None or e.effect_floor is None:
        return f"{e.name} p = {p} (a test without an effect floor)"
    label = effect_label(e.effect_name or "effect")
    return f"{e.name} p = {p} with {label} {e.effect:.2f} >= its floor {e.effect_floor:g}"
