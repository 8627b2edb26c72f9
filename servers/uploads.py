"""Uploaded benchmark files, parsed as they arrive (in a worker thread: see `servers.intake`).

A row of a file is validated by the same schema as an item of a JSON body (`UploadedItem`,
with the server's limits), so the three forms of `POST /v1/scans` accept and refuse the same
things: NaN and Infinity, unknown columns, over-long fields. A refusal names the file and line
(JSONL) or row (.json, .csv) in its detail, and the column in its `field` (`body.text`,
`file.choices`), as `contam scan FILE` names them.

Limits are checked while reading: the item past `max_items` is refused at its own line, so a
100,000-line upload costs the parse of `max_items + 1` lines, not of all of them.

- `JsonlReader`: one item per line, parsed line by line as the bytes come.
- `WholeFileReader`: a .json array or a .csv table, parsed once complete (its size is bounded by
  the body limit).
- `MultipartReader`: a multipart body with a `file` part (one of the above) and a `request` part
  (`ScanOptions` as JSON); a part given twice, an unknown part, or a `request` that carries its own
  `benchmark.items` beside the file is refused, naming both.
"""

from __future__ import annotations

import csv
import io
import json
import string
from pathlib import PurePosixPath
from typing import Any

from pydantic import ValidationError

from contam.benchmarks.readers import Location
from contam.errors import BenchmarkError, InputError
from servers.benchmarks import item_row, rows_benchmark
from servers.intake import JsonRefused, decode_strict, json_object, load_json, too_large
from servers.problems import ApiProblem, FieldProblem, from_input_error, printable
from servers.scans.schemas import UploadedItem, UploadLimits

# What an uploaded file may be; Parquet and Arrow stay out: their readers are large C++ parsers
# that have no business parsing an anonymous client's bytes.
UPLOAD_SUFFIXES = (".jsonl", ".json", ".csv")
COLUMNS = tuple(UploadedItem.model_fields)
BOM = b"\xef\xbb\xbf"
# The `request` part holds ScanOptions: a few names and numbers.
MAX_REQUEST_PART_BYTES = 64 * 1024

Row = dict[str, Any]


class ItemRows:
    """Validated rows of one upload, counted against the limit as they are added."""

    def __init__(self, limits: UploadLimits, filename: str, part: str) -> None:
        self.limits = limits
        self.filename = filename
        self.part = part
        self.rows: list[tuple[Location, Row]] = []

    def refuse(self, loc: Location | None, message: str, column: str | None = None) -> ApiProblem:
        exc = InputError(
            message,
            path=self.filename,
            line=loc.line if loc else None,
            row=loc.row if loc else None,
            field=column,
        )
        return from_input_error(exc, field=f"{self.part}.{column}" if column else self.part)

    def check_count(self, n: int, loc: Location | None) -> None:
        if n > self.limits.max_items:
            raise self.refuse(loc, f"more than this server's limit of {self.limits.max_items} items")

    def add(self, row: Any, loc: Location) -> None:
        self.check_count(len(self.rows) + 1, loc)
        if not isinstance(row, dict):
            raise self.refuse(loc, f"expected a JSON object, got {type(row).__name__}")
        try:
            item = UploadedItem.model_validate(row, context={"limits": self.limits})
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = err.get("loc") or ("body",)
            column = printable(str(where[0]))
            if err.get("type") == "extra_forbidden":
                raise self.refuse(loc, f"unknown column (columns: {', '.join(COLUMNS)})", column) from None
            inner = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where[1:])
            raise self.refuse(
                loc, f"{inner.lstrip('.') + ': ' if inner else ''}{err['msg']}", column
            ) from None
        self.rows.append((loc, item.model_dump(exclude_none=True)))

    def finish(self) -> list[Row]:
        """The rows as items, through the library's checks (format, duplicate ids, default ids)."""
        if not self.rows:
            raise self.refuse(None, "no items: the file is empty")
        try:
            bench = rows_benchmark(self.rows, name="upload")
        except BenchmarkError as exc:
            loc = Location(self.filename, line=exc.line, row=exc.row)
            raise self.refuse(loc, exc.message, exc.field) from None
        except ValueError as exc:  # Item's own checks (answer index against its choices)
            raise self.refuse(None, str(exc)) from None
        return [item_row(item) for item in bench.items()]


