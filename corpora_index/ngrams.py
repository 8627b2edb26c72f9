"""Word n-gram hashing for batches of documents, vectorised end to end.

Documents are normalised as strings, encoded, and joined into one byte buffer (with a newline
between them so no word spans two documents). The native tokenizer hashes every word with xxh64,
and every window of n word hashes is hashed again with xxh64 under the index seed. An n-gram that
crosses a document boundary is marked invalid instead of being cut out, so positions stay simple
arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from corpora_index._kernels import ngram_hashes, tokenize
from corpora_index.normalize import Normalizer
from corpora_index.settings import IndexSettings

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class TokenBatch:
    """Documents tokenised together. Token offsets are bytes of `buf`; per-document ranges index them."""

    texts: Sequence[str]
    buf: npt.NDArray[np.uint8]
    doc_bytes: I64  # (docs+1,) byte start of each document in buf
    tok_starts: I64
    tok_ends: I64
    tok_hashes: U64
    doc_tokens: I64  # (docs+1,) first token of each document

    @property
    def num_docs(self) -> int:
        return len(self.texts)

    def token_doc(self) -> I64:
        """Document index of every token."""
        return (
            np.searchsorted(self.doc_tokens, np.arange(self.tok_hashes.shape[0]), side="right") - 1
        ).astype(np.int64)

    def window_valid(self, k: int) -> npt.NDArray[np.bool_]:
        """Whether the window of k tokens starting at each token stays inside one document."""
        count = self.tok_hashes.shape[0] - k + 1
        if count <= 0:
            return np.zeros(0, np.bool_)
        doc = self.token_doc()
        valid: npt.NDArray[np.bool_] = doc[:count] == doc[k - 1 :]
        return valid

    def char_offsets(self, normalizer: Normalizer, doc: int, byte_offsets: I64) -> I64:
        """Character offsets in the original document for byte offsets in the batch buffer."""
        lo, hi = int(self.doc_bytes[doc]), int(self.doc_bytes[doc + 1]) - 1
        return normalizer.char_offsets(self.texts[doc], self.buf[lo:hi], byte_offsets - lo)


class Hasher:
    """Tokenises and hashes text with one `IndexSettings`."""

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.normalizer = Normalizer(settings.normalizer)
        self.seed = np.uint64(settings.seed)

    def tokens(self, texts: Sequence[str]) -> TokenBatch:
        encoded = [self.normalizer.encode(t) for t in texts]
        sizes = np.fromiter((len(e) + 1 for e in encoded), np.int64, len(encoded))
        doc_bytes = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum(sizes, out=doc_bytes[1:])
        raw = b"\n".join(encoded) + b"\n"
        buf = self.normalizer.apply_translate(np.frombuffer(raw, np.uint8))
        starts, ends, hashes = tokenize(buf, self.normalizer.classes)
        doc_tokens = np.searchsorted(starts, doc_bytes).astype(np.int64)
        return TokenBatch(texts, buf, doc_bytes, starts, ends, hashes, doc_tokens)

    def ngrams(self, batch: TokenBatch, n: int | None = None) -> tuple[U64, npt.NDArray[np.bool_]]:
        """(hash of the n-gram starting at each token, whether it stays inside one document)."""
        k = n or self.settings.n
        hashes: U64 = ngram_hashes(batch.tok_hashes, k, self.seed)
        return hashes, batch.window_valid(k)

    def text_ngrams(self, text: str, n: int | None = None) -> tuple[int, U64]:
        """(number of words, n-gram hashes) of one text, e.g. a benchmark item."""
        batch = self.tokens([text])
        hashes, _ = self.ngrams(batch, n)
        return int(batch.tok_hashes.shape[0]), hashes
