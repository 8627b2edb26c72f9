"""Testbed recipe pieces that need no training: build keys, seeded splits, injection forms, CLI checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from contam.benchmarks import load_benchmark
from contam.cli.main import cli
from contam.testbed.build import _write_benchmark, injectable_items
from contam.testbed.config import BuildArgs
from contam.testbed.corpus import clean_corpus
from contam.testbed.inject import injected_documents, question_only, rewrapped
from contam.testbed.split import split_items
from contam.types import Item


def _items(n: int) -> list[Item]:
    return [Item(id=f"i{j:03d}", partition="test", text=f"def f{j}():\n    return {j}\n",
                 prompt=f"def f{j}():\n", reference=f"    return {j}\n") for j in range(n)]


def test_split_is_seeded_disjoint_balanced_and_keeps_published_order() -> None:
    items = _items(164)
    parts = split_items(items, (16, 4, 1, 0), seed=3)
    assert [p.name for p in parts.values()] == ["seen_x16", "seen_x4", "seen_x1", "unseen"]
    assert [len(p) for p in parts.values()] == [41, 41, 41, 41]
    ids = [i.id for p in parts.values() for i in p.items]
    assert sorted(ids) == [i.id for i in items]
    for p in parts.values():
        assert list(p.ids) == sorted(p.ids)  # published order inside a partition
        assert all(i.partition == p.name and i.meta["source_partition"] == "test" for i in p.items)
    again = split_items(items, (16, 4, 1, 0), seed=3)
    other = split_items(items, (16, 4, 1, 0), seed=4)
    assert {n: p.ids for n, p in again.items()} == {n: p.ids for n, p in parts.items()}
    assert {n: p.ids for n, p in other.items()} != {n: p.ids for n, p in parts.items()}


def test_split_max_items_samples_before_splitting() -> None:
    parts = split_items(_items(1000), (4, 0), seed=0, max_items=100)
    assert [len(p) for p in parts.values()] == [50, 50]


def test_exposures_are_validated_and_sorted() -> None:
    assert BuildArgs(benchmark="humaneval", exposures=(0, 1, 16, 4)).exposures == (16, 4, 1, 0)
    for bad in [(16, 4, 1), (4, 4, 0), (-1, 0), (0,)]:
        with pytest.raises(ValidationError):
            BuildArgs(benchmark="humaneval", exposures=bad)
    with pytest.raises(ValidationError):
        BuildArgs(benchmark="humaneval", preset="huge")


def test_build_key_changes_with_every_input() -> None:
    base = BuildArgs(benchmark="humaneval")
    key = base.key("b", "c")
    assert key == BuildArgs(benchmark="humaneval").key("b", "c")
    variants = [
        base.model_copy(update={"seed": 1}),
        base.model_copy(update={"form": "rewrapped"}),
        base.model_copy(update={"exposures": (8, 0)}),
        base.model_copy(update={"preset": "bench"}),
        base.model_copy(update={"steps": 7}),
    ]
    keys = {v.key("b", "c") for v in variants} | {base.key("b2", "c"), base.key("b", "c2")}
    assert key not in keys and len(keys) == 7


def test_injection_counts_and_forms() -> None:
    parts = split_items(_items(12), (4, 1, 0), seed=0)
    docs = injected_documents(parts, "verbatim", "toy")
    assert len(docs) == 4 * 4 + 1 * 4  # unseen contributes nothing
    unseen = {i.text for i in parts[0].items}
    assert not unseen & {d.text for d in docs}
    seen4 = parts[4].items[0]
    assert sum(d.text == seen4.text for d in docs) == 4

    q = injected_documents(parts, "question_only", "toy")
    assert all("return" not in d.text for d in q)

    dump = injected_documents(parts, "canonical_dump", "toy")
    assert len(dump) == 4 + 1
    assert dump[0].text == "\n\n".join(i.text for i in parts[4].items)

    meta = injected_documents(parts, "with_metadata", "toy")
    assert meta[0].text.startswith("Dataset: toy\nSplit: test\nID: ")
    assert meta[0].text.endswith(parts[4].items[0].text)


def test_rewrapped_and_question_only_for_multiple_choice() -> None:
    item = Item(id="m", partition="p", text="Q?\nA. Yes\nB. No\nAnswer: B", prompt="Q?",
                choices=("Yes", "No"), answer_index=1)
    assert question_only(item) == "Q?\nA. Yes\nB. No"
    long = Item(id="t", partition="p", text="Def  F(x):\n\n    " + "Word " * 40)
    wrapped = rewrapped(long)
    assert wrapped == wrapped.lower() and "  " not in wrapped
    assert max(len(line) for line in wrapped.splitlines()) <= 72
    assert wrapped.split() == long.text.lower().split()


def test_benchmark_jsonl_round_trips_through_the_loader(tmp_path: Path) -> None:
    bench = load_benchmark("truthfulqa-mc")
    parts = split_items(injectable_items(bench), (4, 0), seed=0, max_items=20)
    path = tmp_path / "benchmark.jsonl"
    _write_benchmark(path, parts)
    loaded = load_benchmark(str(path))
    assert loaded.format == "mc"
    assert loaded.counts == {"seen_x4": 10, "unseen": 10}
    for p in parts.values():
        for want, got in zip(p.items, loaded.partition(p.name).items, strict=True):
            assert (got.id, got.text, got.choices, got.answer_index) == (
                want.id, want.text, want.choices, want.answer_index)


def test_gsm8k_injects_test_items_and_trains_on_train_split() -> None:
    bench = load_benchmark("gsm8k")
    items = injectable_items(bench)
    assert len(items) == 1319 and all(i.partition == "test" for i in items)
    corpus = clean_corpus("gsm8k", 50_000)
    assert corpus.documents and all(d.id.startswith("gsm8k-train-") for d in corpus.documents)
    test_texts = {i.text for i in items}
    assert not test_texts & {d.text for d in corpus.documents}


def test_cli_rejects_bad_exposures_and_foreign_out(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["testbed", "build", "--benchmark", "humaneval", "--exposures", "4,x",
                              "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and "--exposures" in res.output
    res = runner.invoke(cli, ["testbed", "build", "--benchmark", "humaneval", "--exposures", "4,1",
                              "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and "unseen" in res.output
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    res = runner.invoke(cli, ["testbed", "build", "--benchmark", "humaneval", "--out", str(foreign),
                              "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 2 and "--force" in res.output
    assert (foreign / "notes.txt").read_text() == "mine"
    res = runner.invoke(cli, ["testbed", "show", str(foreign)])
    assert res.exit_code == 2 and "build.json" in res.output


def test_cli_list_shows_presets(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["testbed", "list", "--cache-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "ci " in res.output and "bench " in res.output and "builds in" in res.output
