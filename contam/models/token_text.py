"""The text of each scored token, the way a vLLM server reports it, for every backend alike.

A byte-level tokenizer can split one UTF-8 character over several tokens; decoded alone each
is U+FFFD. Like vLLM, a token that ends a character gets the whole character (read with up to 4
preceding tokens), and a token that only starts one gets "", so backends agree token by token
and the tokens of a text join back into it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Decode = Callable[[list[int]], str]
_REPLACEMENT = "\ufffd"
_MAX_CONTEXT = 4


class CachedDecode:
    """`decode` with single-token calls memoised: a token's text alone never depends on context,
    and scoring asks for it once per position (tens of thousands of calls a scan)."""

    def __init__(self, decode: Decode) -> None:
        self._decode = decode
        self._single: dict[int, str] = {}

    def __call__(self, ids: list[int]) -> str:
        if len(ids) != 1:
            return self._decode(ids)
        piece = self._single.get(ids[0])
        if piece is None:
            piece = self._single[ids[0]] = self._decode(ids)
        return piece


def token_text(decode: Decode, token_id: int, context: Sequence[int]) -> str:
    """Text of `token_id` after `context` (the ids before it, oldest first)."""
    piece = decode([token_id])
    if not piece.endswith(_REPLACEMENT):
        return piece
    context = list(context[-_MAX_CONTEXT:])
    for n in range(1, len(context) + 1):
        window = context[-n:]
        full = decode([*window, token_id])
        if full.endswith(_REPLACEMENT):
            continue
        # Context tokens that were themselves partial characters reported "": their bytes belong here.
        clean_end = len(window)
        for j in range(len(window) - 1, -1, -1):
            if decode([window[j]]).endswith(_REPLACEMENT):
                clean_end = j
            else:
                break
        prefix = decode(window[:clean_end]) if clean_end else ""
        if full.startswith(prefix):
            return full[len(prefix) :]
        common = 0
        for a, b in zip(prefix, full, strict=False):
            if a != b:
                break
            common += 1
        return full[common:]
    return ""


def token_texts(decode: Decode, ids: Sequence[int], start: int) -> list[str]:
    """Texts of `ids[start:]`, each read after the ids before it."""
    return [token_text(decode, ids[i], ids[:i]) for i in range(start, len(ids))]
