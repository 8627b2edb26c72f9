"""Persistent corpus index: resuming reuses only shards whose files are unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path

from contam.types import Item
from corpora_index import BenchmarkIndex, CorpusIndex, build_index, expand_sources, finalize

ITEM = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
)


def _filler(i: int) -> str:
    return " ".join(f"w{i}x{k:04d}" for k in range(60))


def test_an_edited_file_of_the_same_size_is_reindexed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"{i}.txt").write_text(_filler(i), encoding="utf-8")
    out = tmp_path / "idx"
    index = BenchmarkIndex.build([Item(id="a", partition="test", text=ITEM)], minhash=False)
    first = build_index(expand_sources([corpus]), out, shard_bytes=100)
    assert (first.shards, first.built, first.reused) == (3, 3, 0)
    assert not finalize(index, CorpusIndex(out).query(index)).items[0].matched
    meta = json.loads((out / "shard-00001" / "shard.json").read_text())
    assert meta["files"][0]["mtime_ns"] == (corpus / "1.txt").stat().st_mtime_ns

    # same path, same size, other words: only its shard is rebuilt
    edited = corpus / "1.txt"
    old = edited.read_text(encoding="utf-8")
    new = (ITEM + " " + old)[: len(old)]
    assert len(new) == len(old)
    before = edited.stat().st_mtime_ns
    edited.write_text(new, encoding="utf-8")
    os.utime(edited, ns=(before + 10**9, before + 10**9))  # coarse clocks could give the same mtime
    again = build_index(expand_sources([corpus]), out, shard_bytes=100)
    assert (again.built, again.reused) == (1, 2)
    report = finalize(index, CorpusIndex(out).query(index))
    assert report.items[0].matched and report.items[0].documents[0].id == str(edited)
    # and a third run, with nothing edited, reuses everything
    assert build_index(expand_sources([corpus]), out, shard_bytes=100).reused == 3


def test_shards_of_an_older_build_without_mtimes_are_rebuilt(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "0.txt").write_text(_filler(0), encoding="utf-8")
    out = tmp_path / "idx"
    build_index(expand_sources([corpus]), out)
    shard_json = out / "shard-00000" / "shard.json"
    meta = json.loads(shard_json.read_text())
    del meta["files"]
    shard_json.write_text(json.dumps(meta))
    stats = build_index(expand_sources([corpus]), out)
    assert (stats.built, stats.reused) == (1, 0)
