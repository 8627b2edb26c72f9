"""Corpus overlap between benchmarks and pretraining corpora: exact n-gram and MinHash LSH tiers.

A pure library: the CLI (`contam overlap`, `contam index ...`) and the service call it. Names are
imported lazily, so `import corpora_index.report` needs only pydantic, and nothing here imports
numba, Ray or Redis until it is used.

Corpus overlap
--------------
Does the benchmark text itself appear in a corpus, and how much of it?

    contam overlap BENCHMARK CORPUS... --out overlap.json      # streaming scan (exact + MinHash)
    contam index build CORPUS... --out IDX                     # persistent index, built once
    contam index query IDX BENCHMARK --out overlap.json        # exact tier, in seconds
    contam scan BENCHMARK --model M --overlap overlap.json     # overlap evidence in the scan report

CORPUS is JSONL (plain, .gz, .zst), Parquet, text files or folders of them (`--text-field`,
`--id-field`, `--glob`); `--on-error skip` reports a corrupt line, row or file and goes on.
`--workers N` (or `--engine ray`) splits the corpus, a big plain JSONL file included; `--redis`
shares the MinHash LSH. Text is folded (NFKC, case, punctuation and whitespace; digits only with
`--fold-digits`) and cut into word n-grams (`--n`, 13 by default), so re-wrapped, re-spaced and
re-cased copies still match.

`overlap.json` holds `fingerprint` (n, normaliser, hash, seed and MinHash settings) and `items`,
one per benchmark item: `id`, `partition`, `matched` (any n-gram found), `ngram_fraction`,
`token_coverage`, `longest_span` (in words; the best single signal), `minhash` (best near-copy:
`containment`, `jaccard`, `document`, offsets; null from an index query) and `documents` (matching
document ids with character-offset `spans`, the longest 16 per document, `spans_omitted` counting
the rest). Document ids are the file path, `path:line` for JSONL, `path#row` for Parquet (from 1).

The frequency cap (`--frequency-cap K`) ignores n-grams found in more than K corpus documents, to
mute boilerplate. It is off by default because it costs recall: a benchmark item copied widely is
exactly such an n-gram, so the more an item leaked, the more of it the cap hides.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# contam first, whichever module of ours is imported first: `contam` imports `contam.report`, which
# imports our report models, and those (and our settings) import `contam.errors` back
import contam.errors  # noqa: F401

if TYPE_CHECKING:
    from corpora_index.api import check_index, scan
    from corpora_index.benchmark_index import BenchmarkIndex
    from corpora_index.engines import ShardTask, run_local, run_ray
    from corpora_index.normalize import Normalizer
    from corpora_index.persistent import CorpusIndex, build_index
    from corpora_index.readers import Document, ReaderOptions, Source, expand_sources
    from corpora_index.report import DocumentMatch, ItemOverlap, MinHashMatch, OverlapReport, Span
    from corpora_index.scan import ShardResult, finalize, scan_documents, scan_shard
    from corpora_index.settings import (
        IncompatibleIndexError,
        IndexSettings,
        MinHashSettings,
        NormalizerConfig,
    )

_EXPORTS = {
    "scan": "corpora_index.api",
    "check_index": "corpora_index.api",
    "BenchmarkIndex": "corpora_index.benchmark_index",
    "ShardTask": "corpora_index.engines",
    "run_local": "corpora_index.engines",
    "run_ray": "corpora_index.engines",
    "Normalizer": "corpora_index.normalize",
    "CorpusIndex": "corpora_index.persistent",
    "build_index": "corpora_index.persistent",
    "Document": "corpora_index.readers",
    "ReaderOptions": "corpora_index.readers",
    "Source": "corpora_index.readers",
    "expand_sources": "corpora_index.readers",
    "DocumentMatch": "corpora_index.report",
    "ItemOverlap": "corpora_index.report",
    "MinHashMatch": "corpora_index.report",
    "OverlapReport": "corpora_index.report",
    "Span": "corpora_index.report",
    "ShardResult": "corpora_index.scan",
    "finalize": "corpora_index.scan",
    "scan_documents": "corpora_index.scan",
    "scan_shard": "corpora_index.scan",
    "IncompatibleIndexError": "corpora_index.settings",
    "IndexSettings": "corpora_index.settings",
    "MinHashSettings": "corpora_index.settings",
    "NormalizerConfig": "corpora_index.settings",
}

__all__ = [
    "BenchmarkIndex",
    "CorpusIndex",
    "Document",
    "DocumentMatch",
    "IncompatibleIndexError",
    "IndexSettings",
    "ItemOverlap",
    "MinHashMatch",
    "MinHashSettings",
    "Normalizer",
    "NormalizerConfig",
    "OverlapReport",
    "ReaderOptions",
    "ShardResult",
    "ShardTask",
    "Source",
    "Span",
    "build_index",
    "check_index",
    "expand_sources",
    "finalize",
    "run_local",
    "run_ray",
    "scan",
    "scan_documents",
    "scan_shard",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'corpora_index' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
