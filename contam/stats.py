"""Partition-level statistics shared by all score probes.

Scores have no absolute scale, so a partition is only ever compared with a reference
partition the model cannot have seen; without one we report a confidence interval for the
mean and state that no test was possible, and never invent a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from contam.results import Interval, PartitionStatistic


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, Interval | None]:
    """Mean with a Student-t interval (None for fewer than two values)."""
    from scipy import stats as sps

    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean()) if x.size else math.nan
    if x.size < 2:
        return mean, None
    sem = float(x.std(ddof=1) / math.sqrt(x.size))
    half = float(sps.t.ppf(0.5 + level / 2, df=x.size - 1)) * sem
    return mean, Interval(low=mean - half, high=mean + half, level=level, method="t")


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(score of a suspect item > score of a reference item), ties counted half."""
    from scipy.stats import rankdata

    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        return math.nan
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (pos.size * neg.size))


def bootstrap_auroc_ci(
    positive: Sequence[float],
    negative: Sequence[float],
    *,
    rounds: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap, resampling each group independently, vectorised over rounds."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    p = pos[rng.integers(0, pos.size, size=(rounds, pos.size))]
    n = neg[rng.integers(0, neg.size, size=(rounds, neg.size))]
    ranks = rankdata(np.concatenate([p, n], axis=1), axis=1)
    u = ranks[:, : pos.size].sum(axis=1) - pos.size * (pos.size + 1) / 2
    values = u / (pos.size * neg.size)
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return Interval(low=float(low), high=float(high), level=level, method=f"bootstrap({rounds})")


def compare_to_reference(
    suspect: Sequence[float],
    reference: Sequence[float],
    *,
    reference_name: str,
    seed: int = 0,
) -> PartitionStatistic:
    """One-sided Mann-Whitney U (suspect scores stochastically larger), AUROC as effect size."""
    from scipy.stats import mannwhitneyu

    if len(suspect) == 0 or len(reference) == 0:
        raise ValueError("compare_to_reference needs items on both sides")
    if not (np.isfinite(suspect).all() and np.isfinite(reference).all()):
        # One NaN makes the p-value, AUROC and CI all NaN; callers drop unscorable items first.
        raise ValueError("compare_to_reference needs finite scores; leave unscorable items out")
    test = mannwhitneyu(suspect, reference, alternative="greater", method="auto")
    return PartitionStatistic(
        name="mann_whitney_u",
        value=float(test.statistic),
        p_value=float(test.pvalue),
        null="suspect and reference scores are exchangeable (the partition was not seen)",
        effect_name="auroc",
        effect=auroc(suspect, reference),
        effect_ci=bootstrap_auroc_ci(suspect, reference, seed=seed),
        reference=reference_name,
        n=len(suspect),
        n_reference=len(reference),
    )


def _roc(positive: Sequence[float], negative: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every threshold "score >= t", from the strictest (nothing flagged) down."""
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("ROC needs scores on both sides")
    thresholds = np.concatenate([[np.inf], np.unique(np.concatenate([pos, neg]))[::-1]])
    tpr = (pos[None, :] >= thresholds[:, None]).mean(axis=1)
    fpr = (neg[None, :] >= thresholds[:, None]).mean(axis=1)
    return fpr, tpr


def tpr_at_fpr(positive: Sequence[float], negative: Sequence[float], fpr: float = 0.05) -> float:
    """The highest true-positive rate of any threshold whose false-positive rate is at most `fpr`."""
    f, t = _roc(positive, negative)
    return float(t[f <= fpr].max())


def fpr_at_tpr(positive: Sequence[float], negative: Sequence[float], tpr: float = 0.95) -> float:
    """The lowest false-positive rate of any threshold that flags at least `tpr` of the positives."""
    f, t = _roc(positive, negative)
    return float(f[t >= tpr].min())
