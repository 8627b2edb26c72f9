"""The held-out pool: benchmark items the build did not draw (beyond the preset's `max_items`).

They were never injected, so the model never saw them (exposure 0): a pool of never-seen items
large enough to cut into many disjoint reference partitions (GSM8K `ci`: 1,155 of 1,319 test items).
The pool follows from the build's split alone, so a build made before it existed gets the very
same file when it is reused; the weights and the cache key are untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contam.testbed.card import render_card
from contam.testbed.config import BuildArgs
from contam.testbed.files import atomic_write_text, write_items
from contam.testbed.split import HELDOUT, heldout_items, split_items
from contam.types import Benchmark, Item, Partition

HELDOUT_FILE = "heldout.jsonl"


def injectable_items(bench: Benchmark) -> list[Item]:
    """GSM8K: the test split (its train split is the clean corpus). Otherwise every item."""
    if bench.name == "gsm8k":
        return list(bench.partition("test").items)
    return list(bench.items())


def heldout_of(args: BuildArgs, bench: Benchmark) -> Partition:
    return heldout_items(injectable_items(bench), args.seed, args.resolved_preset.max_items)


def add_heldout(truth: dict[str, Any], held: Partition, pool: int) -> None:
    """Record the pool in truth.json's content: a `heldout` entry (`file` None when nothing was held
    out, and then no file is written) and exposure 0 for each held-out id. A new build and an older
    one brought up to date both go through here, so their truth.json bytes agree."""
    truth["heldout"] = {
        "partition": HELDOUT,
        "file": HELDOUT_FILE if len(held) else None,
        "exposures": 0,
        "items": len(held),
        "pool": pool,
    }
    truth["exposures"].update({item.id: 0 for item in held.items})


def write_heldout(folder: Path, held: Partition) -> Path | None:
    """`folder/heldout.jsonl` in the benchmark's row format, or None (and no file) when empty."""
    if not len(held):
        return None
    path = folder / HELDOUT_FILE
    write_items(path, held.items)
    return path


def ensure_heldout(folder: Path, args: BuildArgs, bench: Benchmark, record: dict[str, Any]) -> None:
    """Bring a finished build made before the held-out pool up to date, idempotently: write
    heldout.jsonl, re-render card.md, and record it in truth.json (last: its `heldout` entry marks
    the upgrade done)."""
    truth_path = folder / "truth.json"
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    done = truth.get("heldout")
    if done is not None and (done["file"] is None or (folder / done["file"]).is_file()):
        return
    items = injectable_items(bench)
    preset = args.resolved_preset
    held = heldout_items(items, args.seed, preset.max_items)
    write_heldout(folder, held)
    parts = split_items(items, args.exposures, args.seed, preset.max_items)
    atomic_write_text(folder / "card.md", render_card(record, parts, held, len(items)))
    add_heldout(truth, held, len(items))
    atomic_write_text(truth_path, json.dumps(truth, indent=1) + "\n")
