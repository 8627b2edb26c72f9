"""Persistent corpus index: build once over a corpus, then check any number of benchmarks in seconds.

On disk (format `contam-corpus-index`, version in `index.json` beside the fingerprint):

    IDX/index.json            fingerprint (settings), shard plan, `complete` flag
    IDX/shard-00000/          one folder per shard of corpus files, renamed into place when done
        keys.npy              sorted, de-duplicated uint64 n-gram hashes (memory-mapped at query time)
        offsets.npy           uint64, len(keys)+1: postings of keys[i] are offsets[i]..offsets[i+1]
        post_doc.npy ...      uint32 postings: document, word position, character start and end
        docs.txt, docs_offsets.npy   document ids (JSON strings, one a line) and their byte offsets,
                              so a query reads only the ids it hit
        shard.json            the shard's source files (path, kind, size, mtime_ns) and counts
                              (written last: marks it complete)

A killed build leaves at most a `shard-NNNNN.tmp` folder, which the next run removes and redoes;
finished shards are kept, so re-running the same command resumes. A finished shard is reused only
while its files keep their path, kind, size and modification time, so an edited file is re-indexed
even when its size did not change. No pickle anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from contam.errors import InputError
from corpora_index.benchmark_index import BenchmarkIndex
from corpora_index.ngrams import Hasher
from corpora_index.readers import DEFAULT_READER, Document, ReaderOptions, Source, plan_shards, read_source
from corpora_index.report import CorpusProblem
from corpora_index.scan import ShardResult, _text_bytes, fold_hits
from corpora_index.settings import FORMAT_VERSION, IndexSettings, check_compatible

CORPUS_INDEX_FORMAT = "contam-corpus-index"
_POSTINGS = ("post_doc", "post_pos", "post_start", "post_end")

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BuildStats:
    shards: int
    built: int
    reused: int
    documents: int
    ngrams: int
    keys: int
    bytes_on_disk: int


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _plan_json(shards: Sequence[tuple[Source, ...]]) -> list[list[dict[str, Any]]]:
    return [[{"path": s.path, "kind": s.kind, "size": s.size} for s in shard] for shard in shards]


def _files_json(shard: Sequence[Source]) -> list[dict[str, Any]]:
    """What a finished shard must still match to be reused: the plan's entries plus mtime_ns."""
    return [{"path": s.path, "kind": s.kind, "size": s.size, "mtime_ns": s.mtime_ns} for s in shard]


