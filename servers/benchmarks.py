"""Benchmarks as the service sees them: built in (by name) or uploaded, read by the library's loader.

An upload (JSON items, a JSONL body, a multipart file) goes through `contam.benchmarks` exactly
as a file given to `contam scan` would, so a bad row is refused with its line (or row) and field,
and the worker, which rebuilds the benchmark from the stored items, reads the same thing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from contam.errors import BenchmarkError, InputError
from contam.types import Benchmark, Item
from servers.scans.schemas import BenchmarkSpec, UploadedItem

ITEMS_PATH = "benchmark.items"
# What an uploaded file may be; Parquet and Arrow stay out: their readers are large C++ parsers
# that have no business parsing an anonymous client's bytes.
UPLOAD_SUFFIXES = (".jsonl", ".json", ".csv")
_ITEM_FIELDS = ("id", "partition", "text", "prompt", "reference", "choices", "answer_index", "label")


def builtin_names() -> list[str]:
    from contam.benchmarks.builtin import BUILTINS

    return sorted(BUILTINS)


@lru_cache(maxsize=16)
def _builtin(name: str) -> Benchmark:
    from contam.benchmarks.builtin import BUILTINS

    return BUILTINS[name]()


def open_benchmark(spec: BenchmarkSpec) -> Benchmark:
    """The benchmark a request names or carries. Raises `InputError` naming the field."""
    if spec.items is None:
        assert spec.name is not None  # the schema requires a name or items
        if spec.name not in builtin_names():
            raise InputError(
                f"no benchmark {spec.name!r} on this server (has: {', '.join(builtin_names())})",
                field="benchmark.name",
            )
        return _builtin(spec.name)
    return items_benchmark(spec.items, name=spec.label, format=spec.format)


def items_benchmark(items: list[UploadedItem], *, name: str, format: Any = None) -> Benchmark:
    from contam.benchmarks.load import build_benchmark
    from contam.benchmarks.mapping import FieldMap
    from contam.benchmarks.readers import Location
    from contam.types import content_sha256

    rows = [item.model_dump(exclude_none=True) for item in items]
    present = {key for row in rows for key in row}
    fields = FieldMap(
        id="id" if "id" in present else None,
        partition="partition" if "partition" in present else None,
        text="text" if "text" in present else None,
        prompt="prompt" if "prompt" in present else None,
        reference="reference" if "reference" in present else None,
        choices=("choices",) if "choices" in present else None,
        answer="answer_index" if "answer_index" in present else None,
        label="label" if "label" in present else None,
    )

    def located() -> Iterator[tuple[Location, dict[str, Any], str]]:
        for i, row in enumerate(rows, start=1):
            yield Location(ITEMS_PATH, row=i), row, "upload"

    try:
        return build_benchmark(
            name=name,
            source="upload",
            sha256=content_sha256(*(repr(sorted(r.items())) for r in rows)),
            rows=located(),
            fields=fields,
            format=format,
        )
    except BenchmarkError as exc:
        raise InputError(exc.message, field=_item_field(exc)) from None
    except ValueError as exc:  # Item's own checks (answer index against its choices)
        raise InputError(str(exc), field=ITEMS_PATH) from None


def _item_field(exc: BenchmarkError) -> str:
    """`benchmark.items[2].prompt` from the loader's row (1-based) and field."""
    if exc.row is None:
        return ITEMS_PATH
    where = f"{ITEMS_PATH}[{exc.row - 1}]"
    field = exc.field if exc.field in _ITEM_FIELDS else None
    if exc.field == "choices" or exc.field == "answer_index":
        field = exc.field
    return f"{where}.{field}" if field else where


def parse_file(data: bytes, *, filename: str) -> list[dict[str, Any]]:
    """An uploaded JSONL/JSON/CSV file as items, through the library's loader (column guesses,
    format inference, duplicate ids, UTF-8), its errors naming `filename`, the line and the field."""
    from contam.benchmarks.load import load_path
    from contam.benchmarks.mapping import FieldMap

    suffix = Path(filename).suffix.lower() or ".jsonl"
    if suffix not in UPLOAD_SUFFIXES:
        raise InputError(
            f"unsupported file type {suffix!r}; upload one of {', '.join(UPLOAD_SUFFIXES)}", path=filename
        )
    with tempfile.TemporaryDirectory(prefix="contam-upload-") as tmp:
        # The partition of rows without one is the file's stem, as for `contam scan FILE`.
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            bench = load_path(path, fields=FieldMap(), format=None)
        except InputError as exc:
            # The loader names its own file (a temporary one); the client knows it as `filename`.
            message = exc.message.replace(str(path), filename)
            raise InputError(message, path=filename, line=exc.line, row=exc.row, field=exc.field) from None
    return [_as_row(item) for item in bench.items()]


def _as_row(item: Item) -> dict[str, Any]:
    """An item in `UploadedItem`'s field names. Lengths and counts are checked afterwards, against
    the server's limits, by validating the whole request, so the error names the limit."""
    row: dict[str, Any] = {
        "id": item.id,
        "partition": item.partition,
        "text": item.text,
        "prompt": item.prompt,
        "reference": item.reference,
        "choices": list(item.choices) if item.choices is not None else None,
        "answer_index": item.answer_index,
        "label": item.label,
    }
    return {k: v for k, v in row.items() if v is not None}


def partition_names(spec: BenchmarkSpec) -> list[str]:
    return list(open_benchmark(spec).partitions)
