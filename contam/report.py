"""`ScanReport`: the versioned record of a scan. Serialised only through pydantic, never pickled.

It carries everything needed to reproduce and audit a result: benchmark and model provenance,
every probe's parameters and per-item scores, and what the run cost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contam.models.base import Capabilities, ModelIdentity
from contam.results import ProbeResult
from contam.types import Benchmark

SCHEMA_VERSION = "1.0"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BenchmarkInfo(_Frozen):
    name: str
    source: str
    sha256: str
    format: str
    partitions: dict[str, int]

    @classmethod
    def of(cls, bench: Benchmark) -> BenchmarkInfo:
        return cls(
            name=bench.name,
            source=bench.source,
            sha256=bench.sha256,
            format=bench.format,
            partitions=bench.counts,
        )


class ModelInfo(_Frozen):
    spec: str = Field(description="the model spec as given, without any secret")
    identity: ModelIdentity
    capabilities: Capabilities


class RunInfo(_Frozen):
    """Facts about this particular run; excluded when comparing two reports' findings."""

    created_at: datetime
    duration_s: float
    contam_version: str
    requests: int
    cache_hits: int
    model_calls: int


class ScanReport(_Frozen):
    schema_version: str = SCHEMA_VERSION
    benchmark: BenchmarkInfo
    model: ModelInfo
    reference: str | None = Field(default=None, description="the reference partition or file, if any")
    seed: int
    probes: tuple[ProbeResult, ...]
    run: RunInfo

    def findings(self) -> dict[str, Any]:
        """Everything but the run facts: two runs of the same scan must agree on this exactly."""
        return self.model_dump(mode="json", exclude={"run"})

    def write(self, path: str | Path) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(target)  # atomic: a killed scan never leaves a truncated report

    @classmethod
    def read(cls, path: str | Path) -> ScanReport:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def now() -> datetime:
    return datetime.now(UTC)
