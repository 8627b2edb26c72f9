"""Corpus readers: a bad line or row is reported by its number and costs only itself."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from contam.errors import InputError
from corpora_index.readers import ReaderOptions, expand_sources, read_source
from corpora_index.report import CorpusProblem

SKIP = ReaderOptions(on_error="skip")
LINES = [json.dumps({"text": f"document {i}"}).encode() for i in range(5)]


def _jsonl_with_bad_byte() -> bytes:
    bad = b'{"text": "caf\xe9 latin-1"}'  # one byte that is not UTF-8
    return b"\n".join([LINES[0], bad, *LINES[2:]]) + b"\n"


def _read(path: Path, options: ReaderOptions) -> tuple[list[str], list[CorpusProblem]]:
    problems: list[CorpusProblem] = []
    [source] = expand_sources([path], options)
    ids = [d.id for d in read_source(source, options, problems)]
    return ids, problems


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_an_invalid_utf8_byte_costs_one_line_reported_by_number(tmp_path: Path, suffix: str) -> None:
    data = _jsonl_with_bad_byte()
    path = tmp_path / f"c{suffix}"
    if suffix.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    elif suffix.endswith(".zst"):
        path.write_bytes(zstandard.ZstdCompressor().compress(data))
    else:
        path.write_bytes(data)
    ids, problems = _read(path, SKIP)
    assert ids == [f"{path}:{n}" for n in (1, 3, 4, 5)]
    assert [(p.path, p.line, p.row) for p in problems] == [(str(path), 2, None)]
    assert "not UTF-8" in problems[0].message
    with pytest.raises(InputError) as err:
        _read(path, ReaderOptions())
    assert (err.value.path, err.value.line) == (str(path), 2)
    assert str(err.value).startswith(f"{path}:2: corrupt corpus input: not UTF-8")


def test_lines_split_only_at_newlines_and_a_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    # a long line across read chunks, CRLF endings, a line separator inside a string, no final newline
    long_text = "x" * (3 << 20)
    rows = [{"text": long_text}, {"text": "a\u2028b\rc"}, {"text": "last"}]
    body = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    problems: list[CorpusProblem] = []
    [source] = expand_sources([path])
    docs = list(read_source(source, ReaderOptions(), problems))
    assert [d.text for d in docs] == [long_text, "a\u2028b\rc", "last"]
    assert [d.id for d in docs] == [f"{path}:{n}" for n in (1, 2, 3)] and problems == []


def test_a_truncated_zst_or_gz_is_reported_where_it_ends(tmp_path: Path) -> None:
    data = b"".join(json.dumps({"text": f"line {i} " * 20}).encode() + b"\n" for i in range(20000))
    for name, packed in (
        ("t.jsonl.zst", zstandard.ZstdCompressor().compress(data)),
        ("t.jsonl.gz", gzip.compress(data)),
    ):
        path = tmp_path / name
        path.write_bytes(packed[: len(packed) // 2])
        ids, problems = _read(path, SKIP)
        assert ids, name  # what was readable is kept
        [problem] = [p for p in problems if "unreadable from here on" in p.message]
        assert problem.line is not None and problem.line >= len(ids), (name, problem)
        with pytest.raises(InputError, match="unreadable from here on"):
            _read(path, ReaderOptions())


def test_parquet_rows_count_from_1_in_ids_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": ["first", None, "third"]}), path)
    ids, problems = _read(path, SKIP)
    assert ids == [f"{path}#1", f"{path}#3"]
    assert [(p.line, p.row) for p in problems] == [(None, 2)]
    assert problems[0].message == "'text' is null, not text"
    with pytest.raises(InputError) as err:
        _read(path, ReaderOptions())
    assert (err.value.row, err.value.line) == (2, None)
    assert str(err.value).startswith(f"{path} row 2: corrupt corpus input: 'text' is null")
