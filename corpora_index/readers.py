"""Corpus readers: JSONL (plain, .gz, .zst), Parquet, and folders of text files.

Every reader yields `Document(id, text)`. A corrupt line, row or file is reported with its location
(JSONL lines and Parquet rows both count from 1): with `on_error="fail"` (the default) as an
`InputError`, with `on_error="skip"` as a `CorpusProblem` appended to the caller's list while the
scan goes on. JSONL is read as bytes and decoded line by line, so one bad byte costs one line, and a
truncated .gz or .zst is reported where it ends. Nothing stops a scan silently.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

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
    """One corpus file, or a byte range of lines of a plain JSONL file (`split_sources`).

    `size` is its size on disk (of the range, for a range), for planning shards and progress;
    `mtime_ns` tells a persistent index that a file was edited (same path and size, other content).
    A range is bytes `offset` to `end`: it starts at the beginning of line `first_line` and ends
    after a newline (or at the end of the file). A whole file has `end` None and is read to its end.
    """

    path: str
    kind: SourceKind
    size: int
    mtime_ns: int = 0
    offset: int = 0
    end: int | None = None
    first_line: int = 1

    @property
    def compressed(self) -> bool:
        """Whether `size` counts compressed bytes (.gz, .zst, Parquet), not the text read."""
        return self.kind == "parquet" or self.path.lower().endswith(_COMPRESSION)


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
            out.extend(_source(p) for p in files)
        elif path.is_file():
            out.append(_source(path))
        else:
            raise InputError("corpus path does not exist", path=str(path))
    return out


def _source(path: Path) -> Source:
    st = path.stat()
    return Source(str(path), source_kind(path), st.st_size, st.st_mtime_ns)


def split_sources(sources: Sequence[Source], target_bytes: int) -> list[Source]:
    """Cut plain JSONL files larger than `target_bytes` into ranges of whole lines of about that size.

    One pass over each such file counts newlines (at memory speed), so each range knows its first
    line number and document ids stay `path:line` however the file is cut. Compressed files, Parquet
    and text files stay whole.
    """
    out: list[Source] = []
    for source in sources:
        if (
            source.kind != "jsonl"
            or source.compressed
            or source.size <= target_bytes
            or source.end is not None
        ):
            out.append(source)
            continue
        out.extend(_line_ranges(source, max(1, target_bytes)))
    return out


def _line_ranges(source: Source, target: int) -> list[Source]:
    ranges: list[Source] = []
    start, start_line = 0, 1
    pos, lines = 0, 0  # bytes read so far and newlines among them
    with open(source.path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            at = 0
            # cut after the first newline at or past `target` bytes into the range
            while (want := start + target - 1 - pos) < len(chunk):
                nl = chunk.find(b"\n", max(at, want))
                if nl < 0:
                    break
                lines += chunk.count(b"\n", at, nl + 1)
                at = nl + 1
                end = pos + at
                ranges.append(replace(source, offset=start, end=end, size=end - start, first_line=start_line))
                start, start_line = end, lines + 1
            lines += chunk.count(b"\n", at)
            pos += len(chunk)
    if pos > start:
        ranges.append(replace(source, offset=start, end=pos, size=pos - start, first_line=start_line))
    return ranges or [source]


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
    options: ReaderOptions,
    problems: list[CorpusProblem],
    path: str,
    message: str,
    *,
    line: int | None = None,
    row: int | None = None,
) -> None:
    if options.on_error == "fail":
        raise InputError(
            f"corrupt corpus input: {message} (use --on-error skip to skip it)", path=path, line=line, row=row
        )
    problems.append(CorpusProblem(path=path, line=line, row=row, message=message))


_CHUNK = 1 << 20


class _Meter:
    """Reports bytes of a source as they are read (on-disk bytes: compressed ones for .gz/.zst)."""

    __slots__ = ("done", "on_bytes", "size")

    def __init__(self, size: int, on_bytes: Callable[[int], None] | None) -> None:
        self.size = size
        self.done = 0
        self.on_bytes = on_bytes

    def at(self, position: int) -> None:
        position = min(position, self.size)
        if self.on_bytes is not None and position > self.done:
            self.on_bytes(position - self.done)
        self.done = max(self.done, position)

    def finish(self) -> None:
        self.at(self.size)


_NO_METER = _Meter(0, None)


def _plain_chunks(source: Source, meter: _Meter) -> Iterator[bytes]:
    with open(source.path, "rb") as fh:
        fh.seek(source.offset)
        left = -1 if source.end is None else source.end - source.offset  # -1: to the end of the file
        done = 0
        while left and (chunk := fh.read(_CHUNK if left < 0 else min(_CHUNK, left))):
            done += len(chunk)
            left = left - len(chunk) if left > 0 else left
            meter.at(done)
            yield chunk


def _gzip_chunks(source: Source, meter: _Meter) -> Iterator[bytes]:
    # GzipFile reads concatenated members and raises EOFError on a truncated one
    with open(source.path, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as fh:
        while chunk := fh.read(_CHUNK):
            meter.at(raw.tell())
            yield chunk


def _zstd_chunks(source: Source, meter: _Meter) -> Iterator[bytes]:
    path = source.path
    try:
        import zstandard
    except ImportError as exc:
        raise InputError("reading .zst needs zstandard: pip install 'contam[index]'", path=path) from exc
    dctx = zstandard.ZstdDecompressor()
    with open(path, "rb") as fh:
        dobj = dctx.decompressobj()
        started = False
        done = 0
        while raw := fh.read(_CHUNK):
            done += len(raw)
            meter.at(done)
            while raw:
                started = True
                try:
                    out = dobj.decompress(raw)
                except zstandard.ZstdError as exc:
                    raise OSError(f"corrupt .zst data: {exc}") from exc
                if out:
                    yield out
                raw = dobj.unused_data if dobj.eof else b""
                if dobj.eof:  # concatenated frames: a fresh decompressor for the next one
                    dobj, started = dctx.decompressobj(), False
        # stream_reader would end quietly inside a truncated frame; say so instead
        if started and not dobj.eof:
            raise EOFError("the .zst stream ends inside a frame (truncated file)")


def _chunks(source: Source, meter: _Meter) -> Iterator[bytes]:
    lower = source.path.lower()
    if lower.endswith(".gz"):
        return _gzip_chunks(source, meter)
    if lower.endswith(".zst"):
        return _zstd_chunks(source, meter)
    return _plain_chunks(source, meter)


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines split at b"\\n" only (JSONL's separator), newline removed; a long line is joined once."""
    pending: list[bytes] = []
    for chunk in chunks:
        if b"\n" not in chunk:
            pending.append(chunk)
            continue
        parts = chunk.split(b"\n")
        if pending:
            pending.append(parts[0])
            parts[0] = b"".join(pending)
            pending = []
        pending.append(parts.pop())
        yield from parts
    if pending and (last := b"".join(pending)):
        yield last


