"""What a checklist run returns and writes as `checklist.json`: one line per benchmark partition.

Versioned (`schema_version`) and frozen, like every report; `exit_code` is the release gate.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contam.models.base import ModelIdentity
from contam.verdicts.types import Verdict

SCHEMA_VERSION = "1"
FailOn = Literal["contaminated", "suspicious"]
# Exit code of a failed release gate (0: nothing flagged; 1 and 2 are errors, as everywhere in the CLI).
FLAGGED = 3


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChecklistLine(_Frozen):
    """One benchmark partition: its verdict, the rule that decided, and the evidence that weighed most."""

    benchmark: str = Field(description="the benchmark's label in the checklist")
    partition: str
    verdict: Verdict
    rule: str = Field(description="the rule that decided, in one sentence with its numbers")
    rule_id: str
    combined_p: float | None = None
    adjusted_p: float | None = Field(default=None, description="after Holm over the whole checklist family")
    family: str = Field(description="the family its adjusted p-value belongs to")
    key_evidence: str | None = Field(default=None, description="the strongest evidence used, in one line")
    report: str = Field(description="the benchmark's report.json, relative to the checklist folder")


class BenchmarkRun(_Frozen):
    """What was scanned for one benchmark, and what it cost."""

    label: str
    source: str
    sha256: str
    reference: str | None
    partitions: tuple[str, ...]
    overlap: tuple[str, ...] = Field(default=(), description="overlap.json files and index folders used")
    report: str
    requests: int
    model_calls: int
    cache_hits: int


class ChecklistResult(_Frozen):
    schema_version: str = SCHEMA_VERSION
    created_at: datetime
    model: str = Field(description="the model spec, without any secret")
    identity: ModelIdentity
    alpha: float
    family: str = Field(description="the partitions over which the family-wise error is held at alpha")
    probes: tuple[str, ...]
    benchmarks: tuple[BenchmarkRun, ...]
    lines: tuple[ChecklistLine, ...]

    @property
    def model_calls(self) -> int:
        return sum(b.model_calls for b in self.benchmarks)

    def flagged(self, fail_on: FailOn = "contaminated") -> tuple[ChecklistLine, ...]:
        failing = {Verdict.CONTAMINATED} | ({Verdict.SUSPICIOUS} if fail_on == "suspicious" else set())
        return tuple(line for line in self.lines if line.verdict in failing)

    def exit_code(self, fail_on: FailOn = "contaminated") -> int:
        """0 when nothing fails the gate; 3 on any contaminated partition (or suspicious, if asked)."""
        return FLAGGED if self.flagged(fail_on) else 0

    def write(self, path: str | Path) -> None:
        from contam.checklist.render import atomic_write

        atomic_write(Path(path), self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> ChecklistResult:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
