"""How often a release gate fails a clean model, by simulation through the real verdict engine.

A checklist of K partitions (4, 8 or 12), none of them seen, each tested by P probes whose
p-values are null: uniform, and correlated with each other as likelihood probes on the same items
are (a Gaussian copula with correlation rho between the probes of one partition; partitions are
independent). Every family goes through `contam.verdicts.decide` with the default policy
(Bonferroni within a partition, Holm over the partitions) and with `--combination cauchy`. Printed
per setting: the share of families in which the gate fails, for `--fail-on contaminated` and for
`--fail-on suspicious`, with Wilson 95% intervals, beside the rate of the rule this replaced
(`suspicious` on the unadjusted combined p, issue 17). The target is alpha (0.05) for both gates.

    python bench/gate.py [--families 4000] [--alpha 0.05] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import norm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contam.stats import wilson_interval  # noqa: E402
from contam.verdicts import decide  # noqa: E402
from contam.verdicts.combine import combine  # noqa: E402
from contam.verdicts.types import Evidence, PartitionEvidence, Verdict, VerdictPolicy  # noqa: E402

SETTINGS = [(k, p, rho) for k in (4, 8, 12) for p, rho in ((3, 0.0), (4, 0.5), (4, 0.9))]


def null_ps(rng: np.random.Generator, partitions: int, probes: int, rho: float) -> np.ndarray:
    """Uniform p-values, correlated `rho` between the probes of a partition."""
    cov = np.full((probes, probes), rho) + np.eye(probes) * (1 - rho)
    z = rng.multivariate_normal(np.zeros(probes), cov, size=partitions)
    return np.asarray(norm.sf(z))


def evidence(name: str, p: float, n: int = 40) -> Evidence:
    # The AUROC a one-sided Mann-Whitney test of n against n items gives with this p (its normal
    # approximation), so a small p comes with the effect it would have and may meet the floor.
    auroc = 0.5 + float(norm.isf(p)) * ((2 * n + 1) / (12 * n * n)) ** 0.5
    return Evidence(
        source="probe",
        name=name,
        statistic="mann_whitney_u",
        p_value=float(p),
        effect_name="auroc",
        effect=auroc,
        effect_floor=0.6,
        meets_floor=auroc >= 0.6,
        uses_reference=True,
        n=n,
        n_reference=n,
        summary=f"{name}: p = {p:.3g}",
    )


def simulate(
    families: int, partitions: int, probes: int, rho: float, policy: VerdictPolicy, seed: int
) -> tuple[int, int, int]:
    """Families failing --fail-on contaminated, --fail-on suspicious, and the old unadjusted rule."""
    rng = np.random.default_rng(seed)
    contaminated = suspicious = old = 0
    for _ in range(families):
        ps = null_ps(rng, partitions, probes, rho)
        family = [
            PartitionEvidence(
                partition=f"p{i}", evidence=tuple(evidence(f"probe{j}", ps[i, j]) for j in range(probes))
            )
            for i in range(partitions)
        ]
        verdicts = decide(family, policy)
        contaminated += any(v.verdict is Verdict.CONTAMINATED for v in verdicts.partitions)
        suspicious += bool(verdicts.flagged)
        old += any(combine(list(row), policy.combination) <= policy.alpha for row in ps)
    return contaminated, suspicious, old


def table(families: int, alpha: float, seed: int) -> tuple[str, float, float]:
    """The table, and the largest Wilson lower and upper bounds of the default gate's failure rate."""
    head = (
        f"{'combination':<12}{'K':>4}{'probes':>7}{'rho':>5}"
        f"{'fail-on contaminated':>28}{'fail-on suspicious':>28}{'old suspicious rule':>21}"
    )
    lines = [head, "-" * len(head)]
    worst = lowest = 0.0
    for combination in ("holm", "cauchy"):
        policy = VerdictPolicy(alpha=alpha, combination=combination)
        for i, (k, p, rho) in enumerate(SETTINGS):
            c, s, o = simulate(families, k, p, rho, policy, seed + i)
            cells = []
            for n_fail in (c, s):
                ci = wilson_interval(n_fail, families)
                if combination == "holm":
                    worst, lowest = max(worst, ci.high), max(lowest, ci.low)
                cells.append(f"{n_fail / families:.3f} [{ci.low:.3f}, {ci.high:.3f}]")
            lines.append(
                f"{combination:<12}{k:>4}{p:>7}{rho:>5.1f}{cells[0]:>28}{cells[1]:>28}{o / families:>21.3f}"
            )
    return "\n".join(lines), worst, lowest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", type=int, default=4000, help="simulated clean checklists per setting")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    text, worst, lowest = table(args.families, args.alpha, args.seed)
    print(
        f"gate failure rate on a clean model: {args.families} simulated checklists per row, null p-values, "
        f"alpha {args.alpha:g} [Wilson 95%]"
    )
    print(text)
    # As the calibration bench's target: no row significantly above alpha, none with an upper bound
    # over 0.08 (4,000 families see a true rate of 0.065 above alpha with probability about 0.99).
    ok = lowest <= args.alpha and worst <= 0.08
    print(
        f"{'PASS' if ok else 'FAIL'}: default gate (Bonferroni + Holm), fail-on contaminated or suspicious: "
        f"largest Wilson bounds [{lowest:.3f}, {worst:.3f}] (target: lower <= {args.alpha:g}, upper <= 0.08)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
