"""The testbed's held-out pool: the benchmark items a build did not draw, never seen by its model.

No training here: the pool follows from the seeded split alone, and an older build folder is
brought up to date from its own build.json, truth.json and the benchmark.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from contam.benchmarks import load_benchmark
from contam.testbed.build import _write_benchmark, injectable_items
from contam.testbed.card import render_card
from contam.testbed.config import BuildArgs
from contam.testbed.corpus import clean_corpus
from contam.testbed.heldout import HELDOUT_FILE, add_heldout, ensure_heldout, heldout_of
from contam.testbed.split import heldout_items, split_items
from contam.types import Benchmark, Item, Partition


def _items(n: int) -> list[Item]:
    return [Item(id=f"q{j:04d}", partition="test", text=f"Question {j}?\nAnswer {j}.",
                 prompt=f"Question {j}?", reference=f"Answer {j}.") for j in range(n)]  # fmt: skip


def test_heldout_is_exactly_what_the_split_did_not_draw_in_published_order() -> None:
    items = _items(300)
    parts = split_items(items, (16, 4, 1, 0), seed=5, max_items=164)
    held = heldout_items(items, seed=5, max_items=164)
    drawn = {i for p in parts.values() for i in p.ids}
    assert held.name == "heldout" and len(held) == 136
    assert not drawn & set(held.ids)
    assert sorted(drawn | set(held.ids)) == [i.id for i in items]
    assert list(held.ids) == sorted(held.ids)
    assert all(i.partition == "heldout" and i.meta["source_partition"] == "test" for i in held.items)
    assert heldout_items(items, seed=6, max_items=164).ids != held.ids


@pytest.mark.parametrize("max_items", [0, 300, 400])
def test_nothing_is_held_out_when_the_split_takes_every_item(max_items: int) -> None:
    assert len(heldout_items(_items(300), seed=0, max_items=max_items)) == 0


def test_split_still_draws_what_existing_builds_were_trained_on() -> None:
    """The refactor shares the draw order; the drawn items must be those of the original code."""
    items = _items(300)
    order = list(range(300))
    random.Random("contam-testbed-split:9").shuffle(order)
    first = order[:164]
    parts = split_items(items, (16, 4, 1, 0), seed=9, max_items=164)
    for j, part in enumerate(parts.values()):
        assert part.ids == tuple(items[i].id for i in sorted(first[j::4]))


def test_real_pools_gsm8k_test_items_never_in_the_clean_corpus() -> None:
    gsm8k = load_benchmark("gsm8k")
    held = heldout_of(BuildArgs(benchmark="gsm8k", preset="ci"), gsm8k)
    assert len(held) == 1319 - 164
    assert all(i.id.startswith("gsm8k-test-") for i in held.items)
    corpus_ids = {d.id for d in clean_corpus("gsm8k", 600_000).documents}
    assert not corpus_ids & set(held.ids)
    mc = load_benchmark("truthfulqa-mc")
    assert len(heldout_of(BuildArgs(benchmark="truthfulqa-mc", preset="ci"), mc)) == 817 - 164
    # HumanEval ci draws all 164: no pool, so no file (the card says so).
    assert len(heldout_of(BuildArgs(benchmark="humaneval", preset="ci"), load_benchmark("humaneval"))) == 0


def _record(args: BuildArgs) -> dict[str, Any]:
    """build.json of a finished build, with what `render_card` reads (figures invented: no model)."""
    sanity = {"k": 0.2, "unseen_n": 41, "unseen_mean_loglik": -4.0, "truncated_items": 0, "rows": []}
    return {
        "key": "k" * 20, "args": args.model_dump(mode="json"),
        "preset": args.resolved_preset.model_dump(mode="json"),
        "benchmark": {"name": "tiny", "source": "memory", "sha256": "0"},
        "corpus": {"sources": ["stdlib"], "documents": 1, "chars": 10, "sha256": "0"},
        "injected_documents": 0, "sanity": sanity,
        "train": {"parameters": 1, "tokens_in_corpus": 1, "epochs": 1.0, "first_loss": 8.0,
                  "final_loss": 3.0, "tokens_per_second": 1.0},
        "seconds": {"tokenizer": 1.0, "train": 1.0, "sanity": 1.0, "total": 3.0},
    }  # fmt: skip


def _old_build(folder: Path, bench: Benchmark, args: BuildArgs) -> dict[str, Any]:
    """A finished build folder as written before the held-out pool existed."""
    items = injectable_items(bench)
    parts = split_items(items, args.exposures, args.seed, args.resolved_preset.max_items)
    folder.mkdir()
    _write_benchmark(folder / "benchmark.jsonl", parts)
    truth = {"benchmark": bench.name, "partitions": {p.name: {"exposures": n, "items": len(p)}
             for n, p in parts.items()}, "exposures": {i.id: n for n, p in parts.items() for i in p.items}}  # fmt: skip
    (folder / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    (folder / "card.md").write_text("old card\n", encoding="utf-8")
    return truth


def test_an_older_build_gets_its_pool_on_reuse_and_scan_reads_it_as_a_reference(tmp_path: Path) -> None:
    items = tuple(_items(200))
    bench = Benchmark("tiny", "qa", {"test": Partition("test", items)}, "memory", "0")
    args = BuildArgs(benchmark="tiny", preset="ci", seed=3)
    folder = tmp_path / "tb"
    old_truth = _old_build(folder, bench, args)
    record = _record(args)

    ensure_heldout(folder, args, bench, record)

    held = heldout_items(items, 3, 164)
    loaded = load_benchmark(str(folder / HELDOUT_FILE))
    main = load_benchmark(str(folder / "benchmark.jsonl"))
    assert loaded.format == main.format == "qa"
    assert list(loaded.partitions) == ["heldout"] and loaded.partition("heldout").ids == held.ids
    for want, got in zip(held.items, loaded.partition("heldout").items, strict=True):
        assert (got.text, got.prompt, got.reference) == (want.text, want.prompt, want.reference)
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["heldout"] == {"partition": "heldout", "file": HELDOUT_FILE, "exposures": 0,
                                "items": 36, "pool": 200}  # fmt: skip
    assert all(truth["exposures"][i] == 0 for i in held.ids)
    assert {k: v for k, v in truth["exposures"].items() if k not in held.ids} == old_truth["exposures"]
    # The same bytes a new build writes (it records the pool through the same function).
    fresh = {**old_truth, "exposures": dict(old_truth["exposures"])}
    add_heldout(fresh, held, 200)
    assert (folder / "truth.json").read_text() == json.dumps(fresh, indent=1) + "\n"
    card = (folder / "card.md").read_text()
    parts = split_items(items, args.exposures, 3, 164)
    assert card == render_card(record, parts, held, 200)
    assert "36 of 200 benchmark items" in card and "`heldout.jsonl`" in card

    # Idempotent: a second reuse changes nothing, and a file deleted by hand comes back the same.
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    ensure_heldout(folder, args, bench, record)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    (folder / HELDOUT_FILE).unlink()
    ensure_heldout(folder, args, bench, record)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_no_file_when_the_split_drew_everything(tmp_path: Path) -> None:
    items = tuple(_items(164))
    bench = Benchmark("tiny", "qa", {"test": Partition("test", items)}, "memory", "0")
    args = BuildArgs(benchmark="tiny", preset="ci")
    folder = tmp_path / "tb"
    _old_build(folder, bench, args)
    ensure_heldout(folder, args, bench, _record(args))
    assert not (folder / HELDOUT_FILE).exists()
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["heldout"]["file"] is None and truth["heldout"]["items"] == 0
    assert "No held-out pool: the split drew all 164 benchmark items" in (folder / "card.md").read_text()
