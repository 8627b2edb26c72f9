"""Combining p-values: several probes of one partition into one, and partitions into a family.

Both combinations stay valid whatever the dependence between the probes (they all read the same
model on the same items, so they are far from independent):

- Cauchy combination (Liu & Xie 2020, "Cauchy combination test: a powerful test with analytic
  p-value calculation under arbitrary dependency structures", JASA 115:393). With equal weights,
  T = mean(tan((0.5 - p_i) * pi)); under the null T is (asymptotically, in the tail) standard
  Cauchy for any dependence, so the combined p is 0.5 - arctan(T) / pi.
- Bonferroni on the smallest p-value (Holm's first step): min(1, m * min p).

Across partitions, Holm's step-down (Holm 1979) controls the family-wise error at alpha.
Pure functions of floats, no numpy, so `import contam.verdicts` stays light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# Below this, tan((0.5 - p) * pi) loses every digit to the rounding of 0.5 - p; cot(p * pi) is
# 1 / (p * pi) to double precision there (the next term is p * pi / 3).
TINY_P = 1e-15
# A p-value of exactly 1 (e.g. no hit on either side of a Fisher test) is tan(-pi/2) = -inf and
# would veto every other probe. Counting p above this as this raises the size of a 0.05 test on
# independent p-values by 6e-5 with 2 probes (numerical integration) and 4e-4 with 5 (4e7 draws):
# it matters only when one term is below tan(-0.49 pi) = -31.8 and another far in the upper tail.
P_CAP = 0.99

METHODS = ("cauchy", "holm")


def _check(p_values: Sequence[float]) -> None:
    if not p_values:
        raise ValueError("no p-values to combine")
    for p in p_values:
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise ValueError(f"p-value {p!r} is not in [0, 1]")


def cauchy_term(p: float) -> float:
    """tan((0.5 - p) * pi), exact for tiny p, finite for p = 1 (see P_CAP); +inf for p = 0."""
    if p == 0.0:
        return math.inf
    p = min(p, P_CAP)
    if p < TINY_P:
        return 1.0 / (p * math.pi)
    return 1.0 / math.tan(p * math.pi)  # = tan((0.5 - p) * pi), without the rounding of 0.5 - p


def cauchy_sf(t: float) -> float:
    """P(C > t) for a standard Cauchy C, without cancellation for large t."""
    if t == math.inf:
        return 0.0
    if t > 0:
        return math.atan(1.0 / t) / math.pi  # = 0.5 - atan(t) / pi
    return 0.5 - math.atan(t) / math.pi


def cauchy_combine(p_values: Sequence[float]) -> float:
    """Equal-weight Cauchy combination of p-values (Liu & Xie 2020)."""
    _check(p_values)
    terms = [cauchy_term(p) for p in p_values]
    if math.inf in terms:
        return 0.0
    return min(1.0, max(0.0, cauchy_sf(math.fsum(terms) / len(terms))))


def bonferroni_min(p_values: Sequence[float]) -> float:
    """Holm's first step: the smallest p-value times the number of tests, capped at 1."""
    _check(p_values)
    return min(1.0, len(p_values) * min(p_values))


def combine(p_values: Sequence[float], method: str = "cauchy") -> float:
    if method == "cauchy":
        return cauchy_combine(p_values)
    if method == "holm":
        return bonferroni_min(p_values)
    raise ValueError(f"unknown combination {method!r} (known: {', '.join(METHODS)})")


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order.

    Sorted ascending, the i-th (from 0) is max over j <= i of min(1, (m - j) * p_(j)): monotone in
    p, and rejecting those <= alpha controls the family-wise error at alpha under any dependence.
    """
    m = len(p_values)
    if m == 0:
        return []
    _check(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
