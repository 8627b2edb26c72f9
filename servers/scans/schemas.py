"""The scan resource's wire format: what a client submits and what it reads back.

`ScanRequest` is also the job's stored request (`JobRecord.request`): the worker validates the
stored dict with this same model before it runs, so the API and the worker cannot disagree.

Everything a request can name is a *name* the server resolves from its own config: a model, a
benchmark, a probe, a partition. Patterns refuse URLs and paths, so a request can never point the
service at an internal address or a local file (the model's URL and key live in server.yaml).

Size limits come from the server's settings and are checked while validating, through the
pydantic validation context (`{"limits": UploadLimits}`); a stored request is re-validated without
a context, so the worker does not depend on the limits of the day it was submitted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

# A registered name: starts alphanumeric, then letters, digits, '.', '_' or '-'. No ':', '/', '@'
# or '\', so neither "http://10.0.0.1/v1" nor "../../etc/passwd" nor "hf:/models/x" passes.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PROBE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
# Partition names come from uploaded files too (train, seen_x16, heldout-2024.v1), never a path.
PARTITION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

RegisteredName = Annotated[str, Field(pattern=NAME_PATTERN, examples=["mock"])]
PartitionName = Annotated[str, Field(pattern=PARTITION_PATTERN, examples=["test"])]

# Static ceilings, published in the OpenAPI schema; the server's own limits (settings) are
# at most these and are the ones enforced.
MAX_ITEMS_CEILING = 100_000
MAX_FIELD_CEILING = 1_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UploadLimits(_Strict):
    """The server's limits on uploaded benchmarks (from server.yaml), passed as validation context."""

    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0, description="request body size, bytes")
    max_items: int = Field(default=5_000, gt=0, le=MAX_ITEMS_CEILING, description="uploaded items")
    max_field_chars: int = Field(
        default=20_000, gt=0, le=MAX_FIELD_CEILING, description="characters in any one text field"
    )


def _limits(info: ValidationInfo) -> UploadLimits | None:
    ctx = info.context
    if isinstance(ctx, dict):
        limits = ctx.get("limits")
        if isinstance(limits, UploadLimits):
            return limits
    return None


