"""Row readers for local benchmark files: JSONL, CSV, Parquet, Hugging Face `save_to_disk` folders.

Each yields `(Location, row)` so every later error can name the file and line or row.
Nothing is read from a hub: these are local files only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contam.errors import BenchmarkError

Row = dict[str, Any]
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


@dataclass(frozen=True, slots=True)
class Location:
    path: str
    line: int | None = None
    row: int | None = None

    def error(self, message: str, field: str | None = None) -> BenchmarkError:
        return BenchmarkError(message, path=self.path, line=self.line, row=self.row, field=field)


def is_hf_disk_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file())


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BenchmarkError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); re-encode it as UTF-8",
            path=str(path),
            line=line,
        ) from None


def read_jsonl(path: Path) -> Iterator[tuple[Location, Row]]:
    text = _decode(path)
    # JSONL lines end at "\n" only: splitlines() would also cut at U+2028, U+0085 and the like,
    # which JSON allows raw inside strings, and report a valid line as malformed.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        loc = Location(str(path), line=number)
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise loc.error(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(row, dict):
            raise loc.error(f"expected a JSON object, got {type(row).__name__}")
        yield loc, row


def read_json_array(path: Path) -> Iterator[tuple[Location, Row]]:
    try:
        data = json.loads(_decode(path))
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"malformed JSON: {exc.msg}", path=str(path), line=exc.lineno) from None
    if not isinstance(data, list):
        raise BenchmarkError("expected a JSON array of objects (or use .jsonl)", path=str(path))
    for number, row in enumerate(data, start=1):
        loc = Location(str(path), row=number)
        if not isinstance(row, dict):
            raise loc.error(f"expected a JSON object, got {type(row).__name__}")
        yield loc, row


def read_csv(path: Path) -> Iterator[tuple[Location, Row]]:
    reader = csv.DictReader(io.StringIO(_decode(path), newline=""))
    if not reader.fieldnames:
        raise BenchmarkError("empty CSV file (no header row)", path=str(path))
    for number, row in enumerate(reader, start=1):
        loc = Location(str(path), row=number)
        if None in row:
            raise loc.error(f"{len(row[None])} more value(s) than header columns")
        yield loc, dict(row)


def _rows_of_table(table: Any, path: Path) -> Iterator[tuple[Location, Row]]:
    for number, row in enumerate(table.to_pylist(), start=1):
        yield Location(str(path), row=number), row


def read_parquet(path: Path) -> Iterator[tuple[Location, Row]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise BenchmarkError(f"cannot read Parquet: {exc}", path=str(path)) from None
    yield from _rows_of_table(table, path)


def read_hf_dataset_folder(path: Path) -> Iterator[tuple[Location, Row]]:
    """One `Dataset.save_to_disk` folder: its arrow files in the order `state.json` lists them."""
    import pyarrow as pa

    state_file = path / "state.json"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        files = [entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchmarkError(f"not a readable save_to_disk folder: {exc}", path=str(state_file)) from None
    offset = 0
    for name in files:
        arrow = path / name
        try:
            with pa.memory_map(str(arrow)) as source:
                table = pa.ipc.open_stream(source).read_all()
        except Exception as exc:  # pyarrow's errors for a truncated or foreign file vary
            raise BenchmarkError(f"cannot read arrow data: {exc}", path=str(arrow)) from None
        for number, row in enumerate(table.to_pylist(), start=offset + 1):
            yield Location(str(arrow), row=number), row
        offset += table.num_rows


def hf_disk_splits(path: Path) -> dict[str, Path]:
    """Split name to folder, for a `DatasetDict` folder; a lone `Dataset` folder is one split."""
    if (path / "dataset_dict.json").is_file():
        try:
            splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        except (OSError, ValueError, KeyError) as exc:
            raise BenchmarkError(f"unreadable dataset_dict.json: {exc}", path=str(path)) from None
        return {str(name): path / str(name) for name in splits}
    return {path.name: path}


def read_rows(path: Path) -> Iterator[tuple[Location, Row]]:
    """Rows of one file (or one save_to_disk split folder), dispatched on its kind."""
    if path.is_dir():
        return read_hf_dataset_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix == ".json":
        return read_json_array(path)
    if suffix == ".csv":
        return read_csv(path)
    if suffix == ".parquet":
        return read_parquet(path)
    raise BenchmarkError(
        f"unsupported file type {suffix!r}; expected one of {', '.join(DATA_SUFFIXES)}", path=str(path)
    )
