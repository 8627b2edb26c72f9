"""Benchmarks as the service sees them: built in (by name) or uploaded, read by the library's loader.

An upload (JSON items, a JSONL body, a multipart file; read by `servers.uploads`) goes through
`contam.benchmarks`' checks as a file given to `contam scan` would, so a bad row is refused with its
line (or row) and field, and the worker, which rebuilds the benchmark from the stored items, reads
the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from contam.errors import BenchmarkError, InputError
from contam.types import Benchmark, Item
from servers.scans.schemas import BenchmarkSpec, UploadedItem

if TYPE_CHECKING:
    from contam.benchmarks.readers import Location

ITEMS_PATH = "benchmark.items"
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
    from contam.benchmarks.readers import Location

    rows = [
        (Location(ITEMS_PATH, row=i), item.model_dump(exclude_none=True)) for i, item in enumerate(items, 1)
    ]
    try:
        return rows_benchmark(rows, name=name, format=format)
    except BenchmarkError as exc:
        raise InputError(exc.message, field=_item_field(exc)) from None
    except ValueError as exc:  # Item's own checks (answer index against its choices)
        raise InputError(str(exc), field=ITEMS_PATH) from None


def rows_benchmark(
    rows: Sequence[tuple[Location, dict[str, Any]]], *, name: str, format: Any = None
) -> Benchmark:
    """Rows in `UploadedItem`'s field names, each with where it came from, as a `Benchmark`
    through the library's checks (formats, duplicate ids); a `BenchmarkError` names the row."""
    from contam.benchmarks.load import build_benchmark
    from contam.benchmarks.mapping import FieldMap
    from contam.types import content_sha256

    present = {key for _, row in rows for key in row}
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
    return build_benchmark(
        name=name,
        source="upload",
        sha256=content_sha256(*(repr(sorted(r.items())) for _, r in rows)),
        rows=((loc, row, "upload") for loc, row in rows),
        fields=fields,
        format=format,
    )


def _item_field(exc: BenchmarkError) -> str:
    """`benchmark.items[2].prompt` from the loader's row (1-based) and field."""
    if exc.row is None:
        return ITEMS_PATH
    where = f"{ITEMS_PATH}[{exc.row - 1}]"
    field = exc.field if exc.field in _ITEM_FIELDS else None
    if exc.field == "choices" or exc.field == "answer_index":
        field = exc.field
    return f"{where}.{field}" if field else where


def item_row(item: Item) -> dict[str, Any]:
    """An item in `UploadedItem`'s field names (with the id and partition it was given)."""
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