class JsonlReader:
    """One JSON object per line, each parsed and validated as soon as its line is complete."""

    def __init__(self, rows: ItemRows) -> None:
        self.rows = rows
        self._partial: list[bytes] = []  # the current line's bytes so far
        self._line = 0

    def feed(self, data: bytes) -> None:
        if b"\n" not in data:
            self._partial.append(data)
            return
        first, *middle, last = data.split(b"\n")
        self._one(b"".join([*self._partial, first]))
        for line in middle:
            self._one(line)
        self._partial = [last] if last else []

    def close(self) -> list[Row]:
        if self._partial:
            self._one(b"".join(self._partial))
            self._partial = []
        return self.rows.finish()

    def _one(self, raw: bytes) -> None:
        # JSONL lines end at "\n" only: U+2028 and the like are allowed raw inside JSON strings.
        self._line += 1
        if self._line == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        if not raw.strip():
            return
        loc = Location(self.rows.filename, line=self._line)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.rows.refuse(
                loc, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            ) from None
        try:
            value = decode_strict(text)
        except json.JSONDecodeError as exc:
            raise self.rows.refuse(loc, f"malformed JSON: {exc.msg} (column {exc.colno})") from None
        except JsonRefused as exc:
            raise _refused(self.rows, loc, exc) from None
        except RecursionError:  # a line of "[[[[...": the decoder runs out of stack
            raise ApiProblem(
                400, "malformed-body", f"{self.rows.filename}:{self._line}: JSON nested too deeply",
                field=self.rows.part,
            ) from None  # fmt: skip
        self.rows.add(value, loc)


def _refused(rows: ItemRows, loc: Location, exc: JsonRefused) -> ApiProblem:
    column = str(exc.path[0]) if exc.path else None
    inner = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path[1:])
    return rows.refuse(loc, f"{inner.lstrip('.') + ': ' if inner else ''}{exc.why}", column)


class WholeFileReader:
    """A .json array of objects or a .csv table: kept until complete, then read row by row."""

    def __init__(self, rows: ItemRows, suffix: str) -> None:
        self.rows = rows
        self.suffix = suffix
        self._chunks: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)

    def close(self) -> list[Row]:
        data = b"".join(self._chunks)
        self._chunks = []
        if data.startswith(BOM):
            data = data[len(BOM) :]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise self.rows.refuse(Location(self.rows.filename, line=line), "not valid UTF-8") from None
        if self.suffix == ".csv":
            self._csv(text)
        else:
            self._json(text)
        return self.rows.finish()

    def _json(self, text: str) -> None:
        try:
            value = decode_strict(text)
        except json.JSONDecodeError as exc:
            loc = Location(self.rows.filename, line=exc.lineno)
            raise self.rows.refuse(loc, f"malformed JSON: {exc.msg} (column {exc.colno})") from None
        except JsonRefused as exc:
            if exc.path and isinstance(exc.path[0], int):
                where = Location(self.rows.filename, row=exc.path[0] + 1)
                raise _refused(self.rows, where, JsonRefused(exc.path[1:], exc.why)) from None
            raise self.rows.refuse(None, exc.why) from None
        except RecursionError:
            raise ApiProblem(400, "malformed-body", "JSON nested too deeply", field=self.rows.part) from None
        if not isinstance(value, list):
            raise self.rows.refuse(None, "expected a JSON array of objects (or upload .jsonl)")
        self.rows.check_count(len(value), Location(self.rows.filename, row=self.rows.limits.max_items + 1))
        for number, row in enumerate(value, start=1):
            self.rows.add(row, Location(self.rows.filename, row=number))

    def _csv(self, text: str) -> None:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames
        if not header:
            raise self.rows.refuse(None, "empty CSV file (no header row)")
        for column in header:
            if column not in COLUMNS:
                loc = Location(self.rows.filename, line=1)
                raise self.rows.refuse(
                    loc, f"unknown column (columns: {', '.join(COLUMNS)})", printable(column)
                )
        for number, raw in enumerate(reader, start=1):
            loc = Location(self.rows.filename, row=number)
            if None in raw:
                raise self.rows.refuse(loc, f"{len(raw[None])} more value(s) than header columns")
            self.rows.add(self._csv_row(raw, loc), loc)

    def _csv_row(self, raw: dict[str, str], loc: Location) -> Row:
        """A CSV row in JSON's shapes: an empty cell is absent, `choices` a JSON list or `a; b; c`,
        `answer_index` a number or a letter."""
        row: Row = {k: v for k, v in raw.items() if v != ""}
        choices = row.get("choices")
        if isinstance(choices, str):
            if choices.strip().startswith("["):
                try:
                    row["choices"] = decode_strict(choices)
                except (json.JSONDecodeError, JsonRefused, RecursionError):
                    raise self.rows.refuse(loc, "malformed JSON list", "choices") from None
            else:
                row["choices"] = [part for part in choices.strip().split("; ") if part]
        answer = row.get("answer_index")
        if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().isalpha():
            row["answer_index"] = string.ascii_uppercase.find(answer.strip().upper())
        return row


