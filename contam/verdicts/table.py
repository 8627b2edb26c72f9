"""The verdict table printed first by `contam scan` (plain text, no dependencies)."""

from __future__ import annotations

from contam.verdicts.evidence import fmt_p
from contam.verdicts.types import VerdictSet


def verdict_table(verdicts: VerdictSet) -> str:
    """One row per partition: verdict, combined p, Holm-adjusted p and the rule that decided."""
    rows = [("partition", "verdict", "combined p", "adjusted p", "rule")]
    for v in verdicts.partitions:
        rows.append(
            (
                v.partition,
                v.verdict.value,
                fmt_p(v.combined_p) if v.combined_p is not None else "-",
                fmt_p(v.adjusted_p) if v.adjusted_p is not None else "-",
                f"{v.rule_id}: {v.rule}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    policy = verdicts.policy
    lines.insert(
        0,
        f"verdicts (alpha {policy.alpha:g}; probes combined by {policy.combination}, "
        "Holm over the partitions)",
    )
    skipped = sorted({f"{s.name}: {s.reason}" for v in verdicts.partitions for s in v.skipped})
    if skipped:
        lines.append("not counted: " + "; ".join(skipped))
    return "\n".join(lines)
