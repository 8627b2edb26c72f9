"""One progress bar for a scan: model calls with their total (and so an ETA), and the benchmark
items done out of theirs, reported by `contam.scan` to any `ItemProgress`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from contam.benchmarks import load_benchmark
from contam.cli.progress import TqdmProgress
from contam.models.mock import MockModel
from contam.registry import get_probe
from contam.runner import ItemProgress, Runner
from contam.scan import scan
from tests.fixtures.reports import SEEN, write_benchmark


class Recording:
    def __init__(self) -> None:
        self.calls_total = self.calls_done = self.items_total = self.items_done = 0
        self.items_seen: list[tuple[int, int]] = []  # (items done, calls done) after each partition

    def add_total(self, n: int) -> None:
        self.calls_total += n

    def advance(self, n: int, *, cached: bool = False) -> None:
        self.calls_done += n

    def add_item_total(self, n: int) -> None:
        self.items_total += n

    def advance_items(self, n: int) -> None:
        self.items_done += n
        self.items_seen.append((self.items_done, self.calls_done))


def _scan(tmp_path: Path, progress: object) -> None:
    bench = load_benchmark(str(write_benchmark(tmp_path)))
    runner = Runner(MockModel(seen=SEEN), progress=progress)  # type: ignore[arg-type]
    probes = [get_probe(name).from_options({}) for name in ("loss", "min_k")]

    async def go() -> None:
        try:
            await scan(bench, runner, probes, model_spec="mock", reference=bench.partition("unseen"))
        finally:
            await runner.aclose()

    asyncio.run(go())


def test_a_scan_counts_probe_items_of_every_tested_partition(tmp_path: Path) -> None:
    progress = Recording()
    assert isinstance(progress, ItemProgress)
    _scan(tmp_path, progress)
    # One tested partition (seen, 20 items) under two probes; the reference's items are calls only.
    assert progress.items_total == 2 * len(SEEN)
    assert progress.items_done == progress.items_total
    assert [done for done, _ in progress.items_seen] == [len(SEEN), 2 * len(SEEN)]
    assert progress.calls_done == progress.calls_total > 0


def test_the_bar_shows_items_beside_calls(tmp_path: Path) -> None:
    bar = TqdmProgress("scan", enabled=True)
    _scan(tmp_path, bar)
    postfix = bar._bar.postfix or ""
    bar._bar.close()
    assert f"items={2 * len(SEEN)}/{2 * len(SEEN)}" in postfix
    assert bar._bar.total > 0  # model calls: the part of the bar tqdm takes its ETA from
