"""Native hot loops (numba): tokenising, xxh64 hashing, probing, MinHash window signatures.

Everything here works on flat numpy arrays and never builds a Python object per token or
n-gram; that is what lets the exact tier stream tens of MB/s per core. `xxh64` is the real
XXH64 (tests compare it with the `xxhash` package bit for bit). Compiled on first use and
cached on disk (`cache=True`), so later processes and Ray workers load it in well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def _jit(fn: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True, boundscheck=False)(fn))


_P1 = np.uint64(11400714785074694791)
_P2 = np.uint64(14029467366897019727)
_P3 = np.uint64(1609587929392839161)
_P4 = np.uint64(9650029242287828579)
_P5 = np.uint64(2870177450012600261)

# Byte classes for the tokenizer.
SEP = 0
WORD = 1
MARK = 2  # a punctuation byte that is its own token (when punctuation is not folded)


@_jit
def _rotl(x: Any, r: int) -> Any:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@_jit
def _round(acc: Any, lane: Any) -> Any:
    acc = acc + lane * _P2
    acc = _rotl(acc, 31)
    return acc * _P1


@_jit
def _avalanche(h: Any) -> Any:
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h


@_jit
def _read64(buf: Any, i: int) -> Any:
    v = np.uint64(0)
    for k in range(8):
        v |= np.uint64(buf[i + k]) << np.uint64(8 * k)
    return v


@_jit
def _read32(buf: Any, i: int) -> Any:
    v = np.uint64(0)
    for k in range(4):
        v |= np.uint64(buf[i + k]) << np.uint64(8 * k)
    return v


@_jit
def xxh64_bytes(buf: Any, start: int, end: int, seed: Any) -> Any:
    """XXH64 of buf[start:end] (uint8 array)."""
    length = end - start
    i = start
    if length >= 32:
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed
        v4 = seed - _P1
        while i + 32 <= end:
            v1 = _round(v1, _read64(buf, i))
            v2 = _round(v2, _read64(buf, i + 8))
            v3 = _round(v3, _read64(buf, i + 16))
            v4 = _round(v4, _read64(buf, i + 24))
            i += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = (h ^ _round(np.uint64(0), v1)) * _P1 + _P4
        h = (h ^ _round(np.uint64(0), v2)) * _P1 + _P4
        h = (h ^ _round(np.uint64(0), v3)) * _P1 + _P4
        h = (h ^ _round(np.uint64(0), v4)) * _P1 + _P4
    else:
        h = seed + _P5
    h += np.uint64(length)
    while i + 8 <= end:
        h ^= _round(np.uint64(0), _read64(buf, i))
        h = _rotl(h, 27) * _P1 + _P4
        i += 8
    if i + 4 <= end:
        h ^= _read32(buf, i) * _P1
        h = _rotl(h, 23) * _P2 + _P3
        i += 4
    while i < end:
        h ^= np.uint64(buf[i]) * _P5
        h = _rotl(h, 11) * _P1
        i += 1
    return _avalanche(h)


@_jit
def xxh64_lanes(lanes: Any, start: int, count: int, seed: Any) -> Any:
    """XXH64 of the little-endian bytes of lanes[start:start+count] (uint64), without copying."""
    length = count * 8
    i = start
    end = start + count
    if length >= 32:
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed
        v4 = seed - _P1
        while i + 4 <= end:
            v1 = _round(v1, lanes[i])
            v2 = _round(v2, lanes[i + 1])
            v3 = _round(v3, lanes[i + 2])
            v4 = _round(v4, lanes[i + 3])
            i += 4
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = (h ^ _round(np.uint64(0), v1)) * _P1 + _P4
        h = (h ^ _round(np.uint64(0), v2)) * _P1 + _P4
        h = (h ^ _round(np.uint64(0), v3)) * _P1 + _P4
        h = (h ^ _round(np.uint64(0), v4)) * _P1 + _P4
    else:
        h = seed + _P5
    h += np.uint64(length)
    while i < end:
        h ^= _round(np.uint64(0), lanes[i])
        h = _rotl(h, 27) * _P1 + _P4
        i += 1
    return _avalanche(h)


@_jit
def tokenize(buf: Any, classes: Any) -> tuple[Any, Any, Any]:
    """Split a byte buffer into tokens by byte class; return (starts, ends, xxh64 of each token).

    Runs of WORD bytes form a token, every MARK byte is a token, SEP bytes separate: so
    re-spacing and re-wrapping never change the token sequence.
    """
    n = buf.shape[0]
    starts = np.empty(n, np.int64)
    ends = np.empty(n, np.int64)
    hashes = np.empty(n, np.uint64)
    t = 0
    i = 0
    zero = np.uint64(0)
    while i < n:
        c = classes[buf[i]]
        if c == 0:
            i += 1
            continue
        j = i + 1
        if c == 1:
            while j < n and classes[buf[j]] == 1:
                j += 1
        starts[t] = i
        ends[t] = j
        hashes[t] = xxh64_bytes(buf, i, j, zero)
        t += 1
        i = j
    return starts[:t].copy(), ends[:t].copy(), hashes[:t].copy()


@_jit
def ngram_hashes(token_hashes: Any, n: int, seed: Any) -> Any:
    """XXH64(seed) of each window of n token hashes: out[i] covers tokens i .. i+n-1."""
    count = token_hashes.shape[0] - n + 1
    if count <= 0:
        return np.empty(0, np.uint64)
    out = np.empty(count, np.uint64)
    for i in range(count):
        out[i] = xxh64_lanes(token_hashes, i, n, seed)
    return out


@_jit
def probe(hashes: Any, valid: Any, bitmap: Any, shift: int, keys: Any) -> tuple[Any, Any]:
    """Positions whose hash is in `keys` (sorted uint64), and the index of the key each matched.

    A bitmap over the top bits of each key rejects almost every miss with one memory read; only
    bitmap hits pay for the binary search.
    """
    n = hashes.shape[0]
    pos = np.empty(n, np.int64)
    idx = np.empty(n, np.int64)
    found = 0
    sh = np.uint64(shift)
    nkeys = keys.shape[0]
    for i in range(n):
        if not valid[i]:
            continue
        h = hashes[i]
        b = h >> sh
        if not (bitmap[b >> np.uint64(6)] >> (b & np.uint64(63))) & np.uint64(1):
            continue
        lo = 0
        hi = nkeys
        while lo < hi:
            mid = (lo + hi) >> 1
            if keys[mid] < h:
                lo = mid + 1
            else:
                hi = mid
        if lo < nkeys and keys[lo] == h:
            pos[found] = i
            idx[found] = lo
            found += 1
    return pos[:found].copy(), idx[:found].copy()


_MASK32 = np.uint64(0xFFFFFFFF)


@_jit
def fmix32_low(hashes: Any) -> Any:
    """datasketch's affine32 input: the low 32 bits of each shingle hash through fmix32.

    Kept in uint64 with explicit masks: numba widens 32-bit products, so wrapping at 2^32 has to
    be spelled out.
    """
    out = np.empty(hashes.shape[0], np.uint64)
    for i in range(hashes.shape[0]):
        h = hashes[i] & _MASK32
        h ^= h >> np.uint64(16)
        h = (h * np.uint64(0x85EBCA6B)) & _MASK32
        h ^= h >> np.uint64(13)
        h = (h * np.uint64(0xC2B2AE35)) & _MASK32
        h ^= h >> np.uint64(16)
        out[i] = h
    return out


@_jit
def _window_starts(n: int, window: int, stride: int) -> Any:
    if n <= window:
        return np.zeros(1, np.int64)
    count = (n - window + stride - 1) // stride + 1
    starts = np.empty(count, np.int64)
    for w in range(count):
        starts[w] = min(w * stride, n - window)
    return starts


@_jit
def window_signatures(
    mixed: Any, doc_starts: Any, doc_ends: Any, a: Any, b: Any, window: int, stride: int
) -> tuple[Any, Any, Any]:
    """MinHash signatures (affine32: min of a*h+b mod 2^32) of windows of `window` shingles.

    Windows never cross a document: doc d owns shingles doc_starts[d]..doc_ends[d]. In each
    document windows start every `stride` shingles (the last is aligned to the end; a document
    shorter than a window is one window). Minima are taken once per block of `stride` shingles
    and then combined, so each shingle is permuted once. Returns (doc, start, signatures).
    """
    num_perm = a.shape[0]
    maxv = np.uint64(0xFFFFFFFF)
    total = 0
    ndocs = doc_starts.shape[0]
    for d in range(ndocs):
        n = doc_ends[d] - doc_starts[d]
        if n > 0:
            total += _window_starts(n, window, stride).shape[0]
    win_doc = np.empty(total, np.int64)
    win_start = np.empty(total, np.int64)
    sigs = np.empty((total, num_perm), np.uint32)
    sig = np.empty(num_perm, np.uint64)
    w_out = 0
    for d in range(ndocs):
        d0 = doc_starts[d]
        n = doc_ends[d] - d0
        if n <= 0:
            continue
        nblocks = (n + stride - 1) // stride
        blocks = np.full((nblocks, num_perm), maxv, np.uint64)
        for s in range(n):
            row = blocks[s // stride]
            h = mixed[d0 + s]
            for p in range(num_perm):
                v = (a[p] * h + b[p]) & maxv
                row[p] = min(row[p], v)
        starts = _window_starts(n, window, stride)
        for w in range(starts.shape[0]):
            lo = starts[w]
            hi = min(lo + window, n)
            sig[:] = maxv
            # whole blocks inside the window reuse their minima; a ragged edge is permuted again
            s = lo
            while s < hi:
                if s % stride == 0 and s + stride <= hi:
                    row = blocks[s // stride]
                    for p in range(num_perm):
                        sig[p] = min(sig[p], row[p])
                    s += stride
                else:
                    h = mixed[d0 + s]
                    for p in range(num_perm):
                        sig[p] = min(sig[p], (a[p] * h + b[p]) & maxv)
                    s += 1
            win_doc[w_out] = d
            win_start[w_out] = d0 + lo
            for p in range(num_perm):
                sigs[w_out, p] = np.uint32(sig[p])
            w_out += 1
    return win_doc, win_start, sigs


@_jit
def band_hashes(sigs: Any, bands: int, rows: int) -> Any:
    """One uint64 per (window, band): XXH64 of the band's 32-bit values (a prefilter key)."""
    count = sigs.shape[0]
    out = np.empty((count, bands), np.uint64)
    for w in range(count):
        for band in range(bands):
            h = np.uint64(band) * _P1 + _P5
            for r in range(rows):
                h = _round(h, np.uint64(sigs[w, band * rows + r]))
            out[w, band] = _avalanche(h)
    return out


@_jit
def any_member(values: Any, bitmap: Any, shift: int, keys: Any) -> Any:
    """For each row of `values` (2-D uint64), whether any entry is in sorted `keys` (bitmap first)."""
    rows = values.shape[0]
    out = np.zeros(rows, np.bool_)
    nkeys = keys.shape[0]
    sh = np.uint64(shift)
    for w in range(rows):
        for j in range(values.shape[1]):
            h = values[w, j]
            bit = h >> sh
            if not (bitmap[bit >> np.uint64(6)] >> (bit & np.uint64(63))) & np.uint64(1):
                continue
            lo = 0
            hi = nkeys
            while lo < hi:
                mid = (lo + hi) >> 1
                if keys[mid] < h:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < nkeys and keys[lo] == h:
                out[w] = True
                break
    return out
