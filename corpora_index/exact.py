"""Exact tier: every n-gram hash of the benchmark, with postings back to (item, position).

Probing a batch of corpus documents returns raw hits (which key, which document, where); turning
hits into per-item evidence happens once, after all shards are merged, in `scan.finalize`, so that
a frequency cap and longest spans see the whole corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from corpora_index._kernels import probe
from corpora_index.items import ItemRef
from corpora_index.ngrams import Hasher, TokenBatch
from corpora_index.settings import IndexSettings

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


def build_bitmap(keys: U64, bits_per_key: int = 64, max_bits: int = 32) -> tuple[U64, int]:
    """A bitmap over the top bits of the keys and the shift selecting them.

    More bits per key means fewer false positives; fewer keeps it in cache. Callers pick.
    """
    bits = max(16, int(np.ceil(np.log2(max(1, keys.shape[0]) * bits_per_key))))
    bits = min(bits, max_bits)
    words = np.zeros(max(1, (1 << bits) // 64), np.uint64)
    top = keys >> np.uint64(64 - bits)
    np.bitwise_or.at(words, top >> np.uint64(6), np.uint64(1) << (top & np.uint64(63)))
    return words, 64 - bits


@dataclass(frozen=True, slots=True)
class Hits:
    """Raw exact-tier hits of one batch: key index, document, corpus token position, char offsets."""

    key: I64
    doc: I64
    pos: I64
    start: I64
    end: I64


class ExactIndex:
    """Sorted unique n-gram keys of all items plus postings (item, n-gram position) per key."""

    def __init__(
        self,
        settings: IndexSettings,
        items: tuple[ItemRef, ...],
        item_tokens: I64,
        item_ngrams: I64,
        keys: U64,
        post_offsets: I64,
        post_item: I64,
        post_pos: I64,
    ) -> None:
        self.settings = settings
        self.items = items
        self.item_tokens = item_tokens
        self.item_ngrams = item_ngrams
        self.keys = keys
        self.post_offsets = post_offsets
        self.post_item = post_item
        self.post_pos = post_pos
        self.bitmap, self.shift = build_bitmap(keys)

    @classmethod
    def build(cls, settings: IndexSettings, items: tuple[ItemRef, ...]) -> ExactIndex:
        hasher = Hasher(settings)
        batch = hasher.tokens([item.text for item in items])
        hashes, valid = hasher.ngrams(batch)
        doc = batch.token_doc()
        item_tokens = np.diff(batch.doc_tokens).astype(np.int64)
        positions = np.flatnonzero(valid)
        owner = doc[positions]
        key_all = hashes[positions]
        rel = positions - batch.doc_tokens[owner]
        item_ngrams = np.bincount(owner, minlength=len(items)).astype(np.int64)
        order = np.lexsort((rel, owner, key_all))
        key_sorted = key_all[order]
        keys, first = np.unique(key_sorted, return_index=True)
        offsets = np.append(first, key_sorted.shape[0]).astype(np.int64)
        return cls(
            settings,
            items,
            item_tokens,
            item_ngrams,
            keys.astype(np.uint64),
            offsets,
            owner[order].astype(np.int64),
            rel[order].astype(np.int64),
        )

    def probe(self, hasher: Hasher, batch: TokenBatch, hashes: U64, valid: npt.NDArray[np.bool_]) -> Hits:
        pos, key = probe(hashes, valid, self.bitmap, self.shift, self.keys)
        doc = np.searchsorted(batch.doc_tokens, pos, side="right") - 1
        n = self.settings.n
        start_b = batch.tok_starts[pos]
        end_b = batch.tok_ends[pos + n - 1]
        start = np.empty_like(start_b)
        end = np.empty_like(end_b)
        for d in np.unique(doc):
            sel = doc == d
            start[sel] = batch.char_offsets(hasher.normalizer, int(d), start_b[sel])
            end[sel] = batch.char_offsets(hasher.normalizer, int(d), end_b[sel])
        rel = pos - batch.doc_tokens[doc]
        return Hits(key.astype(np.int64), doc.astype(np.int64), rel.astype(np.int64), start, end)

    def expand(self, key: I64) -> tuple[I64, I64, I64]:
        """For each hit key: (hit row, item, n-gram position in the item), one row per posting."""
        counts = self.post_offsets[key + 1] - self.post_offsets[key]
        row = np.repeat(np.arange(key.shape[0]), counts)
        base = np.repeat(self.post_offsets[key], counts)
        within = np.arange(row.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
        idx = base + within
        return row.astype(np.int64), self.post_item[idx], self.post_pos[idx]
