"""corpora_index: the fields of overlap.json report the measure they name.

MinHash: the window reported is the one with the best reported containment, whatever repeats
surround the copy.
"""

from __future__ import annotations

import numpy as np
import pytest

from contam.types import Item
from corpora_index import BenchmarkIndex, Document, ItemOverlap, finalize, scan_documents
from corpora_index.normalize import Normalizer

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
