"""MinHash tier: near-copies (small edits, inserted words, partial copies) the exact tier misses.

Sketches are datasketch 2.x `affine32` MinHashes of word-shingle hashes (xxh64 of `shingle` words,
low 32 bits), with an explicit seed and `num_perm`; the native kernels compute them bit for bit as
`datasketch.MinHash(scheme="affine32", hashfunc=...)` would (tested), but for every window at once.

Why pieces: a Jaccard LSH over item-sized windows misses partial copies (a question without its
answer, a 50% prefix), whose Jaccard with the item is 0.2-0.35. So each item is indexed as
overlapping pieces of `piece` shingles, and each corpus document is queried with sliding windows of
that size: a copied stretch of an item then has a high Jaccard with some piece. Every candidate is
verified exactly on the corpus around it, and what is reported is containment (the share of the
item's shingles found in an item-sized window) and that window's Jaccard.

Candidate windows come from datasketch's `MinHashLSH` (in memory, or in Redis through datasketch's
own storage). Asking it once per window would cost a Python call per window, so a sorted array of
all band keys of the indexed pieces screens windows first; it can only drop windows that share no
band with any piece, which the LSH would not return either.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from corpora_index._kernels import any_member, band_hashes, fmix32_low, window_signatures
from corpora_index.exact import build_bitmap
from corpora_index.items import ItemRef
from corpora_index.ngrams import Hasher, TokenBatch
from corpora_index.settings import IndexSettings, MinHashSettings

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]


def _datasketch() -> Any:
    try:
        import datasketch
    except ImportError as exc:  # pragma: no cover - the index extra installs it
        from contam.errors import BackendUnavailable

        raise BackendUnavailable("the MinHash tier needs datasketch: pip install 'contam[index]'") from exc
    return datasketch


def permutations(settings: MinHashSettings) -> tuple[U64, U64]:
    """datasketch's own affine32 permutation parameters for (num_perm, seed), widened to uint64."""
    ds = _datasketch()
    a, b = ds.MinHash(num_perm=settings.num_perm, seed=settings.seed, scheme=settings.scheme).permutations
    return a.astype(np.uint64), b.astype(np.uint64)


def lean_minhash(settings: MinHashSettings, signature: npt.NDArray[np.uint32]) -> Any:
    return _datasketch().LeanMinHash(seed=settings.seed, hashvalues=signature, scheme=settings.scheme)


@dataclass(frozen=True, slots=True)
class NearHits:
    """Best verified near-copy per (item, document) in one batch."""

    item: I64
    doc: I64
    containment: F64
    jaccard: F64
    start: I64
    end: I64