def _finished(folder: Path, shard: Sequence[Source]) -> bool:
    try:
        meta = json.loads((folder / "shard.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return bool(meta.get("files") == _files_json(shard))


def build_index(
    corpus: Sequence[Source],
    out: str | Path,
    settings: IndexSettings | None = None,
    reader: ReaderOptions = DEFAULT_READER,
    *,
    shard_bytes: int = 64 << 20,
    batch_bytes: int = 1 << 20,
    on_bytes: Callable[[int], None] | None = None,
) -> BuildStats:
    """Build (or resume building) a persistent n-gram index of `corpus` in `out`.

    `on_bytes` hears corpus bytes (on disk) as they are read, and a reused shard's all at once.
    """
    settings = settings or IndexSettings()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    shards = plan_shards(corpus, shard_bytes)
    plan = _plan_json(shards)
    manifest_path = root / "index.json"
    manifest = {
        "format": CORPUS_INDEX_FORMAT,
        "version": FORMAT_VERSION,
        "settings": settings.model_dump(mode="json"),
        "reader": {"text_field": reader.text_field, "id_field": reader.id_field, "glob": reader.glob},
        "shards": plan,
        "complete": False,
    }
    if manifest_path.exists():
        old = _read_manifest(root)
        check_compatible(IndexSettings.model_validate(old["settings"]), settings, what=f"corpus index {root}")
        if old["shards"] != plan or old.get("reader") != manifest["reader"]:
            raise InputError(
                "this folder holds an index of a different corpus (or reader options); "
                "choose another --out or delete it",
                path=str(root),
            )
    else:
        entries = [p for p in root.iterdir()]
        if entries:
            raise InputError("--out must be a new or empty folder, or an index being resumed", path=str(root))
    _write_json(manifest_path, manifest)

    hasher = Hasher(settings)
    built = reused = 0
    for i, shard in enumerate(shards):
        final = root / f"shard-{i:05d}"
        if _finished(final, shard):
            reused += 1
            if on_bytes is not None:
                on_bytes(sum(source.size for source in shard))
            continue
        tmp = root / f"shard-{i:05d}.tmp"
        # a folder without shard.json is a leftover of a killed run; one with other files' mtimes is stale
        for stale in (tmp, final):
            if stale.exists():
                shutil.rmtree(stale)
        tmp.mkdir()
        _build_shard(hasher, shard, reader, tmp, batch_bytes, on_bytes)
        os.replace(tmp, final)
        built += 1
    manifest["complete"] = True
    _write_json(manifest_path, manifest)
    return _stats(root, len(shards), built, reused)


def _build_shard(
    hasher: Hasher,
    shard: Sequence[Source],
    reader: ReaderOptions,
    out: Path,
    batch_bytes: int,
    on_bytes: Callable[[int], None] | None,
) -> None:
    n = hasher.settings.n
    problems: list[CorpusProblem] = []
    keys: list[np.ndarray] = []
    cols: dict[str, list[np.ndarray]] = {name: [] for name in _POSTINGS}
    doc_ids: list[str] = []
    total_bytes = 0

    def flush(batch: list[Document]) -> None:
        tokens = hasher.tokens([d.text for d in batch])
        hashes, valid = hasher.ngrams(tokens)
        pos = np.flatnonzero(valid)
        doc = np.searchsorted(tokens.doc_tokens, pos, side="right") - 1
        start_b = tokens.tok_starts[pos]
        end_b = tokens.tok_ends[pos + n - 1]
        start = np.empty_like(start_b)
        end = np.empty_like(end_b)
        bounds = np.searchsorted(doc, np.arange(len(batch) + 1))
        for d in range(len(batch)):
            lo, hi = bounds[d], bounds[d + 1]
            if hi > lo:
                start[lo:hi] = tokens.char_offsets(hasher.normalizer, d, start_b[lo:hi])
                end[lo:hi] = tokens.char_offsets(hasher.normalizer, d, end_b[lo:hi])
        keys.append(hashes[pos])
        cols["post_doc"].append((doc + len(doc_ids)).astype(np.uint32))
        cols["post_pos"].append((pos - tokens.doc_tokens[doc]).astype(np.uint32))
        cols["post_start"].append(start.astype(np.uint32))
        cols["post_end"].append(end.astype(np.uint32))
        doc_ids.extend(d.id for d in batch)

    batch: list[Document] = []
    size = 0
    for source in shard:
        for document in read_source(source, reader, problems, on_bytes):
            batch.append(document)
            nbytes = _text_bytes(document.text)
            size += nbytes
            total_bytes += nbytes
            if size >= batch_bytes:
                flush(batch)
                batch, size = [], 0
    if batch:
        flush(batch)

    all_keys = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    order = np.argsort(all_keys, kind="stable")  # stable: postings stay in (document, position) order
    sorted_keys = all_keys[order]
    uniq, first = np.unique(sorted_keys, return_index=True)
    offsets = np.append(first, sorted_keys.shape[0]).astype(np.uint64)
    np.save(out / "keys.npy", uniq.astype(np.uint64))
    np.save(out / "offsets.npy", offsets)
    for name in _POSTINGS:
        col = np.concatenate(cols[name]) if cols[name] else np.zeros(0, np.uint32)
        np.save(out / f"{name}.npy", col[order])
    # JSON strings, one a line: an id may hold any character, a newline included
    encoded = [json.dumps(d).encode("utf-8") + b"\n" for d in doc_ids]
    doc_offsets = np.zeros(len(encoded) + 1, np.uint64)
    np.cumsum([len(e) for e in encoded], out=doc_offsets[1:])
    (out / "docs.txt").write_bytes(b"".join(encoded))
    np.save(out / "docs_offsets.npy", doc_offsets)
    _write_json(
        out / "shard.json",
        {
            "sources": [s.path for s in shard],
            "files": _files_json(shard),
            "documents": len(doc_ids),
            "bytes": total_bytes,
            "ngrams": int(sorted_keys.shape[0]),
            "keys": int(uniq.shape[0]),
            "problems": [p.model_dump() for p in problems],
        },
    )


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / "index.json"
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"not a readable corpus index: {exc}", path=str(path)) from exc
    if manifest.get("format") != CORPUS_INDEX_FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise InputError(
            f"not a contam corpus index of format version {FORMAT_VERSION} "
            f"(found {manifest.get('format')!r} version {manifest.get('version')!r})",
            path=str(path),
        )
    return manifest


def _stats(root: Path, shards: int, built: int, reused: int) -> BuildStats:
    documents = ngrams = keys = size = 0
    for i in range(shards):
        meta = json.loads((root / f"shard-{i:05d}" / "shard.json").read_text(encoding="utf-8"))
        documents += meta["documents"]
        ngrams += meta["ngrams"]
        keys += meta["keys"]
    for path in root.rglob("*"):
        if path.is_file():
            size += path.stat().st_size
    return BuildStats(shards, built, reused, documents, ngrams, keys, size)


class CorpusIndex:
    """A finished persistent index, opened for queries (arrays are memory-mapped, not read)."""

    def __init__(self, path: str | Path) -> None:
        self.root = Path(path)
        manifest = _read_manifest(self.root)
        if not manifest.get("complete"):
            raise InputError(
                "the index build did not finish; re-run the same `contam index build` to resume it",
                path=str(self.root),
            )
        self.settings = IndexSettings.model_validate(manifest["settings"])
        self.shards = [self.root / f"shard-{i:05d}" for i in range(len(manifest["shards"]))]

    @property
    def corpus_bytes(self) -> int:
        """Text bytes indexed (uncompressed), what `query` reports progress in."""
        return sum(_shard_meta(shard)["bytes"] for shard in self.shards)

    def query(self, index: BenchmarkIndex, on_bytes: Callable[[int], None] | None = None) -> ShardResult:
        """Hits of the benchmark's n-grams in the corpus, in the same form as a streaming scan.

        `on_bytes` hears each shard's corpus bytes once that shard is answered.
        """
        check_compatible(self.settings, index.settings, what=f"corpus index {self.root}", exact_only=True)
        bench_keys = index.exact.keys
        parts: list[ShardResult] = []
        for shard in self.shards:
            meta = _shard_meta(shard)
            keys = np.load(shard / "keys.npy", mmap_mode="r")
            found = np.searchsorted(keys, bench_keys)
            inside = found < keys.shape[0]
            hit = np.zeros(bench_keys.shape[0], np.bool_)
            hit[inside] = keys[found[inside]] == bench_keys[inside]
            problems = tuple(CorpusProblem.model_validate(p) for p in meta["problems"])
            stats = {
                "documents": meta["documents"],
                "nbytes": meta["bytes"],
                "sources": tuple(meta["sources"]),
            }
            if not hit.any():
                parts.append(ShardResult(problems=problems, **stats))
                if on_bytes is not None:
                    on_bytes(meta["bytes"])
                continue
            bench_idx = np.flatnonzero(hit)
            offsets = np.load(shard / "offsets.npy", mmap_mode="r")
            lo = offsets[found[bench_idx]].astype(np.int64)
            hi = offsets[found[bench_idx] + 1].astype(np.int64)
            counts = hi - lo
            rows = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
            cols = {
                name: np.load(shard / f"{name}.npy", mmap_mode="r")[rows].astype(np.int64)
                for name in _POSTINGS
            }
            used, local_doc = np.unique(cols["post_doc"], return_inverse=True)
            folded = fold_hits(
                index.exact,
                np.repeat(bench_idx, counts).astype(np.int64),
                local_doc.astype(np.int64),
                cols["post_pos"],
                cols["post_start"],
                cols["post_end"],
            )
            parts.append(replace(folded, docs=_read_doc_ids(shard, used), problems=problems, **stats))
            if on_bytes is not None:
                on_bytes(meta["bytes"])
        return ShardResult.concat(parts)


def _shard_meta(shard: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((shard / "shard.json").read_text(encoding="utf-8"))
    return meta


def _read_doc_ids(shard: Path, which: I64) -> tuple[str, ...]:
    offsets = np.load(shard / "docs_offsets.npy", mmap_mode="r")
    out: list[str] = []
    with open(shard / "docs.txt", "rb") as fh:
        for d in which:
            start, end = int(offsets[d]), int(offsets[d + 1])
            fh.seek(start)
            out.append(json.loads(fh.read(end - start - 1).decode("utf-8")))
    return tuple(out)
