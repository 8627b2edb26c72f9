"""Verdicts: all evidence about a partition merged into one decision, with the rule that decided.

`decide` is pure (evidence in, verdicts out; the rules are in `contam.verdicts.engine`);
`evidence_of` reduces a scan's probe results and corpus overlap to that evidence; `judge` runs the
blind baselines, `evidence_of` and `decide` on a report. `contam.verdicts.baseline.blind_baseline`
(numpy and scipy, so imported only on use) is the model-free check that the reference is a fair
control.
"""

from contam.verdicts.combine import cauchy_combine, combine, holm_adjust
from contam.verdicts.engine import decide
from contam.verdicts.evidence import evidence_of
from contam.verdicts.judge import judge
from contam.verdicts.table import verdict_table
from contam.verdicts.types import (
    BlindBaseline,
    CorpusSummary,
    Evidence,
    PartitionEvidence,
    PartitionVerdict,
    Skipped,
    Verdict,
    VerdictPolicy,
    VerdictSet,
)

__all__ = [
    "BlindBaseline",
    "CorpusSummary",
    "Evidence",
    "PartitionEvidence",
    "PartitionVerdict",
    "Skipped",
    "Verdict",
    "VerdictPolicy",
    "VerdictSet",
    "cauchy_combine",
    "combine",
    "decide",
    "evidence_of",
    "holm_adjust",
    "judge",
    "verdict_table",
]
