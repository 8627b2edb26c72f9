"""Model identity from a local model folder's content, so a changed model never reads stale cache.

The fingerprint hashes the config, generation config, tokenizer files, the weights index and
every weight file: small files (up to `FULL_HASH_LIMIT`) byte for byte; large ones by size plus
their first and last MiB, which holds the safetensors header and tensor bytes at both ends, so a
re-trained checkpoint of the same shapes still changes the key without reading gigabytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from contam.errors import ModelSpecError
from contam.models.base import ModelIdentity

FULL_HASH_LIMIT = 64 << 20
_EDGE = 1 << 20

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


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= FULL_HASH_LIMIT:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(f"size={size}".encode())
            h.update(fh.read(_EDGE))
            fh.seek(size - _EDGE)
            h.update(fh.read(_EDGE))
    return h.hexdigest()


def _hash_files(root: Path, names: list[str]) -> str:
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode() + b"\x00" + _file_digest(root / name).encode() + b"\x00")
    return h.hexdigest()


def tokenizer_fingerprint(folder: str | Path) -> str | None:
    root = Path(folder)
    names = [n for n in TOKENIZER_FILES if (root / n).is_file()]
    return _hash_files(root, names)[:16] if names else None


def folder_fingerprint(folder: str | Path) -> str:
    """Content hash of a model folder: configs, tokenizer, weights index and weight files."""
    root = Path(folder)
    if not (root / "config.json").is_file():
        raise ModelSpecError(f"{root} is not a model folder (no config.json)", path=str(root))
    names = [n for n in (*CONFIG_FILES, *TOKENIZER_FILES, *INDEX_FILES) if (root / n).is_file()]
    names += [p.name for p in root.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    if not any(n.endswith(WEIGHT_SUFFIXES) for n in names):
        raise ModelSpecError(f"{root} holds no weight files", path=str(root))
    return _hash_files(root, sorted(set(names)))[:32]


def folder_identity(backend: str, folder: str | Path) -> ModelIdentity:
    root = Path(folder).resolve()
    tok = tokenizer_fingerprint(root)
    return ModelIdentity(
        backend=backend,
        name=str(root),
        fingerprint=folder_fingerprint(root),
        tokenizer=f"{root.name}:{tok}" if tok else None,
    )
