"""p-value combination: the Cauchy combination, Holm's first step and Holm's step-down."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from contam.verdicts.combine import P_CAP, bonferroni_min, cauchy_combine, combine, holm_adjust


def _scipy_cauchy(p_values: list[float]) -> float:
    t = float(np.mean(np.tan((0.5 - np.asarray(p_values)) * np.pi)))
    return float(stats.cauchy.sf(t))


def test_one_p_value_and_equal_p_values_combine_to_themselves() -> None:
    assert cauchy_combine([0.03]) == pytest.approx(0.03, rel=1e-12)
    assert cauchy_combine([0.04, 0.04, 0.04]) == pytest.approx(0.04, rel=1e-12)
    assert cauchy_combine([0.5, 0.5]) == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("ps", [[0.01, 0.5], [0.2, 0.3, 0.9], [1e-4, 0.04, 0.7, 0.95], [0.6, 0.8]])
def test_cauchy_agrees_with_scipys_cauchy_distribution(ps: list[float]) -> None:
    assert cauchy_combine(ps) == pytest.approx(_scipy_cauchy(ps), rel=1e-10)


def test_cauchy_hand_computed() -> None:
    # T = (cot(0.01 pi) + cot(0.5 pi)) / 2 = 31.8205 / 2 = 15.9103; atan(1 / T) = 0.0627692; / pi = 0.019980
    assert cauchy_combine([0.01, 0.5]) == pytest.approx(0.019980, abs=2e-6)


def test_tiny_p_values_keep_their_digits() -> None:
    # tan((0.5 - p) pi) rounds 0.5 - p to 0.5 below 1e-17; cot(p pi) ~ 1 / (p pi) does not
    assert cauchy_combine([1e-20, 1e-20]) == pytest.approx(1e-20, rel=1e-9)
    assert cauchy_combine([1e-20, 0.5]) == pytest.approx(2e-20, rel=1e-9)
    assert cauchy_combine([1e-300]) == pytest.approx(1e-300, rel=1e-9)
    assert cauchy_combine([0.0, 0.3]) == 0.0


def test_p_of_one_does_not_veto_strong_evidence() -> None:
    assert cauchy_combine([1.0]) == pytest.approx(P_CAP)
    combined = cauchy_combine([1e-8, 1.0])
    assert 0 < combined < 3e-8  # about 2e-8: the capped term is -31.8 against 3.2e7


def test_bad_p_values_are_refused() -> None:
    for bad in ([], [1.2], [-0.1], [math.nan]):
        with pytest.raises(ValueError):
            cauchy_combine(bad)
    with pytest.raises(ValueError, match="unknown combination"):
        combine([0.1], "fisher")


def test_bonferroni_on_the_smallest() -> None:
    assert bonferroni_min([0.01, 0.2, 0.5]) == pytest.approx(0.03)
    assert bonferroni_min([0.6, 0.9]) == 1.0
    assert combine([0.01, 0.2], "holm") == pytest.approx(0.02)


def test_holm_step_down_hand_computed() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x = 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.6]) == [1.0, 1.0]
    assert holm_adjust([]) == []
    assert holm_adjust([0.02]) == [0.02]


def test_holm_is_monotone_and_never_below_the_raw_p() -> None:
    rng = np.random.default_rng(3)
    ps = rng.random(30).tolist()
    adjusted = holm_adjust(ps)
    order = np.argsort(ps)
    assert all(np.diff(np.asarray(adjusted)[order]) >= 0)
    assert all(a >= p for a, p in zip(adjusted, ps, strict=True))


def _rejection_rate(draws: np.ndarray, alpha: float) -> float:
    return float(np.mean([cauchy_combine(row.tolist()) <= alpha for row in draws]))


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_cauchy_size_is_alpha_for_independent_and_for_identical_p_values(alpha: float) -> None:
    """The mean of standard Cauchy variables is standard Cauchy when they are independent and when
    they are all equal, so both reject at alpha (up to the cap's < 4e-4); binomial tolerance 4 se."""
    reps, probes = 20_000, 5
    rng = np.random.default_rng(20201)
    tolerance = 4 * math.sqrt(alpha * (1 - alpha) / reps)
    independent = rng.random((reps, probes))
    identical = np.repeat(rng.random((reps, 1)), probes, axis=1)
    assert abs(_rejection_rate(independent, alpha) - alpha) < tolerance
    assert abs(_rejection_rate(identical, alpha) - alpha) < tolerance


def test_holm_controls_the_family_wise_error() -> None:
    """Ten null partitions: the chance that any is rejected at 0.05 stays at or below 0.05."""
    reps, partitions, alpha = 5_000, 10, 0.05
    rng = np.random.default_rng(1979)
    hits = sum(min(holm_adjust(rng.random(partitions).tolist())) <= alpha for _ in range(reps))
    assert hits / reps <= alpha + 4 * math.sqrt(alpha * (1 - alpha) / reps)
