"""The generation probes' partition statistics: paired Wilcoxon, Wilson interval, Fisher's test."""

from __future__ import annotations

import pytest

from contam.stats import paired_greater, rate_greater, wilson_interval


def test_paired_test_sees_a_consistent_gain_that_an_unpaired_view_would_blur() -> None:
    general = [0.1 * i for i in range(20)]
    guided = [g + 0.05 for g in general]  # every pair gains a little; the groups overlap widely
    st = paired_greater(guided, general)
    assert st.name == "wilcoxon_signed_rank" and st.p_value is not None and st.p_value < 1e-4
    assert st.effect == pytest.approx(1.0) and st.n == 20


def test_paired_test_without_differences_is_no_evidence() -> None:
    st = paired_greater([0.5, 0.2, 0.9], [0.5, 0.2, 0.9])
    assert st.p_value == 1.0 and st.effect == 0.0
    worse = paired_greater([0.1] * 10, [0.9] * 10)
    assert worse.p_value is not None and worse.p_value > 0.99 and worse.effect == pytest.approx(-1.0)


def test_paired_test_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        paired_greater([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        paired_greater([float("nan")], [1.0])


def test_wilson_interval_matches_the_closed_form_and_stays_in_bounds() -> None:
    ci = wilson_interval(0, 20)
    assert ci.low == 0.0 and 0.15 < ci.high < 0.17 and ci.method == "wilson"  # 0.161 for 0/20
    mid = wilson_interval(10, 20)
    assert mid.low == pytest.approx(0.2993, abs=1e-3) and mid.high == pytest.approx(0.7007, abs=1e-3)
    assert wilson_interval(20, 20).high == 1.0


def test_fisher_test_is_one_sided_toward_a_higher_rate() -> None:
    up = rate_greater(9, 10, 1, 10, reference_name="unseen", what="exact matches")
    down = rate_greater(1, 10, 9, 10, reference_name="unseen", what="exact matches")
    assert up.p_value is not None and up.p_value < 0.01 and up.effect == pytest.approx(0.8)
    assert down.p_value is not None and down.p_value > 0.99 and up.reference == "unseen"
