"""`overlap.json`: the public contract of the corpus overlap check.

Field names here are stable (`fingerprint`, `items`, and per item `id`, `partition`, `matched`,
`ngram_fraction`, `token_coverage`, `longest_span`, `minhash`, `documents`); new fields may be
added, existing ones are never renamed. Imports only pydantic so that `contam.report.ScanReport`
can carry an `OverlapReport` without pulling numpy or numba.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contam.errors import InputError
from corpora_index.settings import IndexSettings

SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Span(_Frozen):
    """One contiguous match: character offsets into the original corpus document, end exclusive."""

    start: int
    end: int
    tokens: int = Field(description="length of the matched span in words")


class DocumentMatch(_Frozen):
    id: str = Field(
        description="corpus document id: file path, path:line for JSONL, path#row for Parquet (from 1)"
    )
    spans: tuple[Span, ...]
    spans_omitted: int = Field(
        default=0, description="further matches in this document, not listed (only the longest are kept)"
    )


class MinHashMatch(_Frozen):
    """Best near-copy found by the MinHash tier, verified exactly on the corpus window."""

    containment: float = Field(description="share of the item's shingles found in the window")
    jaccard: float = Field(description="Jaccard similarity of the item and the window (shingle sets)")
    document: str
    start: int = Field(description="character offset of the window in the document")
    end: int


class ItemOverlap(_Frozen):
    id: str
    partition: str
    matched: bool = Field(description="exact tier: at least one n-gram of the item is in the corpus")
    ngram_fraction: float = Field(description="share of the item's n-grams found in the corpus")
    token_coverage: float = Field(description="share of the item's words covered by matched n-grams")
    longest_span: int = Field(description="longest run of item words found contiguously in one document")
    minhash: MinHashMatch | None = None
    documents: tuple[DocumentMatch, ...] = ()
    documents_total: int = Field(
        default=0, description="matching documents before truncation to max_documents"
    )
    tokens: int = Field(default=0, description="words in the item after normalisation")
    ngrams: int = Field(default=0, description="n-grams in the item (0 when it has fewer than n words)")


class CorpusProblem(_Frozen):
    """A corrupt corpus line, row or file that was skipped (with --on-error skip)."""

    path: str
    line: int | None = Field(default=None, description="JSONL line, counted from 1")
    row: int | None = Field(default=None, description="Parquet row, counted from 1")
    message: str


class CorpusStats(_Frozen):
    sources: tuple[str, ...] = ()
    documents: int = 0
    bytes: int = 0
    problems: tuple[CorpusProblem, ...] = ()


class OverlapReport(_Frozen):
    schema_version: int = SCHEMA_VERSION
    fingerprint: IndexSettings
    mode: str = Field(default="stream", description="stream (corpus scanned past the benchmark) or index")
    benchmark: str | None = None
    frequency_cap: int | None = None
    corpus: CorpusStats = CorpusStats()
    items: tuple[ItemOverlap, ...]

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: str | Path) -> OverlapReport:
        try:
            return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read overlap report: {exc.strerror or exc}", path=str(path)) from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise InputError(
                f"not an overlap.json of schema version {SCHEMA_VERSION}: {where}: {first['msg']}",
                path=str(path),
            ) from exc

    def by_key(self) -> dict[tuple[str, str], ItemOverlap]:
        """Items keyed by (partition, id): ids are unique only within a partition."""
        return {(item.partition, item.id): item for item in self.items}
