"""Two calls for callers (CLI, service): a streaming scan, and a query of a persistent index."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from corpora_index.benchmark_index import BenchmarkIndex
from corpora_index.engines import Engine, ShardTask, run_local, run_ray
from corpora_index.items import ItemLike
from corpora_index.persistent import CorpusIndex
from corpora_index.readers import (
    DEFAULT_READER,
    ReaderOptions,
    Source,
    expand_sources,
    plan_shards,
    split_sources,
)
from corpora_index.report import OverlapReport
from corpora_index.scan import finalize
from corpora_index.settings import IndexSettings

Items = Iterable[ItemLike | tuple[str, str, str]]


def scan(
    items: Items,
    corpus: Sequence[str | Path],
    *,
    settings: IndexSettings | None = None,
    reader: ReaderOptions = DEFAULT_READER,
    minhash: bool = True,
    workers: int = 1,
    engine: Engine = "local",
    frequency_cap: int | None = None,
    max_documents: int = 100,
    redis: str | None = None,
    benchmark: str | None = None,
    batch_bytes: int = 1 << 20,
    on_sources: Callable[[Sequence[Source]], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> OverlapReport:
    """Streaming scan: index the benchmark, stream the corpus past it, report per item.

    `on_sources` gets the corpus files before the scan (their sizes add up to the bytes that
    `on_progress` will report as they are read; `Source.compressed` says which count compressed).
    Plain JSONL files larger than a shard are cut into ranges of lines, so workers share them.
    """
    index = BenchmarkIndex.build(items, settings, minhash=minhash)
    if redis is not None:
        from corpora_index.redis_lsh import RedisTarget, publish

        index = publish(index, RedisTarget.parse(redis))
    sources = expand_sources(corpus, reader)
    if on_sources is not None:
        on_sources(sources)
    total = sum(s.size for s in sources)
    # several shards per worker so that a slow shard does not leave the others idle
    parallel = workers if engine == "local" else max(workers, 2)
    shard_bytes = max(1 << 20, min(64 << 20, total // max(1, 4 * parallel) + 1))
    shards = plan_shards(split_sources(sources, shard_bytes), shard_bytes)
    tasks = [ShardTask(shard, reader, minhash, batch_bytes) for shard in shards]
    if engine == "ray":
        result = run_ray(index, tasks, on_bytes=on_progress)
    else:
        result = run_local(index, tasks, workers=workers, on_bytes=on_progress)
    return finalize(
        index,
        result,
        frequency_cap=frequency_cap,
        max_documents=max_documents,
        mode="stream",
        benchmark=benchmark,
    )


def check_index(
    items: Items,
    index_path: str | Path,
    *,
    frequency_cap: int | None = None,
    max_documents: int = 100,
    benchmark: str | None = None,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> OverlapReport:
    """Query a persistent corpus index with a benchmark (exact tier; `minhash` is null).

    Progress is in corpus bytes (text as indexed, uncompressed), one shard at a time.
    """
    corpus = CorpusIndex(index_path)
    if on_total is not None:
        on_total(corpus.corpus_bytes)
    index = BenchmarkIndex.build(items, corpus.settings, minhash=False)
    result = corpus.query(index, on_bytes=on_progress)
    return finalize(
        index,
        result,
        frequency_cap=frequency_cap,
        max_documents=max_documents,
        mode="index",
        benchmark=benchmark,
    )