def file_reader(filename: str, part: str, limits: UploadLimits) -> JsonlReader | WholeFileReader:
    suffix = PurePosixPath(filename).suffix.lower() or ".jsonl"
    if suffix not in UPLOAD_SUFFIXES:
        raise ApiProblem(
            422,
            "invalid-input",
            f"{printable(filename)}: unsupported file type {printable(suffix)!r}; "
            f"upload one of {', '.join(UPLOAD_SUFFIXES)}",
            field=part,
            title="Invalid input",
        )
    rows = ItemRows(limits, printable(filename, 128), part)
    return JsonlReader(rows) if suffix == ".jsonl" else WholeFileReader(rows, suffix)


def _conflict(first: str, second: str, why: str) -> ApiProblem:
    return ApiProblem(
        422,
        "conflicting-parts",
        f"{first} and {second}: {why}",
        field=second,
        errors=[FieldProblem(field=first, message=why), FieldProblem(field=second, message=why)],
        title="Request validation failed",
    )


class MultipartReader:
    """A multipart/form-data body of `POST /v1/scans`, parsed as it arrives: the `file` part goes
    line by line into its reader, the `request` part (ScanOptions as JSON) is kept (at most
    `MAX_REQUEST_PART_BYTES`). `close()` is the request as a dict, its `benchmark.items` the file's."""

    def __init__(self, content_type: str, limits: UploadLimits) -> None:
        from python_multipart.multipart import MultipartParser, parse_options_header

        self.limits = limits
        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise ApiProblem(
                400, "malformed-body", "a multipart body needs a boundary", field="header.content-type"
            )
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_end": self._part_end,
            },
        )
        self._header = [b"", b""]
        self._disposition = b""
        self._current: str | None = None
        self._seen: set[str] = set()
        self._request = bytearray()
        self._options: dict[str, Any] | None = None
        self._file: JsonlReader | WholeFileReader | None = None

    def feed(self, data: bytes) -> None:
        from python_multipart.exceptions import FormParserError

        try:
            self._parser.write(data)
        except FormParserError:
            raise ApiProblem(400, "malformed-body", "malformed multipart body", field="body") from None

    def close(self) -> dict[str, Any]:
        from python_multipart.exceptions import FormParserError

        try:
            self._parser.finalize()
        except FormParserError:
            raise ApiProblem(400, "malformed-body", "malformed multipart body", field="body") from None
        if self._file is None:
            raise ApiProblem(
                422, "validation-error", "a `file` part with the benchmark is required", field="file"
            )
        options = dict(self._options or {})
        bench = json_object(options.pop("benchmark", {}), "request.benchmark")
        return {**options, "benchmark": {**bench, "items": self._file.close()}}

    # --- parser callbacks ---

    def _part_begin(self) -> None:
        self._disposition = b""
        self._current = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]

    def _header_end(self) -> None:
        if self._header[0].strip().lower() == b"content-disposition":
            self._disposition = self._header[1]
        self._header = [b"", b""]

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name not in ("request", "file"):
            raise ApiProblem(
                422,
                "validation-error",
                f"unknown form part {printable(name)!r} (parts: request, file)",
                field=printable(name) or "body",
            )
        if name in self._seen:
            raise _conflict(name, name, f"the {name!r} part is given twice")
        self._seen.add(name)
        self._current = name
        if name == "file":
            if b"filename" not in options:
                raise ApiProblem(
                    422,
                    "validation-error",
                    "the `file` part must be a file (give it a filename)",
                    field="file",
                )
            self._check_items_once()
            filename = options[b"filename"].decode("utf-8", "replace") or "upload.jsonl"
            self._file = file_reader(filename, "file", self.limits)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current == "file":
            assert self._file is not None
            self._file.feed(data[start:end])
        elif self._current == "request":
            self._request += data[start:end]
            if len(self._request) > MAX_REQUEST_PART_BYTES:
                raise too_large(MAX_REQUEST_PART_BYTES)

    def _part_end(self) -> None:
        if self._current == "request":
            self._options = json_object(load_json(bytes(self._request), "request"), "request")
            self._check_items_once()
        self._current = None

    def _check_items_once(self) -> None:
        """The items come in the file part; a `request` part's own `benchmark.items` beside it
        would be one of two sets of items, so it is refused rather than silently replaced."""
        bench = (self._options or {}).get("benchmark")
        if isinstance(bench, dict) and "items" in bench and "file" in self._seen:
            raise _conflict(
                "request.benchmark.items", "file", "both carry the benchmark's items; send them in one place"
            )
