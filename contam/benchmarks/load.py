"""`load_benchmark`: a built-in name or a local path in, a validated `Benchmark` out.

All or nothing: any bad row fails the whole load with its location, so a scan never runs
on a half-loaded benchmark.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from contam.benchmarks.mapping import FieldMap, row_to_item
from contam.benchmarks.readers import (
    DATA_SUFFIXES,
    Location,
    Row,
    hf_disk_splits,
    is_hf_disk_folder,
    read_rows,
)
from contam.errors import BenchmarkError
from contam.types import Benchmark, BenchmarkFormat, Item, Partition


def load_benchmark(
    spec: str,
    *,
    fields: FieldMap | None = None,
    format: BenchmarkFormat | None = None,
    partitions: Sequence[str] | None = None,
) -> Benchmark:
    """Load a benchmark by built-in name (`gsm8k`, `truthfulqa-mc`, ...) or local path.

    `partitions` keeps only those partitions (in the order given) and fails on an unknown one.
    """
    from contam.benchmarks.builtin import BUILTINS

    if spec in BUILTINS:
        if fields is not None and fields != FieldMap():
            raise BenchmarkError(
                f"{spec!r} is built in; --field mappings apply to files only", field="--field"
            )
        bench = BUILTINS[spec]()
    else:
        bench = load_path(Path(spec), fields=fields or FieldMap(), format=format)
    return select_partitions(bench, partitions) if partitions else bench


def select_partitions(bench: Benchmark, names: Sequence[str]) -> Benchmark:
    chosen = {}
    for name in names:
        if name not in bench.partitions:
            known = ", ".join(bench.partitions)
            raise BenchmarkError(
                f"no partition {name!r} in {bench.name!r} (has: {known})", field="--partition"
            )
        chosen[name] = bench.partitions[name]
    return Benchmark(bench.name, bench.format, chosen, bench.source, bench.sha256)


def _sources(path: Path) -> list[tuple[Path, str]]:
    """(data file or split folder, default partition name) pairs for a path."""
    if not path.exists():
        raise BenchmarkError("no such file or folder", path=str(path))
    if is_hf_disk_folder(path):
        return [(folder, name) for name, folder in hf_disk_splits(path).items()]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in DATA_SUFFIXES)
        if not files:
            raise BenchmarkError(f"no data files ({', '.join(DATA_SUFFIXES)}) in folder", path=str(path))
        return [(f, f.stem) for f in files]  # one partition per file
    return [(path, path.stem)]


def _empty_source(source: Path, partition: str) -> BenchmarkError:
    """An empty file or split would silently drop its partition; say which one instead."""
    if source.is_dir():
        return BenchmarkError(f"empty split {partition!r}: the save_to_disk split has no rows",
                              path=str(source))
    return BenchmarkError(f"empty partition {partition!r}: the file has no rows", path=str(source))


def _digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            digest.update(f.name.encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()


def load_path(path: Path, *, fields: FieldMap, format: BenchmarkFormat | None) -> Benchmark:
    sources = _sources(path)

    def rows() -> Iterator[tuple[Location, Row, str]]:
        for source, default_partition in sources:
            count = 0
            for loc, row in read_rows(source):
                count += 1
                yield loc, row, default_partition
            if count == 0:
                raise _empty_source(source, default_partition)

    return build_benchmark(
        name=path.stem if path.is_file() else path.name,
        source=str(path),
        sha256=_digest(s for s, _ in sources),
        rows=rows(),
        fields=fields,
        format=format,
    )


def build_benchmark(
    *,
    name: str,
    source: str,
    sha256: str,
    rows: Iterable[tuple[Location, Row, str]],
    fields: FieldMap,
    format: BenchmarkFormat | None,
) -> Benchmark:
    """Validate rows into items, grouped into partitions in first-appearance order."""
    groups: dict[str, list[Item]] = {}
    seen_ids: dict[str, Location] = {}
    resolved: FieldMap | None = None
    fmt: BenchmarkFormat | None = format
    # Rows per source, for default ids: counting the items grouped under the source's name would
    # give every row "SOURCE-00000" when a partition column sends them to other groups.
    per_source: dict[str, int] = {}
    for loc, row, default_partition in rows:
        if resolved is None:
            resolved = fields.resolve(list(row), format)
            fmt = format or resolved.infer_format()
        assert fmt is not None
        index = per_source.get(default_partition, 0)
        per_source[default_partition] = index + 1
        item = row_to_item(
            resolved,
            fmt,
            row,
            loc,
            default_id=f"{default_partition}-{index:05d}",
            default_partition=default_partition,
        )
        if item.id in seen_ids:
            first = seen_ids[item.id]
            where = f"line {first.line}" if first.line is not None else f"row {first.row}"
            raise loc.error(
                f"duplicate id {item.id!r} (first at {first.path} {where})", field=resolved.id or "id"
            )
        seen_ids[item.id] = loc
        groups.setdefault(item.partition, []).append(item)
    if not groups or fmt is None:
        raise BenchmarkError("no items: the benchmark is empty", path=source)
    parts = {name: Partition(name, tuple(items)) for name, items in groups.items()}
    return Benchmark(name=name, format=fmt, partitions=parts, source=source, sha256=sha256)
