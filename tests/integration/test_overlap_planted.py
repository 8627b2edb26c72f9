"""Planted contamination in the CPython stdlib: recall and precision per form, and every way of
running the scan (stream, persistent index, 1 and 2 workers, Ray) giving the same evidence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corpora_index import (
    BenchmarkIndex,
    CorpusIndex,
    OverlapReport,
    ReaderOptions,
    ShardTask,
    build_index,
    expand_sources,
    finalize,
    run_local,
    run_ray,
)
from corpora_index.readers import plan_shards
from tests.fixtures.overlap_planted import EXACT_FORMS, NEAR_FORMS, Planted, build_planted, recall_precision

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return build_planted(tmp_path_factory.mktemp("planted"), corpus_bytes=4_000_000, per_form=20, clean=60)


@pytest.fixture(scope="module")
def index(planted: Planted) -> BenchmarkIndex:
    return BenchmarkIndex.build(planted.items)


@pytest.fixture(scope="module")
def tasks(planted: Planted) -> list[ShardTask]:
    sources = expand_sources([planted.corpus])
    return [ShardTask(shard, ReaderOptions(), True, 1 << 20) for shard in plan_shards(sources, 512 << 10)]


@pytest.fixture(scope="module")
def streamed(index: BenchmarkIndex, tasks: list[ShardTask]) -> OverlapReport:
    return finalize(index, run_local(index, tasks, workers=1))


def test_recall_and_precision_per_planted_form(streamed: OverlapReport, planted: Planted) -> None:
    scores = recall_precision(streamed, planted)
    for form in EXACT_FORMS:
        recall, precision = scores[form]
        assert recall >= 0.99 and precision >= 0.99, (form, scores[form])
    for form in NEAR_FORMS:
        recall, precision = scores[form]
        assert recall >= 0.95 and precision >= 0.9, (form, scores[form])
    clean = [i for i in streamed.items if i.id in planted.clean]
    assert not any(i.matched or i.minhash for i in clean)


def test_verbatim_copies_are_found_whole_at_their_offsets(streamed: OverlapReport, planted: Planted) -> None:
    by_key = streamed.by_key()
    partition = {i.id: i.partition for i in planted.items}
    for item_id, (form, doc) in planted.planted.items():
        if form != "verbatim":
            continue
        item = by_key[(partition[item_id], item_id)]
        assert item.longest_span == item.tokens and item.token_coverage == 1.0
        span = next(d for d in item.documents if d.id == doc).spans[0]
        copied = Path(doc).read_text(encoding="utf-8")[span.start : span.end]
        assert copied.split() and item.ngram_fraction == 1.0


def test_persistent_index_gives_the_streaming_exact_tier(
    streamed: OverlapReport, planted: Planted, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("idx") / "idx"
    build_index(expand_sources([planted.corpus]), out, shard_bytes=1 << 20)
    exact_only = BenchmarkIndex.build(planted.items, minhash=False)
    queried = finalize(exact_only, CorpusIndex(out).query(exact_only))
    assert [i.model_copy(update={"minhash": None}) for i in streamed.items] == list(queried.items)
    assert sum(i.matched for i in queried.items) >= 60


def test_two_workers_give_the_same_report(
    streamed: OverlapReport, index: BenchmarkIndex, tasks: list[ShardTask]
) -> None:
    assert finalize(index, run_local(index, tasks, workers=2)) == streamed


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_engine_gives_the_same_report(
    ray_local: None, streamed: OverlapReport, index: BenchmarkIndex, tasks: list[ShardTask]
) -> None:
    assert finalize(index, run_ray(index, tasks)) == streamed
