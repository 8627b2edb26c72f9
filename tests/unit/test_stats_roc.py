"""Operating points of the ROC against hand-computed values."""

from __future__ import annotations

import pytest

from contam.stats import fpr_at_tpr, tpr_at_fpr


def test_operating_points_by_hand() -> None:
    pos = [0.9, 0.8, 0.7, 0.3]
    neg = [0.85, 0.5, 0.4, 0.2, 0.1]
    # Threshold 0.9: TPR 1/4, FPR 0; at 0.85 one negative is flagged (FPR 0.2).
    assert tpr_at_fpr(pos, neg, 0.05) == 0.25
    assert tpr_at_fpr(pos, neg, 0.2) == 0.75  # threshold 0.7
    # All four positives need threshold 0.3, which flags 0.85, 0.5 and 0.4: FPR 3/5.
    assert fpr_at_tpr(pos, neg, 0.95) == pytest.approx(0.6)
    assert fpr_at_tpr(pos, neg, 0.5) == pytest.approx(0.2)


def test_perfect_and_reversed_separation() -> None:
    assert tpr_at_fpr([2, 3], [0, 1]) == 1.0 and fpr_at_tpr([2, 3], [0, 1]) == 0.0
    assert tpr_at_fpr([0, 1], [2, 3]) == 0.0 and fpr_at_tpr([0, 1], [2, 3]) == 1.0


def test_ties_between_sides_cannot_be_split() -> None:
    assert tpr_at_fpr([1.0, 1.0], [1.0, 0.0], 0.05) == 0.0
    with pytest.raises(ValueError):
        tpr_at_fpr([], [1.0])