def read_jsonl(
    source: Source, options: ReaderOptions, problems: list[CorpusProblem], meter: _Meter = _NO_METER
) -> Iterator[Document]:
    """Lines are decoded one by one, so a line that is not UTF-8 is reported alone, by its number."""
    line_no = first = source.first_line - 1
    try:
        for line_no, raw in enumerate(_lines(_chunks(source, meter)), start=source.first_line):
            if not raw.strip():
                continue
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                _problem(
                    options, problems, source.path, f"not UTF-8 (byte {exc.start} of the line)", line=line_no
                )
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                _problem(options, problems, source.path, f"invalid JSON: {exc.msg}", line=line_no)
                continue
            text = row.get(options.text_field) if isinstance(row, dict) else None
            if not isinstance(text, str):
                message = f"no string field {options.text_field!r}"
                _problem(options, problems, source.path, message, line=line_no)
                continue
            doc_id = f"{source.path}:{line_no}"
            if options.id_field is not None and row.get(options.id_field) is not None:
                doc_id = str(row[options.id_field])
            yield Document(doc_id, text)
    except (OSError, EOFError, zlib.error) as exc:
        # a truncated or corrupt .gz/.zst: the rest of this file is unreadable
        where = line_no + 1 if line_no > first else None
        _problem(options, problems, source.path, f"unreadable from here on: {exc}", line=where)


def read_parquet(
    source: Source, options: ReaderOptions, problems: list[CorpusProblem], meter: _Meter = _NO_METER
) -> Iterator[Document]:
    """Rows count from 1, in document ids (`path#N`) and error messages (`row N`) alike."""
    row = 0  # rows read so far
    try:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(source.path)
        total_rows = max(1, pf.metadata.num_rows)
        columns = [options.text_field] + ([options.id_field] if options.id_field else [])
        missing = [c for c in columns if c not in pf.schema_arrow.names]
        if missing:
            _problem(options, problems, source.path, f"no column {missing[0]!r}")
            return
        for batch in pf.iter_batches(columns=columns, batch_size=4096):
            meter.at(source.size * (row + batch.num_rows) // total_rows)  # bytes in proportion to rows
            texts = batch.column(0).to_pylist()
            ids = batch.column(1).to_pylist() if options.id_field else None
            for i, text in enumerate(texts):
                row += 1
                if isinstance(text, str):
                    doc_id = str(ids[i]) if ids is not None and ids[i] is not None else f"{source.path}#{row}"
                    yield Document(doc_id, text)
                else:
                    kind = "null" if text is None else type(text).__name__
                    _problem(
                        options, problems, source.path, f"{options.text_field!r} is {kind}, not text", row=row
                    )
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        where = row + 1 if row else None
        _problem(options, problems, source.path, f"unreadable Parquet data: {exc}", row=where)


def read_text(
    source: Source, options: ReaderOptions, problems: list[CorpusProblem], meter: _Meter = _NO_METER
) -> Iterator[Document]:
    try:
        data = Path(source.path).read_bytes()
        yield Document(source.path, data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        _problem(options, problems, source.path, f"not UTF-8 text (byte {exc.start})")
    except OSError as exc:
        _problem(options, problems, source.path, f"unreadable file: {exc}")


def read_source(
    source: Source,
    options: ReaderOptions,
    problems: list[CorpusProblem],
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Document]:
    """Documents of one source; `on_bytes` hears how many of its `size` bytes were read, as they are
    (about a MB at a time), adding up to `size` exactly once the source is done."""
    meter = _Meter(source.size, on_bytes)
    if source.kind == "jsonl":
        yield from read_jsonl(source, options, problems, meter)
    elif source.kind == "parquet":
        yield from read_parquet(source, options, problems, meter)
    else:
        yield from read_text(source, options, problems, meter)
    meter.finish()
