"""Streaming scan: stream corpus documents past a benchmark index in constant memory.

`scan_shard` is the one per-shard function every engine runs (in process, in worker processes,
as a Ray Data map). It returns a `ShardResult` of raw hits; shard results merge by addition
(`sum(parts, ShardResult.zero())`) and `finalize` turns the merged hits into `overlap.json` items,
so one, two or N workers give the same report.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from corpora_index.benchmark_index import BenchmarkIndex
from corpora_index.ngrams import Hasher
from corpora_index.readers import DEFAULT_READER, Document, ReaderOptions, Source, read_source
from corpora_index.report import (
    CorpusProblem,
    CorpusStats,
    DocumentMatch,
    ItemOverlap,
    MinHashMatch,
    OverlapReport,
    Span,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_HIT_FIELDS = ("hit_key", "hit_doc", "hit_pos", "hit_start", "hit_end")
_NEAR_FIELDS = ("near_item", "near_doc", "near_cont", "near_jac", "near_start", "near_end")


def _i64() -> I64:
    return np.zeros(0, np.int64)


def _f64() -> F64:
    return np.zeros(0, np.float64)


@dataclass(frozen=True)
class ShardResult:
    """Raw evidence from part of a corpus. `hit_doc`/`near_doc` index `docs` (only documents with hits)."""

    docs: tuple[str, ...] = ()
    hit_key: I64 = field(default_factory=_i64)  # index into the benchmark's exact keys
    hit_doc: I64 = field(default_factory=_i64)
    hit_pos: I64 = field(default_factory=_i64)  # word position of the n-gram in the document
    hit_start: I64 = field(default_factory=_i64)  # character offsets of the n-gram in the document
    hit_end: I64 = field(default_factory=_i64)
    near_item: I64 = field(default_factory=_i64)
    near_doc: I64 = field(default_factory=_i64)
    near_cont: F64 = field(default_factory=_f64)
    near_jac: F64 = field(default_factory=_f64)
    near_start: I64 = field(default_factory=_i64)
    near_end: I64 = field(default_factory=_i64)
    documents: int = 0
    nbytes: int = 0
    sources: tuple[str, ...] = ()
    problems: tuple[CorpusProblem, ...] = ()

    @classmethod
    def zero(cls) -> ShardResult:
        """The identity of `+`."""
        return cls()

    def __add__(self, other: ShardResult) -> ShardResult:
        return ShardResult.concat([self, other])

    @classmethod
    def concat(cls, parts: Sequence[ShardResult]) -> ShardResult:
        """Sum of many results in one pass (repeated `+` would copy the arrays each time)."""
        if not parts:
            return cls()
        offsets = np.cumsum([0] + [len(p.docs) for p in parts])
        arrays: dict[str, np.ndarray] = {}
        for name in _HIT_FIELDS + _NEAR_FIELDS:
            chunks = []
            for off, p in zip(offsets, parts, strict=False):
                value = getattr(p, name)
                chunks.append(value + off if name in ("hit_doc", "near_doc") else value)
            arrays[name] = np.concatenate(chunks)
        return cls(
            docs=tuple(d for p in parts for d in p.docs),
            documents=sum(p.documents for p in parts),
            nbytes=sum(p.nbytes for p in parts),
            sources=tuple(s for p in parts for s in p.sources),
            problems=tuple(x for p in parts for x in p.problems),
            **arrays,
        )

    # a transport form for worker processes and Ray (npz, allow_pickle=False)
    def to_bytes(self) -> bytes:
        meta = {
            "docs": list(self.docs),
            "documents": self.documents,
            "bytes": self.nbytes,
            "sources": list(self.sources),
            "problems": [p.model_dump() for p in self.problems],
        }
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            **{name: getattr(self, name) for name in _HIT_FIELDS + _NEAR_FIELDS},
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ShardResult:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes())
            arrays = {name: z[name] for name in _HIT_FIELDS + _NEAR_FIELDS}
        return cls(
            docs=tuple(meta["docs"]),
            documents=meta["documents"],
            nbytes=meta["bytes"],
            sources=tuple(meta["sources"]),
            problems=tuple(CorpusProblem.model_validate(p) for p in meta["problems"]),
            **arrays,
        )


def _text_bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", errors="replace"))


def scan_documents(
    index: BenchmarkIndex,
    documents: Iterable[Document],
    *,
    minhash: bool = True,
    batch_bytes: int = 1 << 20,
    hasher: Hasher | None = None,
) -> ShardResult:
    """Scan documents in batches of about `batch_bytes` (small batches stay in cache)."""
    hasher = hasher or Hasher(index.settings)
    parts: list[ShardResult] = []
    batch: list[Document] = []
    size = 0
    count = 0
    total = 0
    for doc in documents:
        batch.append(doc)
        nbytes = _text_bytes(doc.text)
        size += nbytes
        total += nbytes
        count += 1
        if size >= batch_bytes:
            parts.append(_scan_batch(index, hasher, batch, minhash))
            batch, size = [], 0
    if batch:
        parts.append(_scan_batch(index, hasher, batch, minhash))
    return replace(ShardResult.concat(parts), documents=count, nbytes=total)


def _scan_batch(index: BenchmarkIndex, hasher: Hasher, docs: list[Document], minhash: bool) -> ShardResult:
    batch = hasher.tokens([d.text for d in docs])
    hashes, valid = hasher.ngrams(batch)
    hits = index.exact.probe(hasher, batch, hashes, valid)
    near = index.near.probe(hasher, batch) if (minhash and index.near is not None) else None
    used = np.unique(np.concatenate([hits.doc, near.doc if near is not None else _i64()]))
    if used.shape[0] == 0:
        return ShardResult()
    remap = np.full(len(docs), -1, np.int64)
    remap[used] = np.arange(used.shape[0])
    names = tuple(docs[int(d)].id for d in used)
    fields: dict[str, Any] = {
        "hit_key": hits.key,
        "hit_doc": remap[hits.doc],
        "hit_pos": hits.pos,
        "hit_start": hits.start,
        "hit_end": hits.end,
    }
    if near is not None:
        fields.update(
            near_item=near.item,
            near_doc=remap[near.doc],
            near_cont=near.containment,
            near_jac=near.jaccard,
            near_start=near.start,
            near_end=near.end,
        )
    return ShardResult(docs=names, **fields)


def scan_shard(
    index: BenchmarkIndex,
    sources: Sequence[Source],
    reader: ReaderOptions = DEFAULT_READER,
    *,
    minhash: bool = True,
    batch_bytes: int = 1 << 20,
    on_source: Callable[[Source], None] | None = None,
) -> ShardResult:
    """The per-shard function: read the shard's files and scan them."""
    problems: list[CorpusProblem] = []
    hasher = Hasher(index.settings)

    def documents() -> Iterable[Document]:
        for source in sources:
            yield from read_source(source, reader, problems)
            if on_source is not None:
                on_source(source)

    result = scan_documents(index, documents(), minhash=minhash, batch_bytes=batch_bytes, hasher=hasher)
    return replace(result, sources=tuple(s.path for s in sources), problems=tuple(problems))


