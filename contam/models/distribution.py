"""Per-position statistics of log p over the next-token distribution (what Min-K%++ needs).

mean = sum_z p(z) log p(z) and std = sqrt(sum_z p(z) log p(z)^2 - mean^2) (Zhang et al. 2024).
Exact when every token's log-prob is known; over HTTP only the top-k are, so `approx_top_k`
weights the returned log-probs by their probabilities renormalised over those k, and says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def stats_from_logprobs(logprobs: Iterable[float], *, renormalise: bool) -> tuple[float, float]:
    """(mean, std) of log p under p; with `renormalise`, p is rescaled to sum to one over the given ones."""
    values = [lp for lp in logprobs if lp != -math.inf]
    if not values:
        return float("nan"), float("nan")
    top = max(values)
    weights = [math.exp(lp - top) for lp in values]
    total = sum(weights) if renormalise else math.exp(-top)
    probs = [w / total for w in weights]
    mean = sum(p * lp for p, lp in zip(probs, values, strict=True))
    second = sum(p * lp * lp for p, lp in zip(probs, values, strict=True))
    return mean, math.sqrt(max(second - mean * mean, 0.0))
