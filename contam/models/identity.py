"""Model identity from a local model folder's content, so a changed model never reads stale cache.

The fingerprint hashes the config, generation config, tokenizer files, the weights index and
every weight file, each byte for byte: a fine-tune that changes only middle tensors changes it.
Hashing gigabytes takes a while, so a large file's digest is memoised in a small SQLite file
under the cache folder, keyed by its absolute path, size, mtime, ctime, inode and device: any
rewrite changes one of those, and a reload of an unchanged model is instant.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path

from contam.cache import cache_root
from contam.errors import ModelSpecError
from contam.models.base import ModelIdentity

MEMO_MIN_BYTES = 8 << 20  # smaller files hash faster than a memo look-up is worth
# A file modified within this many seconds of being hashed could change again within the same
# timestamp tick without its stat changing ("racy" entries, as git calls them): not memoised.
RACY_NS = 2_000_000_000
_MEMO_FILE = "digests.sqlite"

CONFIG_FILES = ("config.json", "generation_config.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.jinja",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class DigestMemo:
    """Full-file SHA-256 digests remembered by file identity (path, size, mtime, ctime, inode)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else cache_root() / _MEMO_FILE
        self.hashed = 0  # files actually read, for tests

    def _connect(self) -> sqlite3.Connection | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self.path), timeout=10.0)
            db.execute("CREATE TABLE IF NOT EXISTS digests (stat TEXT PRIMARY KEY, sha256 TEXT NOT NULL)")
        except (OSError, sqlite3.Error):
            return None  # a read-only or full disk costs a re-hash, never a wrong answer
        return db

    @staticmethod
    def _stat_key(path: Path, st: os.stat_result) -> str:
        return f"{path}\x00{st.st_size}\x00{st.st_mtime_ns}\x00{st.st_ctime_ns}\x00{st.st_ino}\x00{st.st_dev}"

    def digest(self, path: Path) -> str:
        path = path.resolve()
        before = path.stat()
        if before.st_size < MEMO_MIN_BYTES:
            self.hashed += 1
            return _sha256(path)
        key = self._stat_key(path, before)
        db = self._connect()
        try:
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    row = db.execute("SELECT sha256 FROM digests WHERE stat = ?", (key,)).fetchone()
                    if row is not None:
                        return str(row[0])
            self.hashed += 1
            value = _sha256(path)
            after = path.stat()
            settled = time.time_ns() - max(after.st_mtime_ns, after.st_ctime_ns) > RACY_NS
            if db is not None and settled and self._stat_key(path, after) == key:
                with contextlib.suppress(sqlite3.Error), db:
                    db.execute("INSERT OR REPLACE INTO digests VALUES (?, ?)", (key, value))
            return value
        finally:
            if db is not None:
                db.close()


def _hash_files(root: Path, names: list[str], memo: DigestMemo) -> str:
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode() + b"\x00" + memo.digest(root / name).encode() + b"\x00")
    return h.hexdigest()


def tokenizer_fingerprint(folder: str | Path, memo: DigestMemo | None = None) -> str | None:
    root = Path(folder)
    names = [n for n in TOKENIZER_FILES if (root / n).is_file()]
    return _hash_files(root, names, memo or DigestMemo())[:16] if names else None


def model_files(folder: str | Path) -> list[str]:
    """The files a fingerprint covers; fails unless `folder` is a model folder with weights."""
    root = Path(folder)
    if not (root / "config.json").is_file():
        raise ModelSpecError(f"{root} is not a model folder (no config.json)", path=str(root))
    names = [n for n in (*CONFIG_FILES, *TOKENIZER_FILES, *INDEX_FILES) if (root / n).is_file()]
    names += [p.name for p in root.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    if not any(n.endswith(WEIGHT_SUFFIXES) for n in names):
        raise ModelSpecError(f"{root} holds no weight files", path=str(root))
    return sorted(set(names))


def folder_fingerprint(folder: str | Path, memo: DigestMemo | None = None) -> str:
    """Content hash of a model folder: configs, tokenizer, weights index and weight files."""
    return _hash_files(Path(folder), model_files(folder), memo or DigestMemo())[:32]


def folder_identity(
    backend: str, folder: str | Path, *, settings: Mapping[str, str] | None = None
) -> ModelIdentity:
    """Identity of a local folder; `settings` are the backend options that change the numbers."""
    root = Path(folder).resolve()
    memo = DigestMemo()
    tok = tokenizer_fingerprint(root, memo)
    return ModelIdentity(
        backend=backend,
        name=str(root),
        fingerprint=folder_fingerprint(root, memo),
        tokenizer=f"{root.name}:{tok}" if tok else None,
        settings=dict(settings or {}),
    )
