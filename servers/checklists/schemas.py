"""`POST /v1/checklists`: the release checklist (`contam checklist`) as a job.

Unlike `release.yaml`, a request names only what the server registered: the model by name, the
benchmarks built in, the indexes by name; `to_config` turns it into the library's
`ChecklistConfig` with the server's own specs and paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from servers.scans.schemas import PartitionName, ProbeSpec, RegisteredName

if TYPE_CHECKING:
    from contam.checklist.config import ChecklistConfig
    from servers.settings import ServerSettings


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChecklistBenchmark(_Strict):
    name: RegisteredName = Field(description="a built-in benchmark", examples=["humaneval"])
    partitions: list[PartitionName] | None = Field(default=None, min_length=1, max_length=64)
    reference: PartitionName | None = Field(default=None, description="a partition of the benchmark")


class ChecklistRequest(_Strict):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model": "mock", "benchmarks": [{"name": "humaneval"}], "probes": [{"name": "loss"}]}
            ]
        },
    )

    model: RegisteredName = Field(description="a model registered on this server")
    benchmarks: list[ChecklistBenchmark] = Field(min_length=1, max_length=16)
    indexes: list[RegisteredName] = Field(
        default_factory=list, max_length=8, description="registered indexes"
    )
    probes: list[ProbeSpec] = Field(
        default_factory=lambda: [ProbeSpec(name="loss")], min_length=1, max_length=16
    )
    alpha: float = Field(default=0.05, gt=0, lt=1)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _unique(self) -> ChecklistRequest:
        names = [p.name for p in self.probes]
        if len(set(names)) != len(names):
            raise ValueError("a probe is listed twice; give each once with its params")
        return self

    def to_config(self, settings: ServerSettings) -> ChecklistConfig:
        """The library's checklist, with the registered model's spec and the indexes' paths.
        Raises `ValueError` naming the field when a name is not registered."""
        from contam.checklist.config import ChecklistConfig

        entry = settings.model(self.model)
        if entry is None:
            raise ValueError(f"model: no model {self.model!r} is registered on this server")
        paths = []
        for i, name in enumerate(self.indexes):
            index = settings.index(name)
            if index is None:
                raise ValueError(f"indexes[{i}]: no index {name!r} is registered on this server")
            paths.append(str(index.path))
        data: dict[str, Any] = {
            "model": entry.spec,
            "api_key_env": entry.api_key_env,
            "benchmarks": [b.model_dump(exclude_none=True) for b in self.benchmarks],
            "indexes": paths,
            "alpha": self.alpha,
            "probes": [p.model_dump() for p in self.probes],
            "seed": self.seed,
            "concurrency": settings.worker.concurrency,
        }
        return ChecklistConfig.model_validate(data)
