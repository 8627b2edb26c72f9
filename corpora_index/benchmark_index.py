"""The benchmark side of a scan: exact n-gram keys and MinHash pieces of every item.

It is what a streaming scan holds in memory while the corpus goes past, and what is broadcast to
worker processes and Ray tasks as bytes (numpy's .npz with `allow_pickle=False`; no pickle).
`save`/`load` put the same bytes on disk with a versioned manifest whose metadata is the fingerprint.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from contam.errors import InputError
from corpora_index.exact import ExactIndex
from corpora_index.items import ItemLike, ItemRef, as_refs
from corpora_index.minhash import MinHashIndex
from corpora_index.settings import FORMAT_VERSION, IndexSettings, check_compatible

BENCHMARK_INDEX_FORMAT = "contam-benchmark-index"


class BenchmarkIndex:
    def __init__(
        self,
        settings: IndexSettings,
        items: tuple[ItemRef, ...],
        exact: ExactIndex,
        near: MinHashIndex | None,
        lsh_storage: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.items = items
        self.exact = exact
        self.near = near
        # datasketch storage_config of a shared LSH (Redis); workers attach to it instead of rebuilding
        self.lsh_storage = dict(lsh_storage) if lsh_storage else None
        if near is not None and self.lsh_storage is not None:
            near.use_lsh(near.make_lsh(self.lsh_storage))

    @classmethod
    def build(
        cls,
        items: Iterable[ItemLike | tuple[str, str, str]],
        settings: IndexSettings | None = None,
        *,
        minhash: bool = True,
    ) -> BenchmarkIndex:
        settings = settings or IndexSettings()
        refs = as_refs(items)
        exact = ExactIndex.build(settings, refs)
        near = MinHashIndex.build(settings, refs) if minhash else None
        return cls(settings, refs, exact, near)

    # -- bytes and disk -------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        meta = {
            "format": BENCHMARK_INDEX_FORMAT,
            "version": FORMAT_VERSION,
            "settings": self.settings.model_dump(mode="json"),
            "items": [[i.id, i.partition] for i in self.items],
            "lsh_storage": _jsonable_storage(self.lsh_storage),
        }
        e = self.exact
        arrays: dict[str, Any] = {
            "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
            "item_tokens": e.item_tokens,
            "item_ngrams": e.item_ngrams,
            "keys": e.keys,
            "post_offsets": e.post_offsets,
            "post_item": e.post_item,
            "post_pos": e.post_pos,
        }
        if self.near is not None:
            arrays["near"] = np.frombuffer(self.near.to_bytes(), np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str = "benchmark index") -> BenchmarkIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes())
            if meta.get("format") != BENCHMARK_INDEX_FORMAT or meta.get("version") != FORMAT_VERSION:
                raise InputError(
                    f"not a contam benchmark index of format version {FORMAT_VERSION} "
                    f"(found {meta.get('format')!r} version {meta.get('version')!r})",
                    path=where,
                )
            settings = IndexSettings.model_validate(meta["settings"])
            items = tuple(ItemRef(i, p, "") for i, p in meta["items"])
            exact = ExactIndex(
                settings,
                items,
                z["item_tokens"],
                z["item_ngrams"],
                z["keys"],
                z["post_offsets"],
                z["post_item"],
                z["post_pos"],
            )
            near = MinHashIndex.from_bytes(z["near"].tobytes()) if "near" in z.files else None
        return cls(settings, items, exact, near, _storage_from_json(meta.get("lsh_storage")))

    def save(self, path: str | Path) -> None:
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / "benchmark.npz.tmp"
        tmp.write_bytes(self.to_bytes())
        tmp.replace(out / "benchmark.npz")

    @classmethod
    def load(cls, path: str | Path, expect: IndexSettings | None = None) -> BenchmarkIndex:
        file = Path(path) / "benchmark.npz"
        if not file.is_file():
            raise InputError("no benchmark index here", path=str(path))
        index = cls.from_bytes(file.read_bytes(), where=str(file))
        if expect is not None:
            check_compatible(index.settings, expect, what=f"benchmark index {path}")
        return index


def _jsonable_storage(storage: Mapping[str, Any] | None) -> Any:
    if storage is None:
        return None
    out = dict(storage)
    if isinstance(out.get("basename"), bytes):
        out["basename"] = out["basename"].decode()
    return out


def _storage_from_json(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    out = dict(raw)
    if isinstance(out.get("basename"), str):
        out["basename"] = out["basename"].encode()
    return out