class UploadedItem(_Strict):
    """One benchmark instance, in the library's own field names (`contam.types.Item`).

    Read by the same loader as a JSONL file (`contam.benchmarks`), so a bad item is refused with
    its position and field exactly as the CLI would refuse it.
    """

    id: str | None = Field(default=None, min_length=1, max_length=256, description="default: PARTITION-00000")
    partition: PartitionName | None = Field(default=None, description="default: 'upload'")
    text: str | None = Field(
        default=None,
        max_length=MAX_FIELD_CEILING,
        description="the instance as published (default: prompt + reference)",
    )
    prompt: str | None = Field(default=None, max_length=MAX_FIELD_CEILING)
    reference: str | None = Field(default=None, max_length=MAX_FIELD_CEILING)
    choices: list[Annotated[str, Field(max_length=MAX_FIELD_CEILING)]] | None = Field(
        default=None, min_length=2, max_length=26, description="multiple-choice options"
    )
    answer_index: int | None = Field(default=None, ge=0, lt=26)
    label: str | None = Field(default=None, max_length=256)

    @field_validator("text", "prompt", "reference")
    @classmethod
    def _field_length(cls, value: str | None, info: ValidationInfo) -> str | None:
        limits = _limits(info)
        if value is not None and limits is not None and len(value) > limits.max_field_chars:
            raise ValueError(
                f"{len(value)} characters, more than this server's limit of {limits.max_field_chars}"
            )
        return value

    @field_validator("choices")
    @classmethod
    def _choice_length(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        limits = _limits(info)
        if value is not None and limits is not None:
            for i, choice in enumerate(value):
                if len(choice) > limits.max_field_chars:
                    raise ValueError(
                        f"choice {i}: {len(choice)} characters, more than this server's limit of "
                        f"{limits.max_field_chars}"
                    )
        return value


class BenchmarkSpec(_Strict):
    """A benchmark the server knows by name (built in), or one carried in the request (`items`)."""

    name: RegisteredName | None = Field(
        default=None,
        examples=["humaneval"],
        description="a built-in benchmark; with `items`, only the name shown in the report",
    )
    format: Literal["text", "qa", "mc"] | None = Field(
        default=None, description="of uploaded items; default: inferred from the fields present"
    )
    items: list[UploadedItem] | None = Field(default=None, min_length=1, max_length=MAX_ITEMS_CEILING)

    @field_validator("items")
    @classmethod
    def _item_count(cls, value: list[UploadedItem] | None, info: ValidationInfo) -> list[UploadedItem] | None:
        limits = _limits(info)
        if value is not None and limits is not None and len(value) > limits.max_items:
            raise ValueError(f"{len(value)} items, more than this server's limit of {limits.max_items}")
        return value

    @model_validator(mode="after")
    def _name_or_items(self) -> BenchmarkSpec:
        if self.name is None and self.items is None:
            raise ValueError("give a benchmark name, or the items themselves")
        if self.items is None and self.format is not None:
            raise ValueError("format applies to uploaded items only")
        return self

    @property
    def uploaded(self) -> bool:
        return self.items is not None

    @property
    def label(self) -> str:
        return self.name or "upload"


class ProbeSpec(_Strict):
    """A probe by registered name, with its parameters (validated by the probe's own model)."""

    name: str = Field(pattern=PROBE_PATTERN, examples=["loss"])
    params: dict[Annotated[str, Field(max_length=64)], JsonValue] = Field(
        default_factory=dict, max_length=32, examples=[{}]
    )


class ScanOptions(_Strict):
    """A scan's settings, apart from the benchmark (the multipart and JSONL forms carry it as a file)."""

    model: RegisteredName = Field(description="a model registered in the server's config, by name")
    probes: list[ProbeSpec] = Field(
        default_factory=lambda: [ProbeSpec(name="loss")], min_length=1, max_length=16
    )
    partitions: list[PartitionName] | None = Field(
        default=None, max_length=64, description="partitions to test (default: all but the reference)"
    )
    reference: PartitionName | None = Field(
        default=None, description="a partition of the same benchmark the model cannot have seen"
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="family-wise error rate of the verdicts")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class ScanRequest(ScanOptions):
    """`POST /v1/scans` (application/json)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "benchmark": {"name": "humaneval"},
                    "model": "mock",
                    "probes": [{"name": "loss", "params": {}}, {"name": "min_k", "params": {"k": 0.2}}],
                },
                {
                    "benchmark": {
                        "name": "mine",
                        "items": [
                            {"id": "a1", "partition": "test", "text": "What is 2 + 2? 4"},
                            {"id": "u1", "partition": "unseen", "text": "What is 3 + 5? 8"},
                        ],
                    },
                    "model": "mock",
                    "probes": [{"name": "loss"}],
                    "partitions": ["test"],
                    "reference": "unseen",
                    "alpha": 0.05,
                },
            ]
        },
    )

    benchmark: BenchmarkSpec

    @model_validator(mode="after")
    def _reference_not_tested(self) -> ScanRequest:
        if self.reference is not None and self.partitions and self.reference in self.partitions:
            raise ValueError(f"reference {self.reference!r} is also listed in partitions")
        return self

    @classmethod
    def of(cls, options: ScanOptions, benchmark: BenchmarkSpec) -> ScanRequest:
        return cls(benchmark=benchmark, **options.model_dump())


JobState = Literal["queued", "running", "done", "failed", "cancelled"]


class Progress(_Strict):
    items_done: int = 0
    items_total: int = 0
    calls_done: int = 0
    calls_total: int = 0


class ScanStatus(_Strict):
    """`GET /v1/scans/{id}`: where a job stands."""

    id: str = Field(examples=["3f2c0e7e9a4b4d0c8d5e1f2a3b4c5d6e"])
    kind: Literal["scan", "checklist", "overlap"] = "scan"
    status: JobState
    progress: Progress
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = Field(default=None, description="why it failed, when status is 'failed'")
    cancel_requested: bool = False
    attempts: int = Field(
        default=0, description="how many times a worker took it up (more than 1 after a restart)"
    )
    report_url: str | None = Field(default=None, description="where the report is, once done")
    request: dict[str, Any] | None = Field(
        default=None, description="the request as stored (uploaded items left out)"
    )


class ScanList(_Strict):
    """`GET /v1/scans`: the caller's jobs, newest first."""

    items: list[ScanStatus]
    next_cursor: str | None = Field(default=None, description="pass as ?cursor= for the next page")


class Accepted(_Strict):
    """`POST /v1/scans` answers 202 with this and a Location header."""

    id: str
    status: JobState
    status_url: str
    created: bool = Field(description="False when an Idempotency-Key named a job submitted before")
