"""The AUROC bootstrap in bounded memory: peak allocation, equality with the unchunked draws, coverage."""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import norm, rankdata

from contam.stats import auroc, bootstrap_auroc_ci, compare_to_reference

MiB = 2**20


def unchunked_bootstrap(pos: np.ndarray, neg: np.ndarray, rounds: int, seed: int) -> tuple[float, float]:
    """The interval as first written: every round's resample and ranks in memory at once."""
    rng = np.random.default_rng(seed)
    p = pos[rng.integers(0, pos.size, size=(rounds, pos.size))]
    n = neg[rng.integers(0, neg.size, size=(rounds, neg.size))]
    ranks = rankdata(np.concatenate([p, n], axis=1), axis=1)
    u = ranks[:, : pos.size].sum(axis=1) - pos.size * (pos.size + 1) / 2
    alpha = (1 - 0.95) / 2
    low, high = np.quantile(u / (pos.size * neg.size), [alpha, 1 - alpha])
    return float(low), float(high)


def peak_bytes(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_bootstrap_peak_memory_does_not_scale_with_rounds() -> None:
    # 2,000 rounds of 2 x 2,000 items held at once is 64 MiB per float64 array, several of them.
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0.3, 1, 2000), rng.normal(0, 1, 2000)
    few = peak_bytes(lambda: bootstrap_auroc_ci(pos, neg, rounds=250))
    many = peak_bytes(lambda: bootstrap_auroc_ci(pos, neg, rounds=2000))
    assert many < 48 * MiB
    assert many < 1.25 * few + 64 * (pos.size + neg.size)  # not 8x for 8x the rounds


def test_compare_to_reference_peak_memory_is_bounded() -> None:
    # The path a scan takes, per probe and partition: n = 4,000 a side would have needed ~1 GB.
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(0.3, 1, 4000).tolist(), rng.normal(0, 1, 4000).tolist()
    assert peak_bytes(lambda: compare_to_reference(pos, neg, reference_name="unseen")) < 48 * MiB


def test_memory_budget_is_respected_and_does_not_change_the_interval() -> None:
    rng = np.random.default_rng(2)
    pos, neg = rng.normal(0.5, 1, 1500), rng.normal(0, 1, 1500)
    small = peak_bytes(lambda: bootstrap_auroc_ci(pos, neg, memory=2 * MiB))
    assert small < 2 * MiB + 256 * (pos.size + neg.size)
    assert bootstrap_auroc_ci(pos, neg, memory=2 * MiB) == bootstrap_auroc_ci(pos, neg)


@pytest.mark.parametrize(
    ("n", "m", "ties", "memory"),
    [(4, 4, False, None), (50, 70, False, None), (120, 90, True, None), (300, 200, True, 64 * 1024),
     (33, 1, False, 4096), (1, 17, True, 1)],
)  # fmt: skip
def test_chunked_bootstrap_equals_the_unchunked_draws(n: int, m: int, ties: bool, memory: int | None) -> None:
    # Same seed, same index draws, same U per round: the interval is the one reported before chunking.
    rng = np.random.default_rng(n * 1000 + m)
    pos, neg = rng.normal(0.4, 1, n), rng.normal(0, 1, m)
    if ties:
        pos, neg = np.round(pos, 1), np.round(neg, 1)
    kwargs = {} if memory is None else {"memory": memory}
    for seed in (0, 7):
        ci = bootstrap_auroc_ci(pos, neg, seed=seed, **kwargs)
        assert (ci.low, ci.high) == unchunked_bootstrap(pos, neg, 2000, seed)
        assert ci.method == "bootstrap(2000)"


def test_bootstrap_refuses_an_empty_side() -> None:
    with pytest.raises(ValueError, match="both sides"):
        bootstrap_auroc_ci([], [1.0])


def test_bootstrap_ci_coverage_on_normal_scores() -> None:
    # Binormal scores, shift d: the true AUROC is Phi(d / sqrt 2). 300 fixed-seed trials, n = m = 60.
    d = 0.8
    truth = float(norm.cdf(d / math.sqrt(2)))
    rng = np.random.default_rng(3)
    hits = 0
    for trial in range(300):
        pos, neg = rng.normal(d, 1, 60), rng.normal(0, 1, 60)
        ci = bootstrap_auroc_ci(pos, neg, rounds=1000, seed=trial)
        hits += ci.low <= truth <= ci.high
        assert ci.low <= auroc(pos, neg) <= ci.high
    assert 0.91 <= hits / 300 <= 0.98
