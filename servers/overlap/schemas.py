"""`POST /v1/overlap`: a benchmark (built in or uploaded) against a corpus index registered in
server.yaml, by name. The answer is the library's own `OverlapReport`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from servers.scans.schemas import BenchmarkSpec, PartitionName, RegisteredName


class OverlapRequest(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"index": "stdlib", "benchmark": {"name": "humaneval"}}]},
    )

    index: RegisteredName = Field(description="a corpus index registered on this server")
    benchmark: BenchmarkSpec
    partitions: list[PartitionName] | None = Field(default=None, max_length=64)
    frequency_cap: int | None = Field(
        default=None, ge=1, le=1_000_000, description="ignore n-grams found in more documents than this"
    )
    max_documents: int = Field(default=100, ge=1, le=1000, description="documents listed per item")
