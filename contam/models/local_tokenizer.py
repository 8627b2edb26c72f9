"""A model folder's own tokenizer, as both local backends (`hf`, the vLLM engine) use it.

One BOS policy for every backend: by default a text is scored the way the tokenizer's own
`encode` would tokenise it, so a Llama or Mistral text starts with BOS and a GPT-2, Pythia or
StarCoder text does not (as Shi et al.'s code gets it from `tokenizer.encode`, and as a vLLM
server tokenises a prompt). `add_bos=True` or `False` overrides it. Only the BOS is taken from
the tokenizer's special tokens; a tokenizer that would also append EOS is not followed in that.

Token texts come from `token_text`: pieces as a vLLM server reports them, aligned to the text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from contam.models.token_text import CachedDecode, aligned, token_text, token_texts

_PROBE = "Hello world"


def adds_bos_by_default(tokenizer: Any) -> bool:
    """Whether `tokenizer(text)` puts its BOS token in front of the text's own tokens."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    plain: list[int] = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    special: list[int] = tokenizer(_PROBE)["input_ids"]
    return special[:1] == [bos] and special[1 : 1 + len(plain)] == plain


def leading_space_marker(tokenizer: Any) -> str | None:
    """The SentencePiece space marker (`▁`) when the tokenizer's pre-tokenizer is a Metaspace,
    whose decoder strips a leading space from a piece decoded alone; else None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    try:
        pre = json.loads(backend.to_str()).get("pre_tokenizer") or {}
    except (ValueError, AttributeError):
        return None
    for sub in [pre, *pre.get("pretokenizers", [])]:
        if isinstance(sub, dict) and sub.get("type") == "Metaspace":
            return str(sub.get("replacement", "\u2581"))
    return None


class LocalTokenizer:
    """Encoding under the BOS policy, and token texts that are exact substrings of the input."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.bos_id: int | None = tokenizer.bos_token_id
        self.default_bos = adds_bos_by_default(tokenizer)
        self.marker = leading_space_marker(tokenizer)
        self._decode = CachedDecode(lambda ids: str(tokenizer.decode(ids)))
        self._raw: dict[int, str] = {}

    def bos(self, add_bos: bool | None) -> bool:
        """Whether a request with this `add_bos` is scored after a BOS token."""
        if self.bos_id is None:
            return False
        return self.default_bos if add_bos is None else add_bos

    def encode_many(self, texts: Sequence[str], add_bos: Sequence[bool | None]) -> list[list[int]]:
        """Token ids of each text, BOS first where the policy puts one (one batched tokenizer call)."""
        if not texts:
            return []
        batch: list[list[int]] = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [
            [self.bos_id, *ids] if self.bos(add) and self.bos_id is not None else ids
            for ids, add in zip(batch, add_bos, strict=True)
        ]

    def encode(self, text: str, add_bos: bool | None) -> list[int]:
        return self.encode_many([text], [add_bos])[0]

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids))

    def _raw_piece(self, token_id: int) -> str:
        piece = self._raw.get(token_id)
        if piece is None:
            piece = self._raw[token_id] = str(self.tokenizer.convert_ids_to_tokens(token_id))
        return piece

    # A vLLM server reads a piece's context from the log-probs already reported, and the first
    # token of a sequence has none: it never counts as context, so neither does it here. (Without
    # BOS, a character split between that token and the next is then "" in the next, as served.)

    def piece(self, token_id: int, ids: Sequence[int], position: int) -> str:
        """The text of `token_id` as an alternative at `ids[position]` (alternatives are not in the
        text), read after the scored tokens before it, as a vLLM server reports it."""
        context = ids[1:position]
        return token_text(self._decode, token_id, context, raw=self._raw_piece, marker=self.marker)

    def scored_texts(self, ids: Sequence[int], text: str, *, bos: bool) -> tuple[str, ...]:
        """Texts of `ids[1:]` (the tokens with a conditional log-prob), as exact substrings of `text`."""
        scored = ids[1:]
        pieces = token_texts(self._decode, scored, 0, raw=self._raw_piece, marker=self.marker)
        return aligned(pieces, text, whole=bos)
