"""What `GET /v1/models`, `/v1/benchmarks` and `/v1/indexes` show: names and descriptions, never
a registered model's spec (it can hold a base URL, a path, a key's variable) or an index's path."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelOut(_Frozen):
    name: str = Field(examples=["mock"])
    backend: str = Field(description="hf, vllm, openai or mock", examples=["mock"])
    description: str = ""


class BenchmarkOut(_Frozen):
    name: str = Field(examples=["humaneval"])
    format: str | None = Field(default=None, description="text, qa or mc; null when it cannot be loaded here")
    partitions: dict[str, int] = Field(default_factory=dict, description="partition name: item count")
    available: bool = True
    problem: str | None = Field(default=None, description="why it cannot be loaded here")


class IndexOut(_Frozen):
    name: str
    description: str = ""


class ModelList(_Frozen):
    items: list[ModelOut]


class BenchmarkList(_Frozen):
    items: list[BenchmarkOut]


class IndexList(_Frozen):
    items: list[IndexOut]
