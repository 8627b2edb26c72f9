"""The one text normaliser every tier uses: Unicode NFKC, lower-casing, punctuation and whitespace
folding, and (off by default) digit folding.

The string steps (NFKC, lower-casing, non-ASCII punctuation) run as C-level `str` operations on a
whole document; word splitting then happens on UTF-8 bytes in the native tokenizer, by a 256-entry
byte-class table. A document is never split on newlines: line breaks are whitespace like any other,
so a re-wrapped or re-spaced copy yields the same words.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

import numpy as np
import numpy.typing as npt

from corpora_index._kernels import MARK, SEP, WORD
from corpora_index.settings import NormalizerConfig

# Non-ASCII characters that are not word characters (punctuation, symbols, exotic spaces).
_NON_ASCII_NON_WORD = re.compile(r"[^\w\x00-\x7f]")
_NON_ASCII_SPACE = re.compile(r"[^\S\x00-\x7f]")
_ASCII_WORD = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

OffsetKind = Literal["identity", "utf8", "approximate"]


class Normalizer:
    """Applies a `NormalizerConfig`. Cheap to build; holds only lookup tables."""

    def __init__(self, config: NormalizerConfig | None = None) -> None:
        self.config = config or NormalizerConfig()
        classes = np.zeros(256, np.uint8)
        for byte in range(33, 127):
            classes[byte] = MARK if not self.config.fold_punctuation else SEP
        for byte in _ASCII_WORD:
            classes[byte] = WORD
        classes[0x80:] = WORD  # bytes of non-ASCII characters; their punctuation was folded as str
        self.classes: npt.NDArray[np.uint8] = classes
        translate = np.arange(256, dtype=np.uint8)
        if self.config.fold_digits:
            translate[ord("0") : ord("9") + 1] = ord("0")
        self.translate: npt.NDArray[np.uint8] | None = translate if self.config.fold_digits else None
        self._space_cache: dict[int, bool] = {}

    def prepare(self, text: str) -> str:
        """The string-level steps. Keeps the character count for nearly all text (see `offset_kind`)."""
        if not text.isascii():
            if self.config.unicode_form == "NFKC":
                text = unicodedata.normalize("NFKC", text)
            text = self._fold_non_ascii(text)
        return text.lower() if self.config.lowercase else text

    def _fold_non_ascii(self, text: str) -> str:
        """Non-ASCII punctuation and spaces to ' ', one vectorised pass over the code points.

        (A regex over the whole text costs several times more on mostly-ASCII documents.)
        """
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32).copy()
        wide = np.flatnonzero(codes > 127)
        if wide.shape[0] == 0:
            return text
        distinct = np.unique(codes[wide])
        cache = self._space_cache
        for code in distinct.tolist():
            if code not in cache:
                pattern = _NON_ASCII_NON_WORD if self.config.fold_punctuation else _NON_ASCII_SPACE
                cache[code] = pattern.fullmatch(chr(code)) is not None
        to_space = np.array([c for c in distinct.tolist() if cache[c]], np.uint32)
        if to_space.shape[0] == 0:
            return text
        sel = wide[np.isin(codes[wide], to_space)]
        codes[sel] = 32
        return codes.tobytes().decode("utf-32-le")

    def encode(self, text: str) -> bytes:
        return self.prepare(text).encode("utf-8", errors="replace")

    def tokens(self, text: str) -> list[str]:
        """The word sequence the hashes are built from (readable form; not used in the hot path)."""
        from corpora_index._kernels import tokenize

        raw = self.encode(text)
        buf = self.apply_translate(np.frombuffer(raw, np.uint8))
        starts, ends, _ = tokenize(buf, self.classes)
        data = buf.tobytes()
        return [data[s:e].decode("utf-8", errors="replace") for s, e in zip(starts, ends, strict=True)]

    def normalize(self, text: str) -> str:
        """The normalised text: words joined by single spaces."""
        return " ".join(self.tokens(text))

    def apply_translate(self, buf: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        return buf if self.translate is None else self.translate[buf]

    @staticmethod
    def offset_kind(original: str, prepared: str) -> OffsetKind:
        """How byte offsets in the prepared text map back to characters of the original.

        ASCII: one byte per character. Same length: count UTF-8 lead bytes. Otherwise (NFKC
        expanded or composed characters) map per character, which can be off by a character
        or two around a composed sequence.
        """
        if original.isascii():
            return "identity"
        return "utf8" if len(original) == len(prepared) else "approximate"

    def char_offsets(
        self, original: str, prepared_bytes: npt.NDArray[np.uint8], byte_offsets: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """Character offsets in `original` for byte offsets in its prepared UTF-8 form."""
        if original.isascii():
            return byte_offsets.astype(np.int64)
        lead = np.zeros(prepared_bytes.shape[0] + 1, np.int64)
        np.cumsum((prepared_bytes & 0xC0) != 0x80, out=lead[1:])
        chars = lead[np.clip(byte_offsets, 0, prepared_bytes.shape[0])]
        prepared_len = int(lead[-1])
        if prepared_len == len(original):
            return chars
        # ASCII characters keep their length; only the others are normalised one by one
        codes = np.frombuffer(original.encode("utf-32-le"), np.uint32)
        per_char = np.ones(codes.shape[0], np.int64)
        wide = np.flatnonzero(codes > 127)
        per_char[wide] = [len(self.prepare(original[int(i)])) for i in wide]
        ends = np.cumsum(per_char)
        return np.minimum(np.searchsorted(ends, chars, side="right"), len(original)).astype(np.int64)
