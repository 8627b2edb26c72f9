"""Corpus readers: JSONL (plain, .gz, .zst), Parquet, and folders of text files.

Every reader yields `Document(id, text)`. A corrupt line, row or file is reported with its location:
with `on_error="fail"` (the default) as an `InputError`, with `on_error="skip"` as a
`CorpusProblem` appended to the caller's list while the scan goes on. Nothing stops a scan silently.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from contam.errors import InputError
from corpora_index.report import CorpusProblem

OnError = Literal["fail", "skip"]
SourceKind = Literal["jsonl", "parquet", "text"]

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_COMPRESSION = (".gz", ".zst")


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class Source:
    """One corpus file. `size` is its size on disk, for planning shards and progress."""

    path: str
    kind: SourceKind
    size: int


@dataclass(frozen=True, slots=True)
class ReaderOptions:
    text_field: str = "text"
    id_field: str | None = None
    on_error: OnError = "fail"
    glob: str = "**/*"  # files picked from a folder


DEFAULT_READER = ReaderOptions()


def source_kind(path: Path) -> SourceKind:
    name = path.name.lower()
    for comp in _COMPRESSION:
        if name.endswith(comp):
            name = name[: -len(comp)]
    if name.endswith(_JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return "text"


def expand_sources(paths: Sequence[str | Path], options: ReaderOptions = DEFAULT_READER) -> list[Source]:
    """Files named directly, plus the files under each named folder (sorted, so shards are stable)."""
    out: list[Source] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.glob(options.glob) if p.is_file())
            out.extend(Source(str(p), source_kind(p), p.stat().st_size) for p in files)
        elif path.is_file():
            out.append(Source(str(path), source_kind(path), path.stat().st_size))
        else:
            raise InputError("corpus path does not exist", path=str(path))
    return out


def plan_shards(sources: Sequence[Source], target_bytes: int) -> list[tuple[Source, ...]]:
    """Group consecutive files into shards of about `target_bytes` (a big file is a shard alone)."""
    shards: list[tuple[Source, ...]] = []
    current: list[Source] = []
    size = 0
    for source in sources:
        if current and size + source.size > target_bytes:
            shards.append(tuple(current))
            current, size = [], 0
        current.append(source)
        size += source.size
    if current:
        shards.append(tuple(current))
    return shards


def _problem(
    options: ReaderOptions, problems: list[CorpusProblem], path: str, line: int | None, message: str
) -> None:
    if options.on_error == "fail":
        raise InputError(
            f"corrupt corpus input: {message} (use --on-error skip to skip it)", path=path, line=line
        )
    problems.append(CorpusProblem(path=path, line=line, message=message))


def _open_text(path: str) -> IO[str]:
    lower = path.lower()
    if lower.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    if lower.endswith(".zst"):
        try:
            import zstandard
        except ImportError as exc:
            raise InputError("reading .zst needs zstandard: pip install 'contam[index]'", path=path) from exc
        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)  # noqa: SIM115
        return io.TextIOWrapper(raw, encoding="utf-8")
    return open(path, encoding="utf-8")


def read_jsonl(source: Source, options: ReaderOptions, problems: list[CorpusProblem]) -> Iterator[Document]:
    line_no = 0
    try:
        with _open_text(source.path) as fh:
            for line_no, line in enumerate(fh, start=1):  # line_no is read after the loop
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    _problem(options, problems, source.path, line_no, f"invalid JSON: {exc.msg}")
                    continue
                text = row.get(options.text_field) if isinstance(row, dict) else None
                if not isinstance(text, str):
                    _problem(
                        options, problems, source.path, line_no, f"no string field {options.text_field!r}"
                    )
                    continue
                doc_id = f"{source.path}:{line_no}"
                if options.id_field is not None and row.get(options.id_field) is not None:
                    doc_id = str(row[options.id_field])
                yield Document(doc_id, text)
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        # a truncated .gz/.zst or undecodable bytes: the rest of this file is unreadable
        where = line_no + 1 if line_no else None
        _problem(options, problems, source.path, where, f"unreadable file: {exc}")


def read_parquet(source: Source, options: ReaderOptions, problems: list[CorpusProblem]) -> Iterator[Document]:
    try:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(source.path)
        columns = [options.text_field] + ([options.id_field] if options.id_field else [])
        missing = [c for c in columns if c not in pf.schema_arrow.names]
        if missing:
            _problem(options, problems, source.path, None, f"no column {missing[0]!r}")
            return
        row = 0
        for batch in pf.iter_batches(columns=columns, batch_size=4096):
            texts = batch.column(0).to_pylist()
            ids = batch.column(1).to_pylist() if options.id_field else None
            for i, text in enumerate(texts):
                if isinstance(text, str):
                    doc_id = str(ids[i]) if ids is not None and ids[i] is not None else f"{source.path}#{row}"
                    yield Document(doc_id, text)
                else:
                    _problem(
                        options, problems, source.path, row, f"row {row}: {options.text_field!r} is not text"
                    )
                row += 1
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        _problem(options, problems, source.path, None, f"unreadable Parquet file: {exc}")


def read_text(source: Source, options: ReaderOptions, problems: list[CorpusProblem]) -> Iterator[Document]:
    try:
        data = Path(source.path).read_bytes()
        yield Document(source.path, data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        _problem(options, problems, source.path, None, f"not UTF-8 text (byte {exc.start})")
    except OSError as exc:
        _problem(options, problems, source.path, None, f"unreadable file: {exc}")


def read_source(source: Source, options: ReaderOptions, problems: list[CorpusProblem]) -> Iterator[Document]:
    if source.kind == "jsonl":
        return read_jsonl(source, options, problems)
    if source.kind == "parquet":
        return read_parquet(source, options, problems)
    return read_text(source, options, problems)
