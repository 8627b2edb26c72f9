"""The verdict engine's values: what goes in (evidence per partition) and what comes out.

Frozen pydantic models, because they cross boundaries: a `PartitionVerdict` is stored in the
`ScanReport`, rendered by every report format and returned by the REST service.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contam.results import Interval


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Verdict(StrEnum):
    """Never "clean": a probe that finds nothing is absence of evidence, not evidence of absence."""

    CONTAMINATED = "contaminated"
    SUSPICIOUS = "suspicious"
    NO_EVIDENCE = "no_evidence"
    INCONCLUSIVE = "inconclusive"  # the test itself is not valid (unfair reference, nothing testable)


class VerdictPolicy(_Frozen):
    """Every threshold a verdict depends on; stored with the verdicts, so a reader can check them."""

    alpha: float = Field(default=0.05, gt=0, lt=1, description="family-wise error over a scan's partitions")
    combination: Literal["cauchy", "holm"] = Field(
        default="holm",
        description="how a partition's probe p-values become one: 'holm' (Bonferroni on the smallest, "
        "Holm's first step: exactly valid under any dependence between probes) or 'cauchy' (Liu & Xie "
        "2020: more powerful when several probes carry signal, slightly liberal at 0.05 under dependence)",
    )
    auroc_floor: float = Field(
        default=0.6, description="an AUROC effect must reach this to count as contamination, not a shift"
    )
    rank_biserial_floor: float = Field(default=0.1, description="floor of a paired (guided) effect")
    rate_difference_floor: float = Field(
        default=0.02, description="floor of a rate (TS-Guessing, CDD) effect"
    )
    dirty_coverage: float = Field(
        default=0.8,
        description="an item is verbatim in the corpus when matched n-grams cover this share of its "
        "words (the Llama 2 report's and infini-gram-mini's 'dirty': 80% of tokens)",
    )
    clean_coverage: float = Field(
        default=0.2, description="below this share of covered words an item counts as clean (ibid.: 20%)"
    )
    min_span: int = Field(
        default=13, description="a dirty item also needs one verbatim span of at least this many words"
    )
    corpus_share: float = Field(
        default=0.1,
        description="share of a partition's items that must be dirty for corpus evidence alone to decide",
    )
    baseline_bound: float = Field(
        default=0.6,
        description="a model-free classifier whose AUROC CI lies above this tells the partition from its "
        "reference without any model: the reference is not a fair control",
    )


DEFAULT_POLICY = VerdictPolicy()


class Evidence(_Frozen):
    """One piece of evidence about one partition: a probe's test, or the corpus overlap."""

    source: str = Field(description="'probe' or 'corpus'")
    name: str = Field(description="the probe's name, or 'corpus_overlap'")
    statistic: str | None = Field(default=None, description="the test, e.g. 'mann_whitney_u'")
    p_value: float | None = None
    effect_name: str | None = None
    effect: float | None = None
    effect_ci: Interval | None = None
    effect_floor: float | None = Field(default=None, description="the floor this effect is held to, if any")
    meets_floor: bool | None = Field(default=None, description="None when the effect has no floor")
    uses_reference: bool = Field(description="whether the test compares against the reference partition")
    used: bool = Field(default=True, description="False when the rule set it aside (e.g. unfair reference)")
    n: int = 0
    n_reference: int | None = None
    summary: str = Field(description="one line a reader can check, with the numbers")


class Skipped(_Frozen):
    """A probe that gave no test of this partition, with why; it never counts either way."""

    name: str
    reason: str


class BlindBaseline(_Frozen):
    """A model-free classifier telling the partition's items from the reference's (texts only)."""

    method: str = Field(description="e.g. 'logistic regression on char 2-4-grams + log length, 5-fold CV'")
    auroc: float = Field(description="cross-validated (out-of-fold) AUROC, partition vs reference")
    auroc_ci: Interval
    n: int
    n_reference: int
    bound: float = Field(description="the policy's baseline_bound at the time")
    distinguishes: bool = Field(description="auroc_ci.low > bound: the reference is not a fair control")


class CorpusSummary(_Frozen):
    """The corpus overlap of one partition, reduced to the counts the rule reads."""

    items: int
    dirty: int = Field(description="items with coverage >= dirty_coverage and a span >= min_span")
    partly: int = Field(description="items between clean_coverage and dirty, or dirty by coverage only")
    clean: int
    dirty_share: float
    longest_span: int = Field(description="longest verbatim span over the partition, in words")
    index: str = Field(description="the index fingerprint, in words (n, normaliser, hash, seed)")


class PartitionEvidence(_Frozen):
    """What `decide` reads for one partition. Built from a scan by `contam.verdicts.evidence_of`."""

    partition: str
    evidence: tuple[Evidence, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    baseline: BlindBaseline | None = None
    corpus: CorpusSummary | None = None


class PartitionVerdict(_Frozen):
    partition: str
    verdict: Verdict
    rule: str = Field(description="the rule that decided, in one sentence with its numbers")
    rule_id: str = Field(
        description="machine-readable rule: corpus_direct, blind_baseline, combined, combined_below_floor, "
        "combined_not_adjusted, corpus_partial, not_significant, nothing_testable"
    )
    combined_p: float | None = Field(default=None, description="the partition's probes combined")
    adjusted_p: float | None = Field(default=None, description="combined_p after Holm over the partitions")
    evidence: tuple[Evidence, ...] = Field(default=(), description="ordered by strength, strongest first")
    skipped: tuple[Skipped, ...] = ()
    baseline: BlindBaseline | None = None
    corpus: CorpusSummary | None = None


class VerdictSet(_Frozen):
    """The verdicts of one scan, with the policy they were decided under."""

    policy: VerdictPolicy
    partitions: tuple[PartitionVerdict, ...]

    def of(self, partition: str) -> PartitionVerdict:
        for verdict in self.partitions:
            if verdict.partition == partition:
                return verdict
        raise KeyError(partition)

    @property
    def flagged(self) -> tuple[PartitionVerdict, ...]:
        return tuple(v for v in self.partitions if v.verdict in (Verdict.CONTAMINATED, Verdict.SUSPICIOUS))
