"""Model identity from a local model folder's content, so a changed model never reads stale cache.

The fingerprint hashes every file in the folder that a loader may read (configs, tokenizer and
processor files, chat templates, remote code, the weights index and every weight file), each
byte for byte: a fine-tune that changes only middle tensors, or only `spiece.model`, changes it.
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

# Which files count. A list of tokenizer file names is never complete (tokenizer classes name
# their vocab files freely: spiece.model, sentencepiece.bpe.model, vocab.txt, *.tiktoken,
# tekken.json, tokenizer.model.v3, source.spm, bpe.codes, a remote-code tokenization_*.py, ...),
# and a missed one lets an edited tokenizer replay stale answers. So every top-level file counts,
# plus transformers' additional_chat_templates/ folder, except the few below that no loader
# reads: a needless file costs a hash (memoised when large), a missed one a wrong answer.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# The model's own configs: in the model fingerprint, left out of the tokenizer's, so models that
# share a tokenizer show the same tokenizer fingerprint.
MODEL_CONFIG_FILES = ("config.json", "generation_config.json", "params.json")
SUBFOLDERS = ("additional_chat_templates",)
_IGNORED_PREFIXES = ("readme", "license", "licence", "notice", "copying", "use_policy", "citation")
_IGNORED_SUFFIXES = (
    ".md", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".pdf",
    # Other frameworks' weights (TensorFlow, Flax, Rust, ONNX, TFLite, Core ML): no backend here
    # loads them, and hashing a second copy of the weights would double the first load.
    ".h5", ".msgpack", ".ot", ".onnx", ".onnx_data", ".tflite", ".mlmodel",
)  # fmt: skip


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


def _ignored(name: str) -> bool:
    lower = name.lower()
    return lower.startswith(".") or lower.startswith(_IGNORED_PREFIXES) or lower.endswith(_IGNORED_SUFFIXES)


def _loadable_files(root: Path) -> list[str]:
    """Paths, relative to `root`, of every file a loader may read (see the rule above)."""
    folders = [f for f in (root, *(root / sub for sub in SUBFOLDERS)) if f.is_dir()]
    found = (p for folder in folders for p in folder.iterdir() if p.is_file() and not _ignored(p.name))
    return sorted(p.relative_to(root).as_posix() for p in found)


def _is_tokenizer_file(name: str) -> bool:
    return not (name.endswith(WEIGHT_SUFFIXES) or name in INDEX_FILES or name in MODEL_CONFIG_FILES)


def tokenizer_fingerprint(folder: str | Path, memo: DigestMemo | None = None) -> str | None:
    """Content hash of the files other than weights, their index and the model's configs."""
    root = Path(folder)
    names = [n for n in _loadable_files(root) if _is_tokenizer_file(n)]
    return _hash_files(root, names, memo or DigestMemo())[:16] if names else None


def model_files(folder: str | Path) -> list[str]:
    """The files a fingerprint covers; fails unless `folder` is a model folder with weights."""
    root = Path(folder)
    if not (root / "config.json").is_file():
        raise ModelSpecError(f"{root} is not a model folder (no config.json)", path=str(root))
    names = _loadable_files(root)
    if not any(n.endswith(WEIGHT_SUFFIXES) for n in names):
        raise ModelSpecError(f"{root} holds no weight files", path=str(root))
    return names


def folder_fingerprint(folder: str | Path, memo: DigestMemo | None = None) -> str:
    """Content hash of a model folder: every file a loader may read, weights included."""
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
