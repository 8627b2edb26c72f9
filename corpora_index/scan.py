"""Streaming scan: stream corpus documents past a benchmark index in bounded memory.

`scan_shard` is the one per-shard function every engine runs (in process, in worker processes,
as a Ray Data map). It returns a `ShardResult` of hits; shard results merge by addition
(`sum(parts, ShardResult.zero())`) and `finalize` turns the merged hits into `overlap.json` items,
so one, two or N workers give the same report.

Memory: a document is always scanned whole within one batch, so each batch folds its raw n-gram
hits at once into per (item, document) evidence: the hits of the `SPANS_PER_DOCUMENT` longest
contiguous matches, and of the others one match per distinct stretch of the item (the first) with
the number of matches of that stretch. A frequency cap, known only once all shards are merged,
splits a match by the item positions it holds, so matches of the same stretch split alike and one
stands for all of them: under any cap, the fold changes no figure of the report, only which of
such identical matches a document lists (tested). What a
shard result holds is then bounded by the distinct stretches each document holds, not by the number
of hits (a document that repeats an item a thousand times costs as much as one that holds it
`SPANS_PER_DOCUMENT + 1` times). The fold depends only on each document's own hits, so it is the
same however the corpus is sharded, and the persistent index folds its postings the same way.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from corpora_index.benchmark_index import BenchmarkIndex
from corpora_index.exact import ExactIndex
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

# contiguous matches kept per (item, document): the longest; of the rest, one per item stretch
SPANS_PER_DOCUMENT = 16

# one row per matched (item, n-gram position) of a kept match; hit_copies: how many matches of the
# document that match stands for (1, or more for the first of the matches beyond the longest)
_HIT_FIELDS = ("hit_key", "hit_item", "hit_doc", "hit_q", "hit_pos", "hit_start", "hit_end", "hit_copies")
_NEAR_FIELDS = ("near_item", "near_doc", "near_cont", "near_jac", "near_start", "near_end")
_ARRAYS = _HIT_FIELDS + _NEAR_FIELDS
_DOC_FIELDS = ("hit_doc", "near_doc")


def _i64() -> I64:
    return np.zeros(0, np.int64)


def _f64() -> F64:
    return np.zeros(0, np.float64)


@dataclass(frozen=True)
class ShardResult:
    """Evidence from part of a corpus. `*_doc` index `docs` (only documents with hits)."""

    docs: tuple[str, ...] = ()
    hit_key: I64 = field(default_factory=_i64)  # index into the benchmark's exact keys
    hit_item: I64 = field(default_factory=_i64)
    hit_doc: I64 = field(default_factory=_i64)
    hit_q: I64 = field(default_factory=_i64)  # n-gram position in the item
    hit_pos: I64 = field(default_factory=_i64)  # word position in the document
    hit_start: I64 = field(default_factory=_i64)  # character offsets of the n-gram in the document
    hit_end: I64 = field(default_factory=_i64)
    hit_copies: I64 = field(default_factory=_i64)  # matches the row's match stands for, itself included
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
        for name in _ARRAYS:
            chunks = []
            for off, p in zip(offsets, parts, strict=False):
                value = getattr(p, name)
                chunks.append(value + off if name in _DOC_FIELDS else value)
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
            **{name: getattr(self, name) for name in _ARRAYS},
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ShardResult:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes())
            arrays = {name: z[name] for name in _ARRAYS}
        return cls(
            docs=tuple(meta["docs"]),
            documents=meta["documents"],
            nbytes=meta["bytes"],
            sources=tuple(meta["sources"]),
            problems=tuple(CorpusProblem.model_validate(p) for p in meta["problems"]),
            **arrays,
        )


@dataclass(frozen=True, slots=True)
class _Runs:
    """Contiguous matches: rows sorted by (item, doc, diagonal, q), cut where a copy breaks."""

    order: I64  # row order
    run_of_row: I64  # run index of each sorted row
    item: I64
    doc: I64
    q: I64  # first n-gram position in the item
    tokens: I64
    start: I64
    end: I64
    rank: I64  # place within its (item, doc): 0 = longest, ties by offsets

    def __len__(self) -> int:
        return int(self.item.shape[0])


def _runs(n: int, item: I64, doc: I64, q: I64, pos: I64, start: I64, end: I64) -> _Runs:
    """A run: same item, document and diagonal (pos - q), consecutive item positions = one copy."""
    diag = pos - q
    order = np.lexsort((q, diag, doc, item))
    item, doc, diag, q = item[order], doc[order], diag[order], q[order]
    brk = np.ones(item.shape[0], np.bool_)
    if item.shape[0] > 1:
        brk[1:] = (
            (item[1:] != item[:-1]) | (doc[1:] != doc[:-1]) | (diag[1:] != diag[:-1]) | (q[1:] != q[:-1] + 1)
        )
    first = np.flatnonzero(brk)
    last = (np.append(first[1:], item.shape[0]) - 1) if first.shape[0] else _i64()
    r_item, r_doc = item[first], doc[first]
    r_tokens = q[last] - q[first] + n
    r_start, r_end = start[order][first], end[order][last]
    ranked = np.lexsort((r_end, r_start, -r_tokens, r_doc, r_item))
    group = np.ones(ranked.shape[0], np.bool_)
    if ranked.shape[0] > 1:
        group[1:] = (r_item[ranked][1:] != r_item[ranked][:-1]) | (r_doc[ranked][1:] != r_doc[ranked][:-1])
    idx = np.arange(ranked.shape[0])
    group_start = np.maximum.accumulate(np.where(group, idx, 0)) if ranked.shape[0] else _i64()
    rank = np.empty(ranked.shape[0], np.int64)
    rank[ranked] = idx - group_start
    return _Runs(order, np.cumsum(brk) - 1, r_item, r_doc, q[first], r_tokens, r_start, r_end, rank)


def fold_hits(exact: ExactIndex, key: I64, doc: I64, pos: I64, start: I64, end: I64) -> ShardResult:
    """Raw n-gram hits of whole documents -> bounded evidence per (item, document): the rows of its
    `SPANS_PER_DOCUMENT` longest matches, and of the rest the first match of each item stretch with
    the number of matches of that stretch."""
    row, item, q = exact.expand(key)
    k, d, p, s, e = key[row], doc[row], pos[row], start[row], end[row]
    runs = _runs(exact.settings.n, item, d, q, p, s, e)
    copies = _copies(runs)[runs.run_of_row]
    o = runs.order
    kept = copies > 0
    return ShardResult(
        hit_key=k[o][kept],
        hit_item=item[o][kept],
        hit_doc=d[o][kept],
        hit_q=q[o][kept],
        hit_pos=p[o][kept],
        hit_start=s[o][kept],
        hit_end=e[o][kept],
        hit_copies=copies[kept],
    )


def _copies(runs: _Runs) -> I64:
    """Per match, how many it stands for: 1 for the longest, 0 or the count of its stretch for the rest.

    A cap splits a match by the item positions it holds, so matches of the same stretch of the item
    split alike; the first (by offsets) of them is kept for all.
    """
    copies = np.ones(len(runs), np.int64)
    rest = np.flatnonzero(runs.rank >= SPANS_PER_DOCUMENT)
    if rest.shape[0] == 0:
        return copies
    rest = rest[
        np.lexsort((runs.rank[rest], runs.tokens[rest], runs.q[rest], runs.doc[rest], runs.item[rest]))
    ]
    same = np.ones(rest.shape[0] - 1, np.bool_)
    for a in (runs.item, runs.doc, runs.q, runs.tokens):
        same &= a[rest][1:] == a[rest][:-1]
    first = np.flatnonzero(np.concatenate(([True], ~same)))
    copies[rest] = 0
    copies[rest[first]] = np.diff(np.append(first, rest.shape[0]))
    return copies


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
    folded = replace(
        fold_hits(index.exact, hits.key, remap[hits.doc], hits.pos, hits.start, hits.end), docs=names
    )
    if near is None:
        return folded
    return replace(
        folded,
        near_item=near.item,
        near_doc=remap[near.doc],
        near_cont=near.containment,
        near_jac=near.jaccard,
        near_start=near.start,
        near_end=near.end,
    )


def scan_shard(
    index: BenchmarkIndex,
    sources: Sequence[Source],
    reader: ReaderOptions = DEFAULT_READER,
    *,
    minhash: bool = True,
    batch_bytes: int = 1 << 20,
    on_bytes: Callable[[int], None] | None = None,
) -> ShardResult:
    """The per-shard function: read the shard's files and scan them.

    `on_bytes` hears the bytes of the shard's sources as they are read (a MB or a file at a time).
    """
    problems: list[CorpusProblem] = []
    hasher = Hasher(index.settings)

    def documents() -> Iterable[Document]:
        for source in sources:
            yield from read_source(source, reader, problems, on_bytes)

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
    Capped n-grams split the matches they were part of, and every field is computed from what is
    left, so they agree under any cap: an item is matched exactly when some n-gram of it is left,
    and then its fraction and coverage are above 0, its longest span is at least n words, and the
    first document listed holds that span. Each document lists its `SPANS_PER_DOCUMENT` longest
    pieces, except that matches of one item stretch beyond the longest are listed once (the first):
    its other copies count in `spans_omitted`, however long their pieces are after a cap.
    """
    exact = index.exact
    n = index.settings.n
    num_items = len(index.items)
    # documents in a canonical order, so the merge order of shards cannot change the report
    doc_names = np.array(result.docs, dtype=object)
    doc_rank = np.empty(len(result.docs), np.int64)
    doc_rank[np.argsort(doc_names, kind="stable")] = np.arange(len(result.docs))

    key, item, q = result.hit_key, result.hit_item, result.hit_q
    doc, pos, start, end = result.hit_doc, result.hit_pos, result.hit_start, result.hit_end
    copies = result.hit_copies
    if frequency_cap is not None and key.shape[0]:
        # a key is in a document when any of its (item, position) postings matched there
        pairs = np.unique(np.stack([key, doc], axis=1), axis=0)
        df = np.bincount(pairs[:, 0], minlength=exact.keys.shape[0])
        keep = df[key] <= frequency_cap
        key, item, q, doc, pos, start, end, copies = (
            a[keep] for a in (key, item, q, doc, pos, start, end, copies)
        )

    rdoc = doc_rank[doc] if doc.shape[0] else _i64()
    runs = _runs(n, item, rdoc, q, pos, start, end)
    # the pieces of one folded match all stand for as many matches as it did
    run_copies = np.zeros(len(runs), np.int64)
    run_copies[runs.run_of_row] = copies[runs.order]

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
    for r in range(len(runs)):
        runs_by_item.setdefault(int(runs.item[r]), []).append(r)

    near_best = _best_near(index, result, doc_names)
    sorted_names = doc_names[np.argsort(doc_names, kind="stable")] if len(result.docs) else doc_names

    items_out: list[ItemOverlap] = []
    for i, ref in enumerate(index.items):
        ngrams = int(exact.item_ngrams[i])
        tokens = int(exact.item_tokens[i])
        item_runs = runs_by_item.get(i, [])
        per_doc: dict[int, list[int]] = {}
        for r in item_runs:
            per_doc.setdefault(int(runs.doc[r]), []).append(r)
        ranked = sorted(per_doc, key=lambda d: (-max(int(runs.tokens[r]) for r in per_doc[d]), d))
        documents = []
        for d in ranked[:max_documents]:
            listed = [r for r in per_doc[d] if runs.rank[r] < SPANS_PER_DOCUMENT]
            omitted = sum(int(run_copies[r]) for r in per_doc[d]) - len(listed)
            spans = tuple(
                Span(start=int(runs.start[r]), end=int(runs.end[r]), tokens=int(runs.tokens[r]))
                for r in sorted(listed, key=lambda r: (int(runs.start[r]), int(runs.end[r])))
            )
            documents.append(DocumentMatch(id=str(sorted_names[d]), spans=spans, spans_omitted=omitted))
        items_out.append(
            ItemOverlap(
                id=ref.id,
                partition=ref.partition,
                matched=bool(ngram_hits[i] > 0),
                ngram_fraction=float(ngram_hits[i]) / ngrams if ngrams else 0.0,
                token_coverage=float(covered_per_item[i]) / tokens if tokens else 0.0,
                longest_span=max((int(runs.tokens[r]) for r in item_runs), default=0),
                minhash=near_best.get(i),
                documents=tuple(documents),
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
            sources=tuple(dict.fromkeys(result.sources)),  # a file cut into ranges is listed once
            documents=result.documents,
            bytes=result.nbytes,
            problems=result.problems,
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
