"""Token texts of split UTF-8 characters, and the distribution moments, on a byte vocabulary."""

from __future__ import annotations

import math

import pytest

from contam.models.distribution import stats_from_logprobs
from contam.models.token_text import CachedDecode, token_texts

TEXT = "a’b é—c"
# A byte-level vocabulary: token i is byte i, plus token 256 = the two bytes "ab".
VOCAB = {**{i: bytes([i]) for i in range(256)}, 256: b"ab"}


def decode(ids: list[int]) -> str:
    return b"".join(VOCAB[i] for i in ids).decode("utf-8", errors="replace")


def test_split_characters_land_on_the_token_that_completes_them() -> None:
    ids = list(TEXT.encode())
    texts = token_texts(decode, ids, 0)
    assert "".join(texts) == TEXT
    # '’' is three bytes: the first two tokens report "", the third the whole character.
    first = TEXT.encode().index("’".encode())
    assert texts[first : first + 3] == ["", "", "’"]
    assert texts[0] == "a" and texts[-1] == "c"


def test_context_before_start_is_used_and_not_reported() -> None:
    ids = list(TEXT.encode())
    start = TEXT.encode().index("’".encode()) + 2  # the last byte of '’'
    texts = token_texts(decode, ids, start)
    assert texts[0] == "’" and "".join(texts) == TEXT[TEXT.index("’") :]


def test_multi_byte_tokens_pass_through() -> None:
    assert token_texts(decode, [256, ord(" ")], 0) == ["ab", " "]


def test_exact_moments_of_a_full_distribution() -> None:
    logits = [2.0, 1.0, 0.5, -1.0]
    z = math.log(sum(math.exp(x) for x in logits))
    logp = [x - z for x in logits]
    mean, std = stats_from_logprobs(logp, renormalise=False)
    p = [math.exp(v) for v in logp]
    expected_mean = sum(pi * v for pi, v in zip(p, logp, strict=True))
    expected_var = sum(pi * v * v for pi, v in zip(p, logp, strict=True)) - expected_mean**2
    assert mean == pytest.approx(expected_mean) and std == pytest.approx(math.sqrt(expected_var))
    # Renormalising a complete distribution changes nothing.
    assert stats_from_logprobs(logp, renormalise=True) == pytest.approx((mean, std))


def test_top_k_approximation_renormalises_and_differs_from_exact() -> None:
    logp = [math.log(0.5), math.log(0.3), math.log(0.1), math.log(0.1)]
    approx = stats_from_logprobs(logp[:2], renormalise=True)
    w = [0.5 / 0.8, 0.3 / 0.8]
    assert approx[0] == pytest.approx(w[0] * logp[0] + w[1] * logp[1])
    assert approx[0] != pytest.approx(stats_from_logprobs(logp, renormalise=False)[0])
    assert all(math.isnan(v) for v in stats_from_logprobs([], renormalise=True))


def test_cached_decode_gives_the_same_texts_and_decodes_each_single_token_once() -> None:
    calls: list[list[int]] = []

    def counting(ids: list[int]) -> str:
        calls.append(list(ids))
        return decode(ids)

    ids = list((TEXT * 3).encode())
    cached = CachedDecode(counting)
    assert token_texts(cached, ids, 0) == token_texts(decode, ids, 0)
    singles = [c for c in calls if len(c) == 1]
    assert len(singles) == len(set(map(tuple, singles))) == len(set(ids))


# -- pieces aligned to the text (SentencePiece) ------------------------------------------------


def test_restore_leading_spaces_puts_back_one_space_per_marker() -> None:
    from contam.models.token_text import restore_leading_spaces

    assert restore_leading_spaces("▁world", "world", "▁") == " world"
    assert restore_leading_spaces("▁▁▁▁", "   ", "▁") == "    "  # decode kept three of four
    assert restore_leading_spaces("world", "world", "▁") == "world"
    assert restore_leading_spaces("▁x", " x", "▁") == " x"  # nothing missing, nothing added


def test_align_drops_the_dummy_space_of_the_first_word() -> None:
    from contam.models.token_text import align

    # A vLLM server reports "▁Hello" as " Hello"; the text has no space there.
    assert align([" Hello", " world"], "Hello world", whole=True) == ["Hello", " world"]
    # A leading space the tokenizer swallowed into the first piece stays with it.
    assert align([" Hello", "  ", "world"], " Hello  world", whole=True) == [" Hello", "  ", "world"]
    assert align(["Hello", " world"], "  Hello world", whole=True) == ["  Hello", " world"]


def test_align_without_bos_matches_a_suffix_and_keeps_split_characters() -> None:
    from contam.models.token_text import align

    assert align([" world"], "Hello world", whole=False) == [" world"]
    assert align(["", "é", "t"], "xét", whole=False) == ["", "é", "t"]
    assert align(["", "é"], "xé", whole=True) is None  # the first piece must own the rest


def test_align_refuses_pieces_that_are_not_the_text() -> None:
    from contam.models.token_text import align, aligned

    # A normalising tokenizer (NFKC, lower case) returns other characters: kept as they are.
    assert align(["ﬁ", "ne"], "fine", whole=True) is None
    assert aligned(["hello"], "Hello", whole=True) == ("hello",)
    assert align([], "", whole=True) == [] and align([], "x", whole=True) is None
