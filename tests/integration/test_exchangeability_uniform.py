"""The sharded exchangeability test keeps its false-positive rate on a real model.

The model (`tiny_model_dir`, trained on a few stdlib modules through `hf`) never saw GSM8K. Each
run draws its own 16 GSM8K test questions in a random order, so the partition is exchangeable by
construction and the null holds; its p-values should then be uniform. Over RUNS independent runs
the number with p < 0.05 is Binomial(RUNS, 0.05) if the test is calibrated: we require it inside
that distribution's central 99.9% interval, and a Kolmogorov-Smirnov test against U(0, 1) not to
reject at 0.001. (The t-test across shards is the exact one-sample t test, the default; this checks
that the t approximation across shards holds at the sizes used here.)
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from contam.models.hf import HFModel
from contam.probe import ProbeContext
from contam.registry import get_probe
from contam.runner import Runner
from contam.types import Item, Partition

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GSM8K_TEST = REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
RUNS = 200
ITEMS = 16
# Shards of 2 questions (two orders each): the smallest real shards, so 200 runs stay affordable.
PARAMS = {"shards": 8, "permutations": 4}


def questions() -> list[str]:
    with GSM8K_TEST.open(encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh]


def test_p_values_are_uniform_on_exchangeable_data(tiny_model_dir: Path) -> None:
    from scipy.stats import binom, kstest

    pool = questions()
    probe = get_probe("exchangeability").from_options(PARAMS)
    runner = Runner(HFModel(tiny_model_dir, device="cpu", batch=16))

    async def one(run: int) -> float:
        texts = random.Random(run).sample(pool, ITEMS)  # a fresh exchangeable partition per run
        partition = Partition(
            "t", tuple(Item(id=f"{run}-{i}", partition="t", text=t) for i, t in enumerate(texts))
        )
        result = await probe.run(partition, runner, ProbeContext("gsm8k", seed=run))
        assert result.statistic is not None and result.statistic.p_value is not None
        return result.statistic.p_value

    async def all_runs() -> list[float]:
        return [await one(run) for run in range(RUNS)]

    p_values = asyncio.run(all_runs())
    rejections = sum(p < 0.05 for p in p_values)
    print(f"\n{rejections}/{RUNS} runs with p < 0.05; KS p = {kstest(p_values, 'uniform').pvalue:.3f}")
    low, high = binom.ppf(0.0005, RUNS, 0.05), binom.ppf(0.9995, RUNS, 0.05)
    assert low <= rejections <= high, (
        f"{rejections}/{RUNS} runs had p < 0.05; calibrated: [{low:.0f}, {high:.0f}]"
    )
    ks = kstest(p_values, "uniform")
    assert ks.pvalue > 0.001, f"p-values not uniform: KS D={ks.statistic:.3f}, p={ks.pvalue:.2e}"
    # Not a constant: the test really varies with the data.
    assert len({round(p, 6) for p in p_values}) > RUNS // 2