class MinHashIndex:
    """Pieces of every benchmark item: signatures, the LSH over them, and each item's shingle set."""

    def __init__(
        self,
        settings: IndexSettings,
        piece_item: I64,
        piece_sigs: npt.NDArray[np.uint32],
        shingle_offsets: I64,
        shingles: U64,
        shingle_counts: I64,
        lsh: Any | None = None,
    ) -> None:
        self.settings = settings
        self.mh = settings.minhash
        self.piece_item = piece_item
        self.piece_sigs = piece_sigs
        self.shingle_offsets = shingle_offsets  # CSR over items into `shingles` (sorted unique per item)
        self.shingles = shingles
        self.shingle_counts = shingle_counts  # shingles per item, repeats included (window length)
        self.a, self.b = permutations(self.mh)
        self.band_keys = np.unique(band_hashes(piece_sigs, self.mh.bands, self.mh.rows).ravel())
        # probed about bands x windows times: a small bitmap that stays in L2 beats a sparse one
        self.band_bitmap, self.band_shift = build_bitmap(self.band_keys, bits_per_key=16, max_bits=23)
        self._lsh = lsh

    # -- building -----------------------------------------------------------------------------

    @classmethod
    def build(cls, settings: IndexSettings, items: tuple[ItemRef, ...]) -> MinHashIndex:
        mh = settings.minhash
        hasher = Hasher(settings)
        batch = hasher.tokens([item.text for item in items])
        hashes, valid = hasher.ngrams(batch, mh.shingle)
        starts, ends = _shingle_bounds(batch, mh.shingle)
        counts = (ends - starts).astype(np.int64)
        offsets = np.zeros(len(items) + 1, np.int64)
        sets: list[U64] = []
        for i in range(len(items)):
            s = np.unique(hashes[starts[i] : ends[i]]) if counts[i] > 0 else np.zeros(0, np.uint64)
            sets.append(s)
            offsets[i + 1] = offsets[i] + s.shape[0]
        shingles = np.concatenate(sets) if sets else np.zeros(0, np.uint64)
        a, b = permutations(mh)
        # pieces overlap by half so any stretch of `piece` shingles of an item is mostly inside one
        mixed = fmix32_low(hashes)
        doc, _, sigs = window_signatures(mixed, starts, ends, a, b, mh.piece, max(1, mh.piece // 2))
        del valid
        return cls(settings, doc.astype(np.int64), sigs, offsets, shingles.astype(np.uint64), counts)

    @property
    def lsh(self) -> Any:
        """The datasketch LSH over the pieces, built in memory on first use unless one was given."""
        if self._lsh is None:
            self._lsh = self.make_lsh(None)
            self.insert_into(self._lsh)
        return self._lsh

    def make_lsh(self, storage_config: Mapping[str, Any] | None) -> Any:
        ds = _datasketch()
        return ds.MinHashLSH(
            num_perm=self.mh.num_perm,
            params=(self.mh.bands, self.mh.rows),
            storage_config=dict(storage_config) if storage_config else None,
            prepickle=False,  # keys are bytes: nothing is pickled, in memory or in Redis
        )

    def insert_into(self, lsh: Any) -> None:
        with lsh.insertion_session() as session:
            for p in range(self.piece_item.shape[0]):
                session.insert(
                    self.piece_key(p), lean_minhash(self.mh, self.piece_sigs[p]), check_duplication=False
                )

    def use_lsh(self, lsh: Any) -> None:
        self._lsh = lsh

    def piece_key(self, piece: int) -> bytes:
        return f"{int(self.piece_item[piece])}:{piece}".encode()

    # -- querying -----------------------------------------------------------------------------

    def item_set(self, item: int) -> U64:
        out: U64 = self.shingles[self.shingle_offsets[item] : self.shingle_offsets[item + 1]]
        return out

    def probe(self, hasher: Hasher, batch: TokenBatch) -> NearHits:
        mh = self.mh
        k = mh.shingle
        hashes, _ = hasher.ngrams(batch, k)
        bounds = _shingle_bounds(batch, k)
        win_doc, win_start, sigs = window_signatures(
            fmix32_low(hashes), bounds[0], bounds[1], self.a, self.b, mh.piece, mh.stride
        )
        if win_doc.shape[0] == 0:
            return _empty_near()
        bands = band_hashes(sigs, mh.bands, mh.rows)
        screened = np.flatnonzero(any_member(bands, self.band_bitmap, self.band_shift, self.band_keys))
        best: dict[tuple[int, int], tuple[float, float, int, int]] = {}
        lsh = self.lsh
        for w in screened:
            keys = lsh.query(lean_minhash(mh, sigs[w]))
            if not keys:
                continue
            doc = int(win_doc[w])
            items = {int(key.split(b":", 1)[0]) for key in keys}
            for item in items:
                found = self._verify(hashes, bounds, doc, int(win_start[w]), item)
                if found is None:
                    continue
                cont, jac, lo, hi = found
                prev = best.get((item, doc))
                if prev is None or (cont, jac) > (prev[0], prev[1]):
                    best[(item, doc)] = (cont, jac, lo, hi)
        if not best:
            return _empty_near()
        keys_sorted = sorted(best)
        item_arr = np.array([key[0] for key in keys_sorted], np.int64)
        doc_arr = np.array([key[1] for key in keys_sorted], np.int64)
        vals = [best[key] for key in keys_sorted]
        lo_tok = np.array([v[2] for v in vals], np.int64)
        hi_tok = np.array([v[3] for v in vals], np.int64)
        start = np.empty_like(lo_tok)
        end = np.empty_like(hi_tok)
        for d in np.unique(doc_arr):
            sel = doc_arr == d
            start[sel] = batch.char_offsets(hasher.normalizer, int(d), batch.tok_starts[lo_tok[sel]])
            end[sel] = batch.char_offsets(hasher.normalizer, int(d), batch.tok_ends[hi_tok[sel] + k - 2])
        return NearHits(
            item_arr,
            doc_arr,
            np.array([v[0] for v in vals], np.float64),
            np.array([v[1] for v in vals], np.float64),
            start,
            end,
        )

    def _verify(
        self, hashes: U64, bounds: tuple[I64, I64], doc: int, win_start: int, item: int
    ) -> tuple[float, float, int, int] | None:
        """Exact containment and Jaccard of the item in the best item-sized window near a candidate.

        Best by what is reported: most distinct item shingles, then Jaccard, then the earliest.
        Counting matching positions instead would let a run of one repeated item shingle outscore
        the real copy next to it.
        """
        target = self.item_set(item)
        if target.shape[0] == 0:
            return None
        length = max(int(self.shingle_counts[item]), 1)
        d0, d1 = int(bounds[0][doc]), int(bounds[1][doc])
        lo = max(d0, win_start - length)
        hi = min(d1, win_start + self.mh.piece + length)
        region = hashes[lo:hi]
        pos = np.searchsorted(target, region)
        inside = (pos < target.shape[0]) & (target[np.minimum(pos, target.shape[0] - 1)] == region)
        width = min(length, region.shape[0])
        common, window_set = _distinct_in_windows(region, inside, width)
        containment = common / target.shape[0]
        jaccard = common / np.maximum(target.shape[0] + window_set - common, 1)
        best = int(np.lexsort((-jaccard, -containment))[0])  # stable: ties keep the earliest window
        # token range of the window: shingle i covers tokens i .. i+k-1 (returned as lo, last shingle + 1)
        return float(containment[best]), float(jaccard[best]), lo + best, lo + best + width

    # -- a byte form for broadcasting to workers (no pickle) ---------------------------------------

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            settings=np.frombuffer(self.settings.model_dump_json().encode(), np.uint8),
            piece_item=self.piece_item,
            piece_sigs=self.piece_sigs,
            shingle_offsets=self.shingle_offsets,
            shingles=self.shingles,
            shingle_counts=self.shingle_counts,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> MinHashIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            settings = IndexSettings.model_validate(json.loads(z["settings"].tobytes()))
            return cls(
                settings,
                z["piece_item"],
                z["piece_sigs"],
                z["shingle_offsets"],
                z["shingles"],
                z["shingle_counts"],
            )


def _shingle_bounds(batch: TokenBatch, k: int) -> tuple[I64, I64]:
    """Per document, the range [start, end) of shingle positions that stay inside it."""
    starts = batch.doc_tokens[:-1]
    ends = np.maximum(batch.doc_tokens[1:] - (k - 1), starts)
    return starts.astype(np.int64), ends.astype(np.int64)


def _distinct_in_windows(values: U64, inside: npt.NDArray[np.bool_], width: int) -> tuple[I64, I64]:
    """For every window values[s : s + width]: its distinct `inside` values and its distinct values.

    Slid in one pass: a position counts in window s when its value did not occur in s .. it - 1.
    """
    size = values.shape[0]
    starts = max(size - width + 1, 1)
    order = np.lexsort((np.arange(size), values))
    repeat = values[order][1:] == values[order][:-1]
    prev = np.full(size, -1, np.int64)  # previous position of the same value, -1 if none
    nxt = np.full(size, size, np.int64)  # next position of the same value, size if none
    prev[order[1:][repeat]] = order[:-1][repeat]
    nxt[order[:-1][repeat]] = order[1:][repeat]
    first = prev[:width] < 0
    s = np.arange(starts - 1)
    # from window s to s + 1: position s leaves (its value goes unless it recurs inside the window),
    # position s + width enters (its value is new unless it occurred in s + 1 .. s + width - 1)
    leaves = nxt[s] >= s + width
    enters = prev[s + width] <= s
    counts = []
    for weight in (inside, np.ones(size, np.bool_)):
        step = enters * weight[s + width].astype(np.int64) - leaves * weight[s].astype(np.int64)
        counts.append(np.concatenate(([int((first & weight[:width]).sum())], step)).cumsum())
    return counts[0], counts[1]


def _empty_near() -> NearHits:
    z = np.zeros(0, np.int64)
    f = np.zeros(0, np.float64)
    return NearHits(z, z, f, f, z, z)
