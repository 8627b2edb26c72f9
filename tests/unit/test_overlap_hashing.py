"""corpora_index: normaliser, native xxh64 hashing, MinHash sketches against datasketch itself."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xxhash

from corpora_index._kernels import fmix32_low, tokenize, window_signatures
from corpora_index.ngrams import Hasher
from corpora_index.normalize import Normalizer
from corpora_index.settings import IndexSettings, NormalizerConfig

TEXT = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May? supercalifragilisticexpialidocious_words "
    "and a_very_long_identifier_name_that_is_longer_than_thirty_two_bytes_for_the_long_path"
)


def test_token_hashes_are_xxh64_of_the_normalised_words() -> None:
    norm = Normalizer()
    buf = np.frombuffer(norm.encode(TEXT), np.uint8)
    starts, ends, hashes = tokenize(buf, norm.classes)
    data = buf.tobytes()
    assert len(starts) > 40
    for s, e, h in zip(starts, ends, hashes, strict=True):
        assert int(h) == xxhash.xxh64_intdigest(data[s:e], 0)


@pytest.mark.parametrize("n", [3, 8, 13])
def test_ngram_hashes_are_seeded_xxh64_of_the_word_hashes(n: int) -> None:
    hasher = Hasher(IndexSettings(n=n, seed=12345))
    batch = hasher.tokens([TEXT])
    hashes, valid = hasher.ngrams(batch)
    assert valid.all() and len(hashes) == len(batch.tok_hashes) - n + 1
    for i in range(len(hashes)):
        expected = xxhash.xxh64_intdigest(batch.tok_hashes[i : i + n].tobytes(), 12345)
        assert int(hashes[i]) == expected


def test_normaliser_folds_unicode_case_punctuation_and_whitespace() -> None:
    norm = Normalizer()
    assert (
        norm.normalize("Ｈｅｌｌｏ,\u00a0WORLD!!\n\n  it’s\tthe—end_of_line")
        == "hello world it s the end of line"
    )
    assert norm.normalize("Costs $12.50 (3 items)") == "costs 12 50 3 items"  # digits kept by default
    folded = Normalizer(NormalizerConfig(fold_digits=True))
    assert folded.normalize("Costs $12.50 (3 items)") == "costs 00 00 0 items"
    marks = Normalizer(NormalizerConfig(fold_punctuation=False))
    assert marks.normalize("a, b!") == "a , b !"


def test_rewrapped_respaced_recased_copies_hash_the_same() -> None:
    import textwrap

    hasher = Hasher(IndexSettings())
    variants = [TEXT, TEXT.upper(), textwrap.fill(TEXT, 60, break_long_words=False).replace(" ", "   ")]
    assert "\n" in variants[2]
    results = [hasher.ngrams(hasher.tokens([v]))[0] for v in variants]
    for r in results[1:]:
        assert np.array_equal(r, results[0])


def test_ngrams_never_cross_documents() -> None:
    hasher = Hasher(IndexSettings(n=3))
    batch = hasher.tokens(["a b c d", "e f"])
    _, valid = hasher.ngrams(batch)
    assert valid.tolist() == [True, True, False, False]


def test_window_signatures_equal_datasketch_affine32_minhash() -> None:
    from datasketch import MinHash

    rng = np.random.default_rng(0)
    shingles = rng.integers(0, 2**63, size=90, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    perm = MinHash(num_perm=64, seed=7, scheme="affine32").permutations
    a, b = perm[0].astype(np.uint64), perm[1].astype(np.uint64)
    starts, ends = np.array([0, 40]), np.array([40, 90])
    doc, start, sigs = window_signatures(fmix32_low(shingles), starts, ends, a, b, 16, 4)
    assert len(doc) > 10
    for w in range(len(doc)):
        ref = MinHash(num_perm=64, seed=7, scheme="affine32", hashfunc=lambda v: int(v) & 0xFFFFFFFF)
        ref.update_batch([int(x) for x in shingles[start[w] : start[w] + 16]])
        assert np.array_equal(sigs[w], ref.hashvalues)
        assert start[w] + 16 <= ends[doc[w]]


def test_report_module_imports_no_index_machinery() -> None:
    code = (
        "import sys, corpora_index.report, corpora_index; "
        "print(','.join(m for m in ('numba','ray','redis','datasketch','corpora_index._kernels') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
