"""Progress in bytes as documents are read, and big JSONL files cut into line ranges for workers."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest

from contam.types import Item
from corpora_index import (
    BenchmarkIndex,
    CorpusIndex,
    ReaderOptions,
    ShardTask,
    build_index,
    expand_sources,
    finalize,
    run_local,
)
from corpora_index.api import check_index, scan
from corpora_index.readers import plan_shards, read_source, split_sources

ITEM = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
)


def _big_jsonl(path: Path, lines: int = 6000, every: int = 997) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            text = ITEM if i % every == 5 else " ".join(f"w{i}n{k}" for k in range(60))
            fh.write(json.dumps({"text": text}) + "\n")
        fh.write(json.dumps({"text": "last line without a newline " + ITEM}))
    return path


def test_split_sources_cut_a_plain_jsonl_into_whole_line_ranges(tmp_path: Path) -> None:
    path = _big_jsonl(tmp_path / "big.jsonl")
    [whole] = expand_sources([path])
    ranges = split_sources([whole], 100_000)
    assert len(ranges) > 10
    data = path.read_bytes()
    assert ranges[0].offset == 0 and ranges[-1].end == len(data)
    for a, b in itertools.pairwise(ranges):
        assert a.end == b.offset and data[a.end - 1 : a.end] == b"\n"
        assert b.first_line == data[: b.offset].count(b"\n") + 1
    assert sum(r.size for r in ranges) == whole.size
    docs = [(d.id, d.text) for r in ranges for d in read_source(r, ReaderOptions(), [])]
    assert docs == [(d.id, d.text) for d in read_source(whole, ReaderOptions(), [])]
    # compressed files and small ones stay whole
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert split_sources(expand_sources([gz]), 1000) == expand_sources([gz])
    assert split_sources([whole], whole.size) == [whole]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cut_file_gives_the_whole_file_report_and_progress_adds_up(tmp_path: Path, workers: int) -> None:
    path = _big_jsonl(tmp_path / "big.jsonl")
    sources = expand_sources([path])
    index = BenchmarkIndex.build([Item(id="a", partition="test", text=ITEM)], minhash=False)
    whole = finalize(index, run_local(index, [ShardTask(tuple(sources), ReaderOptions(), False, 1 << 20)]))
    tasks = [
        ShardTask(shard, ReaderOptions(), False, 1 << 20)
        for shard in plan_shards(split_sources(sources, 1_100_000), 1_100_000)
    ]
    assert len(tasks) == 3
    heard: list[int] = []
    # workers send progress as they read (through a queue), not only when a shard is done
    run = run_local(index, tasks, workers=workers, on_bytes=heard.append, progress_step=64 << 10)
    cut = finalize(index, run)
    assert cut == whole and cut.items[0].documents_total == 8
    assert cut.corpus.sources == (str(path),)
    assert sum(heard) == sources[0].size
    # a first 1 MB read heard before its shard finished (a finished shard's rest comes as one sum)
    assert (1 << 20) in heard


def test_progress_advances_within_one_file(tmp_path: Path) -> None:
    path = _big_jsonl(tmp_path / "big.jsonl", lines=12000)
    [source] = expand_sources([path])
    assert source.size > 4 << 20
    items = [Item(id="a", partition="test", text=ITEM)]
    heard: list[int] = []
    seen: list[object] = []
    # one worker: the bar hears the file a MB at a time, not once at the end
    scan(items, [path], minhash=False, on_sources=seen.extend, on_progress=heard.append)
    assert seen == [source] and sum(heard) == source.size and len(heard) >= 4
    built: list[int] = []
    build_index([source], tmp_path / "idx", on_bytes=built.append)
    assert sum(built) == source.size and len(built) >= 4
    # a resumed build reports reused shards at once
    again: list[int] = []
    build_index([source], tmp_path / "idx", on_bytes=again.append)
    assert again == [source.size]


def test_index_query_advances_per_shard_in_corpus_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.txt").write_text(" ".join(f"w{i}n{k}" for k in range(300)) + " " + ITEM)
    build_index(expand_sources([folder]), tmp_path / "idx", shard_bytes=100)
    total: list[int] = []
    heard: list[int] = []
    items = [Item(id="a", partition="test", text=ITEM)]
    report = check_index(items, tmp_path / "idx", on_total=total.append, on_progress=heard.append)
    assert report.items[0].documents_total == 4
    assert total == [CorpusIndex(tmp_path / "idx").corpus_bytes] == [report.corpus.bytes]
    assert len(heard) == 4 and sum(heard) == total[0]


def test_the_bar_says_when_its_rate_counts_compressed_bytes(tmp_path: Path) -> None:
    from contam.cli.overlap import _Bar

    plain = tmp_path / "a.jsonl"
    plain.write_text('{"text": "x"}\n')
    gz = tmp_path / "b.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"text": "x"}\n'))
    bar = _Bar("overlap", quiet=True)
    bar.sources(expand_sources([plain]))
    assert bar.label == "overlap" and bar.bar.total == plain.stat().st_size
    bar.sources(expand_sources([plain, gz]))
    assert bar.label == "overlap (compressed MB/s)"
