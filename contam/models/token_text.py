"""The text of each scored token, the same on every backend, and always an exact piece of the input.

Two steps. First each token's *piece*, the way a vLLM server reports it: the token decoded alone,
with two repairs vLLM makes too. A byte-level tokenizer can split one UTF-8 character over several
tokens, each U+FFFD alone: the token that ends the character gets the whole of it (read with up to
4 preceding tokens) and a token that only starts one gets "". A SentencePiece decoder (Llama,
Mistral) strips the leading space of a `▁world` piece decoded alone: it is put back, one space per
leading marker, as vLLM's `convert_ids_list_to_tokens` does.

Then `align` fits the pieces to the scored text, so tokens are exact substrings that join back
into it, whichever backend produced them: SentencePiece prepends a "dummy" space to the first word
that the text does not have (`▁Hello` for "Hello"), and may swallow a leading space the text does
have. Backends run both steps over the same pieces, so they agree token by token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Decode = Callable[[list[int]], str]
RawPiece = Callable[[int], str]
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


def restore_leading_spaces(raw: str, decoded: str, marker: str) -> str:
    """`decoded` with the spaces its decoder stripped put back: one per leading `marker` of the raw
    vocabulary piece, less those already there."""
    markers = len(raw) - len(raw.lstrip(marker))
    missing = markers - (len(decoded) - len(decoded.lstrip(" ")))
    return " " * missing + decoded if missing > 0 else decoded


def token_text(
    decode: Decode,
    token_id: int,
    context: Sequence[int],
    *,
    raw: RawPiece | None = None,
    marker: str | None = None,
) -> str:
    """The piece of `token_id` after `context` (the ids before it, oldest first).

    `raw` (the vocabulary piece of an id) and `marker` (the SentencePiece space marker) restore
    the leading spaces a SentencePiece decoder strips; without them the decoded text is kept.
    """
    piece = decode([token_id])
    if not piece.endswith(_REPLACEMENT):
        if raw is not None and marker is not None:
            return restore_leading_spaces(raw(token_id), piece, marker)
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


def token_texts(
    decode: Decode,
    ids: Sequence[int],
    start: int,
    *,
    raw: RawPiece | None = None,
    marker: str | None = None,
) -> list[str]:
    """Pieces of `ids[start:]`, each read after the ids before it."""
    return [token_text(decode, ids[i], ids[:i], raw=raw, marker=marker) for i in range(start, len(ids))]


def align(pieces: Sequence[str], text: str, *, whole: bool) -> list[str] | None:
    """The pieces as exact substrings of `text` that join back into it, or None if they cannot be.

    `whole`: the pieces cover the whole text (a BOS was scored first); otherwise they cover a
    suffix (the text's first token has no log-prob and is not among them). Matched from the end,
    since only the start differs: there the first piece may carry a SentencePiece dummy space the
    text lacks, or lack a leading space of the text the tokenizer swallowed. A text a tokenizer
    normalises (NFKC, case) cannot be aligned; the caller keeps the pieces and says so.
    """
    end = len(text)
    out: list[str] = []
    for i in range(len(pieces) - 1, -1, -1):
        piece = pieces[i]
        if i == 0 and whole:
            # The first token owns whatever is left of the text, if it is that piece up to spaces.
            head = text[:end]
            if head.strip(" ") != piece.strip(" "):
                return None
            out.append(head)
            end = 0
            break
        if not text.endswith(piece, 0, end):
            return None
        out.append(piece)
        end -= len(piece)
    if whole and end != 0:  # no pieces at all for a non-empty text
        return None
    out.reverse()
    return out


def aligned(pieces: Sequence[str], text: str, *, whole: bool) -> tuple[str, ...]:
    """`align`, keeping the pieces as they are when they cannot be aligned."""
    fitted = align(pieces, text, whole=whole)
    return tuple(pieces if fitted is None else fitted)
