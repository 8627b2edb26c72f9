"""Index settings: everything that changes which hashes an index holds, compared as its fingerprint.

Two indexes (or a benchmark index and a corpus index) can only be compared when every field here
is equal; `check_compatible` refuses the rest with a message naming the fields that differ.
Imports only pydantic, so reports and the service can read fingerprints without numpy or numba.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contam.errors import InputError

# Bumped whenever the hashing pipeline changes so that old indexes are refused, not misread.
HASH_NAME = "xxh64(word-bytes)->xxh64(n lanes)"
FORMAT_VERSION = 1


class IncompatibleIndexError(InputError):
    """Two indexes were built with different settings; their hashes cannot be compared."""


class NormalizerConfig(BaseModel):
    """How text is folded before it is split into words.

    Digit folding is off by default: folding every digit to 0 (as datatrove does) makes one
    GSM8K answer match dozens of unrelated files, because arithmetic is mostly digits.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    unicode_form: Literal["NFKC", "none"] = Field(
        default="NFKC", description="Unicode normal form applied first"
    )
    lowercase: bool = Field(default=True, description="fold case (str.lower)")
    fold_punctuation: bool = Field(
        default=True, description="treat punctuation (and '_') as whitespace; off: each mark is its own token"
    )
    fold_digits: bool = Field(
        default=False, description="map every ASCII digit to 0 (costs precision on math)"
    )


class MinHashSettings(BaseModel):
    """The MinHash tier: datasketch `affine32` sketches of word k-gram shingles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_perm: int = Field(default=128, ge=16, le=1024)
    seed: int = Field(default=1, ge=0, description="seed of datasketch's permutations")
    scheme: Literal["affine32"] = "affine32"
    shingle: int = Field(default=3, ge=1, le=8, description="words per shingle")
    piece: int = Field(
        default=32, ge=8, le=512, description="shingles per indexed piece and per corpus window"
    )
    stride: int = Field(default=8, ge=1, description="shingles between corpus windows")
    bands: int = Field(default=32, ge=1)
    rows: int = Field(default=4, ge=1)
    min_containment: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="report a near-copy when this share of the item is in the window",
    )

    def model_post_init(self, __context: object) -> None:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows ({self.bands}*{self.rows}) exceeds num_perm ({self.num_perm})")
        if self.stride > self.piece:
            raise ValueError("stride must not exceed piece")


class IndexSettings(BaseModel):
    """The fingerprint of an index: n, normaliser, hash, seed and the MinHash parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    n: int = Field(default=13, ge=2, le=64, description="words per n-gram (13 by default; 8 is common too)")
    hash: str = HASH_NAME
    seed: int = Field(default=0, ge=0, lt=2**64, description="seed of the n-gram hash")
    normalizer: NormalizerConfig = NormalizerConfig()
    minhash: MinHashSettings = MinHashSettings()

    def exact_key(self) -> dict[str, object]:
        """The part of the fingerprint that decides the exact tier's hashes."""
        return self.model_dump(include={"format_version", "n", "hash", "seed", "normalizer"})


def check_compatible(
    have: IndexSettings, want: IndexSettings, *, what: str, exact_only: bool = False
) -> None:
    """Refuse to compare hashes built with different settings (they would silently never match)."""
    a = have.exact_key() if exact_only else have.model_dump()
    b = want.exact_key() if exact_only else want.model_dump()
    if a == b:
        return
    diffs = _diff(a, b)
    raise IncompatibleIndexError(
        f"{what} was built with different index settings ({'; '.join(diffs)}); rebuild it with the same "
        "settings or query with the settings it was built with"
    )


def _diff(a: dict[str, object], b: dict[str, object], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(_diff(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out.append(f"{prefix}{key}: index has {va!r}, asked for {vb!r}")
    return out