# -- from raw hits to per-item evidence ------------------------------------------------------------


def finalize(
    index: BenchmarkIndex,
    result: ShardResult,
    *,
    frequency_cap: int | None = None,
    max_documents: int = 100,
    mode: str = "stream",
    benchmark: str | None = None,
) -> OverlapReport:
    """Per item: matched, n-gram fraction, token coverage, longest span, documents, best near-copy.

    The frequency cap drops n-grams found in more than `frequency_cap` documents (boilerplate);
    it costs recall, since a widely copied item is exactly such an n-gram, so it is off by default.
    """
    exact = index.exact
    n = index.settings.n
    num_items = len(index.items)
    # documents in a canonical order, so the merge order of shards cannot change the report
    doc_names = np.array(result.docs, dtype=object)
    doc_rank = np.empty(len(result.docs), np.int64)
    doc_rank[np.argsort(doc_names, kind="stable")] = np.arange(len(result.docs))

    key, doc = result.hit_key, result.hit_doc
    pos, start, end = result.hit_pos, result.hit_start, result.hit_end
    if frequency_cap is not None and key.shape[0]:
        pairs = np.unique(np.stack([key, doc], axis=1), axis=0)
        df = np.bincount(pairs[:, 0], minlength=exact.keys.shape[0])
        keep = df[key] <= frequency_cap
        key, doc, pos, start, end = key[keep], doc[keep], pos[keep], start[keep], end[keep]

    row, item, q = exact.expand(key)
    rdoc = doc_rank[doc[row]] if row.shape[0] else _i64()
    rpos, rstart, rend = pos[row], start[row], end[row]
    diag = rpos - q
    order = np.lexsort((q, diag, rdoc, item))
    item, rdoc, diag, q, rstart, rend = (
        item[order],
        rdoc[order],
        diag[order],
        q[order],
        rstart[order],
        rend[order],
    )
    # a run: same item, document and diagonal, consecutive item positions = one contiguous copy
    brk = np.ones(item.shape[0], np.bool_)
    if item.shape[0] > 1:
        brk[1:] = (
            (item[1:] != item[:-1])
            | (rdoc[1:] != rdoc[:-1])
            | (diag[1:] != diag[:-1])
            | (q[1:] != q[:-1] + 1)
        )
    first = np.flatnonzero(brk)
    last = (np.append(first[1:], item.shape[0]) - 1) if first.shape[0] else _i64()
    run_item = item[first]
    run_doc = rdoc[first]
    run_tokens = q[last] - q[first] + n
    run_start = rstart[first]
    run_end = rend[last]

    # matched n-gram positions and covered words per item
    matched_q = (
        np.unique(np.stack([item, q], axis=1), axis=0) if item.shape[0] else np.zeros((0, 2), np.int64)
    )
    ngram_hits = np.bincount(matched_q[:, 0], minlength=num_items)
    tok_off = np.zeros(num_items + 1, np.int64)
    np.cumsum(exact.item_tokens, out=tok_off[1:])
    diff = np.zeros(int(tok_off[-1]) + 1, np.int64)
    np.add.at(diff, tok_off[matched_q[:, 0]] + matched_q[:, 1], 1)
    np.add.at(diff, tok_off[matched_q[:, 0]] + matched_q[:, 1] + n, -1)
    covered = (np.cumsum(diff)[:-1] > 0).astype(np.int64)
    cov_sum = np.zeros(covered.shape[0] + 1, np.int64)
    np.cumsum(covered, out=cov_sum[1:])
    covered_per_item = cov_sum[tok_off[1:]] - cov_sum[tok_off[:-1]]

    runs_by_item: dict[int, list[int]] = {}
    for r in range(run_item.shape[0]):
        runs_by_item.setdefault(int(run_item[r]), []).append(r)

    near_best = _best_near(index, result, doc_names)
    sorted_names = doc_names[np.argsort(doc_names, kind="stable")] if len(result.docs) else doc_names

    items_out: list[ItemOverlap] = []
    for i, ref in enumerate(index.items):
        ngrams = int(exact.item_ngrams[i])
        tokens = int(exact.item_tokens[i])
        runs = runs_by_item.get(i, [])
        per_doc: dict[int, list[int]] = {}
        for r in runs:
            per_doc.setdefault(int(run_doc[r]), []).append(r)
        ranked = sorted(per_doc, key=lambda d: (-max(int(run_tokens[r]) for r in per_doc[d]), d))
        documents = tuple(
            DocumentMatch(
                id=str(sorted_names[d]),
                spans=tuple(
                    Span(start=int(run_start[r]), end=int(run_end[r]), tokens=int(run_tokens[r]))
                    for r in sorted(per_doc[d], key=lambda r: (int(run_start[r]), int(run_end[r])))
                ),
            )
            for d in ranked[:max_documents]
        )
        items_out.append(
            ItemOverlap(
                id=ref.id,
                partition=ref.partition,
                matched=bool(runs),
                ngram_fraction=float(ngram_hits[i]) / ngrams if ngrams else 0.0,
                token_coverage=float(covered_per_item[i]) / tokens if tokens else 0.0,
                longest_span=max((int(run_tokens[r]) for r in runs), default=0),
                minhash=near_best.get(i),
                documents=documents,
                documents_total=len(per_doc),
                tokens=tokens,
                ngrams=ngrams,
            )
        )
    return OverlapReport(
        fingerprint=index.settings,
        mode=mode,
        benchmark=benchmark,
        frequency_cap=frequency_cap,
        corpus=CorpusStats(
            sources=result.sources, documents=result.documents, bytes=result.nbytes, problems=result.problems
        ),
        items=tuple(items_out),
    )


def _best_near(index: BenchmarkIndex, result: ShardResult, doc_names: np.ndarray) -> dict[int, MinHashMatch]:
    threshold = index.settings.minhash.min_containment
    best: dict[int, tuple[float, float, str, int, int]] = {}
    for j in range(result.near_item.shape[0]):
        item = int(result.near_item[j])
        cand = (
            float(result.near_cont[j]),
            float(result.near_jac[j]),
            str(doc_names[int(result.near_doc[j])]),
            int(result.near_start[j]),
            int(result.near_end[j]),
        )
        if cand[0] < threshold:
            continue
        prev = best.get(item)
        # highest containment, then Jaccard; ties go to the smallest document id (deterministic)
        if prev is None or (cand[0], cand[1], _neg(cand[2])) > (prev[0], prev[1], _neg(prev[2])):
            best[item] = cand
    return {
        i: MinHashMatch(containment=round(c, 6), jaccard=round(jv, 6), document=d, start=s, end=e)
        for i, (c, jv, d, s, e) in best.items()
    }


def _neg(name: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in name)
