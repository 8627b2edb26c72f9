"""corpora_index: the fields of overlap.json tell one story, and report the measure they name.

MinHash: the window reported is the one with the best reported containment, whatever repeats
surround the copy. Exact tier: matched, ngram_fraction, token_coverage, longest_span and documents
agree with each other under any frequency cap, and the per-document fold changes none of them.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from contam.types import Item
from corpora_index import (
    BenchmarkIndex,
    CorpusIndex,
    Document,
    ItemOverlap,
    OverlapReport,
    ShardResult,
    build_index,
    expand_sources,
    finalize,
    scan_documents,
    scan_shard,
)
from corpora_index import scan as scan_module
from corpora_index.normalize import Normalizer

N = 13
FILLER = " ".join(f"filler{i}" for i in range(200))

# -- MinHash: the best window is chosen by containment, the measure reported ------------------------

STORY = (
    "Maria bakes very very very small muffins for the school fair every spring and sells them "
    "in paper bags of six. This year she baked four trays of twelve muffins each, gave nine to her "
    "neighbours, ate two with her brother and sold the rest at three dollars a bag. "
    "How many dollars did Maria earn from the muffins she sold at the fair this year?"
)


def _edited_story() -> str:
    words = Normalizer().tokens(STORY)
    return " ".join(w if i % 10 != 4 else "EDIT" for i, w in enumerate(words))  # one word in 10


def _near(text: str) -> ItemOverlap:
    index = BenchmarkIndex.build([Item(id="s", partition="t", text=STORY)])
    return finalize(index, scan_documents(index, [Document("d", text)])).items[0]


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_run_of_one_repeated_item_shingle_does_not_hide_the_copy_beside_it(where: str) -> None:
    copy = _edited_story()
    alone = _near(FILLER + " " + copy + " " + FILLER).minhash
    assert alone is not None and alone.containment > 0.6
    # "very very very" is one of the story's shingles: 300 of them match at every position
    repeats = " ".join(["very"] * 300)
    text = " ".join([FILLER, repeats, copy, FILLER] if where == "before" else [FILLER, copy, repeats, FILLER])
    found = _near(text).minhash
    assert found is not None
    assert (found.containment, found.jaccard) == (alone.containment, alone.jaccard)
    start = text.index(copy)
    window = text[found.start : found.end]
    assert found.start < start + len(copy) and found.end > start
    assert "maria bakes" in window and "this year" in window


def test_distinct_counts_in_sliding_windows_equal_a_direct_count() -> None:
    from corpora_index.minhash import _distinct_in_windows

    rng = np.random.default_rng(7)
    for _ in range(200):
        size = int(rng.integers(0, 40))
        values = rng.integers(0, 6, size).astype(np.uint64)
        inside = values < 3  # membership depends on the value, as item-set membership does
        width = min(int(rng.integers(1, 12)), size)
        common, distinct = _distinct_in_windows(values, inside, width)
        starts = max(size - width + 1, 1)
        want_common = [len(set(values[s : s + width][inside[s : s + width]].tolist())) for s in range(starts)]
        want_distinct = [len(set(values[s : s + width].tolist())) for s in range(starts)]
        assert common.tolist() == want_common and distinct.tolist() == want_distinct


# -- exact tier: one story under any frequency cap ----------------------------------------------------

_ALPHABET = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
)
WORDS = _ALPHABET.split(" ")
ITEM = " ".join(WORDS)  # 26 words: 14 13-grams
HEAD = " ".join(WORDS[:20])  # 13-grams 0..7
TAIL = " ".join(WORDS[12:])  # 13-grams 12, 13: no n-gram in common with HEAD


def _index() -> BenchmarkIndex:
    other = "the quick brown fox jumps over the lazy dog while seven wizards quietly hex the judge again"
    return BenchmarkIndex.build(
        [Item(id="a", partition="t", text=ITEM), Item(id="b", partition="t", text=other)], minhash=False
    )


def _check(item: ItemOverlap) -> None:
    """What every item of overlap.json must satisfy, whatever the cap."""
    signals = [
        item.matched,
        item.ngram_fraction > 0,
        item.token_coverage > 0,
        item.longest_span > 0,
        item.documents_total > 0,
        bool(item.documents),
    ]
    assert len(set(signals)) == 1, item
    if not item.matched:
        return
    assert N <= item.longest_span <= round(item.token_coverage * item.tokens)
    assert len(item.documents) <= item.documents_total
    assert all(d.spans for d in item.documents), "a listed document shows at least one span"
    longest = [max(s.tokens for s in d.spans) for d in item.documents]
    assert longest == sorted(longest, reverse=True) and longest[0] == item.longest_span


def test_an_item_whose_only_uncapped_ngrams_are_beyond_the_kept_spans_is_matched() -> None:
    from corpora_index.scan import SPANS_PER_DOCUMENT

    index = _index()
    # more copies of HEAD than are kept per document, then one TAIL (the shortest: not among the kept)
    busy = " ".join([FILLER] + [HEAD, "sep sep"] * SPANS_PER_DOCUMENT + [TAIL, FILLER])
    docs = [Document("busy", busy), Document("head", FILLER + " " + HEAD)]
    result = scan_documents(index, docs)
    a = finalize(index, result).items[0]
    assert a.matched and a.ngram_fraction == 10 / 14 and a.longest_span == 20
    _check(a)
    # HEAD's n-grams are in two documents, TAIL's in one: a cap of 1 leaves only TAIL
    capped = finalize(index, result, frequency_cap=1).items[0]
    _check(capped)
    assert capped.matched and capped.ngram_fraction == 2 / 14
    assert capped.token_coverage == 14 / 26 and capped.longest_span == 14
    [doc] = capped.documents
    assert doc.id == "busy" and [s.tokens for s in doc.spans] == [14]
    assert busy[doc.spans[0].start : doc.spans[0].end] == TAIL and doc.spans_omitted == 0


def test_after_a_cap_the_longest_piece_may_be_in_a_copy_beyond_the_kept_ones() -> None:
    from corpora_index.scan import SPANS_PER_DOCUMENT

    index = _index()
    kept = " ".join(WORDS[:22])  # 13-grams 0..9, 22 words: the longest, kept
    beyond = " ".join(WORDS[6:])  # 13-grams 6..13, 20 words: not among the kept
    busy = " ".join([FILLER] + [kept, "sep sep"] * SPANS_PER_DOCUMENT + [beyond, FILLER])
    gram3 = " ".join(WORDS[3:16])  # 13-gram 3 alone, in two more documents
    docs = [Document("busy", busy), Document("o1", gram3), Document("o2", gram3)]
    result = scan_documents(index, docs)
    for cap in (None, 1, 2, 3):
        _check(finalize(index, result, frequency_cap=cap).items[0])
    # a cap of 2 drops 13-gram 3: kept copies break into 15 + 18 words, the other copy stays whole
    capped = finalize(index, result, frequency_cap=2).items[0]
    assert capped.ngram_fraction == 13 / 14 and capped.token_coverage == 1.0
    assert capped.longest_span == 20
    [doc] = capped.documents
    assert doc.id == "busy" and doc.spans[-1].tokens == 20
    assert busy[doc.spans[-1].start : doc.spans[-1].end] == beyond
    assert len(doc.spans) == SPANS_PER_DOCUMENT and len(doc.spans) + doc.spans_omitted == 2 * 16 + 1


def _random_corpus(seed: int) -> list[Document]:
    rng = random.Random(seed)
    docs = []
    for d in range(12):
        parts = [FILLER[: rng.randrange(0, 300)]]
        for _ in range(rng.randrange(0, 40)):
            lo = rng.randrange(0, 14)
            hi = rng.randrange(lo + N, 27)
            parts.append(" ".join(WORDS[lo:hi]))
            parts.append(rng.choice(["sep", "x y", "", "alpha"]))
        docs.append(Document(f"doc{d:02d}", " ".join(parts)))
    return docs


def _story(report: OverlapReport) -> list[tuple[object, ...]]:
    """All of a report but which spans are listed: fraction, coverage, longest, documents, span counts."""
    return [
        (
            i.matched,
            i.ngram_fraction,
            i.token_coverage,
            i.longest_span,
            i.documents_total,
            tuple(
                (d.id, len(d.spans) + d.spans_omitted, max(s.tokens for s in d.spans)) for d in i.documents
            ),
        )
        for i in report.items
    ]


@pytest.mark.parametrize("seed", range(6))
def test_the_fold_changes_no_field_under_any_cap(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    index = _index()
    docs = _random_corpus(seed)
    folded = scan_documents(index, docs)
    parts = ShardResult.concat([scan_documents(index, docs[i : i + 5]) for i in range(0, len(docs), 5)])
    monkeypatch.setattr(scan_module, "SPANS_PER_DOCUMENT", 10**9)
    unbounded = scan_documents(index, docs)
    for cap in (None, 1, 2, 3, 5, 8, 12):
        want = finalize(index, unbounded, frequency_cap=cap)
        monkeypatch.setattr(scan_module, "SPANS_PER_DOCUMENT", 16)
        got = finalize(index, folded, frequency_cap=cap)
        assert finalize(index, parts, frequency_cap=cap) == got
        monkeypatch.setattr(scan_module, "SPANS_PER_DOCUMENT", 10**9)
        for item in got.items:
            _check(item)
        assert _story(got) == _story(want), cap


def test_persistent_and_streamed_agree_under_a_cap(tmp_path: Path) -> None:
    index = _index()
    folder = tmp_path / "corpus"
    folder.mkdir()
    for d in _random_corpus(11):
        (folder / f"{d.id}.txt").write_text(d.text, encoding="utf-8")
    sources = expand_sources([folder])
    build_index(sources, tmp_path / "idx", shard_bytes=3000)
    queried = CorpusIndex(tmp_path / "idx").query(index)
    streamed = scan_shard(index, sources)
    for cap in (None, 1, 3, 6):
        assert finalize(index, queried, frequency_cap=cap) == finalize(index, streamed, frequency_cap=cap)
