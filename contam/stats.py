"""Partition-level statistics shared by all score probes.

Scores have no absolute scale, so a partition is only ever compared with a reference
partition the model cannot have seen; without one we report a confidence interval for the
mean and state that no test was possible, and never invent a threshold.
"""

from __future__ import annotations

import math
import sys
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


# Working memory for one chunk of bootstrap rounds: a scan runs one bootstrap per probe and
# partition at once, so each must cost a fixed amount, not rounds x (n + m) floats.
BOOTSTRAP_MEMORY = 8 * 2**20
# Peak bytes of one round per item of n, m and distinct values: int64 draws and codes, then the
# histogram of the negatives' codes and its cumsum (measured with tracemalloc).
_BYTES_PER_ROUND_ITEM = 16


def bootstrap_auroc_ci(
    positive: Sequence[float],
    negative: Sequence[float],
    *,
    rounds: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    memory: int = BOOTSTRAP_MEMORY,
) -> Interval:
    """Percentile bootstrap, resampling each group independently, in chunks of rounds.

    Each chunk holds as many rounds as fit in `memory` bytes (at least one), so the peak is about
    `memory` plus O(n + m) whatever `rounds`. The indices drawn are those of one (rounds, n) array
    and then one (rounds, m) array from `seed`, so the interval does not depend on `memory`.
    """
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("bootstrap_auroc_ci needs scores on both sides")
    # U counts by value code, not by ranking each resample: a resampled positive with code k wins
    # against every resampled negative below k and ties with those at k.
    uniques, codes = np.unique(np.concatenate([pos, neg]), return_inverse=True)
    pos_codes, neg_codes, k = codes[: pos.size], codes[pos.size :], uniques.size
    per_round = _BYTES_PER_ROUND_ITEM * (pos.size + neg.size + k)
    size = max(1, min(rounds, memory // per_round))
    chunks = [(start, min(rounds, start + size)) for start in range(0, rounds, size)]
    pos_rng = neg_rng = np.random.default_rng(seed)
    if len(chunks) > 1:
        # The negatives' indices come after all the positives' in the stream: skip past those.
        pos_rng = np.random.default_rng(seed)
        for start, stop in chunks:
            neg_rng.integers(0, pos.size, size=(stop - start, pos.size))
    values = np.empty(rounds, dtype=np.float64)
    for start, stop in chunks:
        count = stop - start
        drawn_pos = pos_codes[pos_rng.integers(0, pos.size, size=(count, pos.size))]
        drawn_neg = neg_codes[neg_rng.integers(0, neg.size, size=(count, neg.size))]
        drawn_neg += (np.arange(count) * k)[:, None]  # one row of k bins per round
        at = np.bincount(drawn_neg.ravel(), minlength=count * k).reshape(count, k)
        del drawn_neg
        twice_wins = np.cumsum(at, axis=1)  # negatives at or below each code
        twice_wins *= 2
        twice_wins -= at  # 2 x below + at: two per win, one per tie, so U stays an exact integer
        del at
        twice_u = np.take_along_axis(twice_wins, drawn_pos, axis=1).sum(axis=1)
        values[start:stop] = twice_u / (2 * pos.size * neg.size)
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


# -- statistics of the generation probes -------------------------------------------------------


def paired_greater(
    treated: Sequence[float], control: Sequence[float], *, name: str = "guided - general"
) -> PartitionStatistic:
    """One-sided Wilcoxon signed-rank test that `treated` exceeds `control`, pair by pair.

    The effect is the matched-pairs rank-biserial correlation r in [-1, 1] (Kerby 2014): the share
    of the ranked differences favouring `treated` minus the share against; zero differences are
    dropped (Wilcoxon's "wilcox" zero method), so ties say nothing either way. With no non-zero
    difference there is no evidence: p = 1.
    """
    from scipy.stats import rankdata, wilcoxon

    t = np.asarray(treated, dtype=np.float64)
    c = np.asarray(control, dtype=np.float64)
    if t.shape != c.shape or t.ndim != 1 or t.size == 0:
        raise ValueError("paired_greater needs two equally long, non-empty sequences")
    if not (np.isfinite(t).all() and np.isfinite(c).all()):
        raise ValueError("paired_greater needs finite values; leave unscorable pairs out")
    d = t - c
    nonzero = d[d != 0]
    null = f"{name} differences are symmetric about zero (the partition was not seen)"
    if nonzero.size == 0:
        return PartitionStatistic(
            name="wilcoxon_signed_rank", value=0.0, p_value=1.0, null=null,
            effect_name="rank_biserial", effect=0.0, n=int(d.size),
        )  # fmt: skip
    test = wilcoxon(nonzero, alternative="greater", zero_method="wilcox")
    ranks = rankdata(np.abs(nonzero))
    effect = float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())
    return PartitionStatistic(
        name="wilcoxon_signed_rank",
        value=float(test.statistic),
        p_value=float(test.pvalue),
        null=null,
        effect_name="rank_biserial",
        effect=effect,
        n=int(d.size),
    )


def wilson_interval(successes: int, n: int, level: float = 0.95) -> Interval:
    """Wilson score interval for a binomial rate (sound at rates near 0 or 1, unlike Wald's)."""
    from scipy.stats import norm

    if n <= 0 or not 0 <= successes <= n:
        raise ValueError("wilson_interval needs 0 <= successes <= n and n > 0")
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(low=max(0.0, centre - half), high=min(1.0, centre + half), level=level, method="wilson")


def rate_greater(
    hits: int, n: int, reference_hits: int, reference_n: int, *, reference_name: str, what: str
) -> PartitionStatistic:
    """One-sided Fisher exact test that a partition's rate of `what` exceeds the reference's; the
    effect is the difference of the two rates."""
    from scipy.stats import fisher_exact

    if n <= 0 or reference_n <= 0:
        raise ValueError("rate_greater needs items on both sides")
    table = [[hits, n - hits], [reference_hits, reference_n - reference_hits]]
    odds, p = fisher_exact(table, alternative="greater")
    return PartitionStatistic(
        name="fisher_exact",
        value=float(odds) if math.isfinite(odds) else sys.float_info.max,  # JSON has no inf
        p_value=float(p),
        null=f"the rate of {what} is no higher than in the reference (the partition was not seen)",
        effect_name="rate_difference",
        effect=hits / n - reference_hits / reference_n,
        reference=reference_name,
        n=n,
        n_reference=reference_n,
    )
