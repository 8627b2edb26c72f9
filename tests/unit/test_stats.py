"""Partition statistics against values computed by hand or by scipy directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from contam.stats import auroc, bootstrap_auroc_ci, compare_to_reference, mean_ci


def test_auroc_by_hand() -> None:
    assert auroc([3, 4], [1, 2]) == 1.0
    assert auroc([1, 2], [3, 4]) == 0.0
    assert auroc([1, 3], [2, 2]) == 0.5  # one win, one loss
    assert auroc([2], [2]) == 0.5  # a tie counts half
    assert math.isnan(auroc([], [1.0]))


def test_mean_ci_matches_t_interval() -> None:
    x = [1.0, 2.0, 3.0, 4.0]
    mean, ci = mean_ci(x)
    assert mean == 2.5 and ci is not None
    half = sps.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert ci.low == pytest.approx(2.5 - half) and ci.high == pytest.approx(2.5 + half)
    assert mean_ci([1.0])[1] is None


def test_compare_to_reference_is_one_sided() -> None:
    rng = np.random.default_rng(0)
    high, low = rng.normal(1, 1, 50).tolist(), rng.normal(0, 1, 50).tolist()
    up = compare_to_reference(high, low, reference_name="unseen")
    down = compare_to_reference(low, high, reference_name="unseen")
    assert up.p_value is not None and down.p_value is not None
    assert up.p_value < 0.001 < 0.99 < down.p_value
    assert up.p_value == pytest.approx(sps.mannwhitneyu(high, low, alternative="greater").pvalue)
    assert up.effect == pytest.approx(auroc(high, low))
    assert up.effect_ci is not None and up.effect_ci.low < up.effect < up.effect_ci.high


def test_bootstrap_ci_is_deterministic_and_covers() -> None:
    a, b = [0.1, 0.5, 0.9, 0.7], [0.2, 0.3, 0.4, 0.8]
    assert bootstrap_auroc_ci(a, b, seed=3) == bootstrap_auroc_ci(a, b, seed=3)
    ci = bootstrap_auroc_ci(a, b)
    assert 0.0 <= ci.low <= auroc(a, b) <= ci.high <= 1.0


def test_compare_to_reference_refuses_non_finite_scores() -> None:
    # One NaN would make p, AUROC and CI all NaN; the probe must leave unscorable items out.
    with pytest.raises(ValueError, match="finite"):
        compare_to_reference([1.0, math.nan], [0.0, 0.5], reference_name="unseen")
    with pytest.raises(ValueError, match="finite"):
        compare_to_reference([1.0, 2.0], [-math.inf, 0.5], reference_name="unseen")
