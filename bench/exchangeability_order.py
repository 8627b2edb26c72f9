"""The exchangeability test's false-positive rate when the published order carries structure.

Oren et al.'s test asks whether a model prefers a partition's published order to random
permutations of it, shard by shard. Its null is that the published order is random. Real
benchmarks are often sorted or grouped (by length, by topic, by source), and a model that knows
the benchmark's *style* without having seen these items may prefer such an order anyway: that
would be a false positive the verdict engine cannot tell from contamination (issue 17, finding 2).

Measured on the GSM8K `ci` testbed model, which was trained on GSM8K's train split (it knows the
style) and never saw the held-out test items. Each run draws `--items` held-out items, orders them
by one rule, and runs the probe (`--shards`, `--permutations`, exact t test, the default); runs are
drawn afresh per rule from one seed. Orders:

- `random`: the control, exchangeable by construction;
- `length`: sorted by length, shortest first (a common published order);
- `answer`: sorted by the final answer's value (a sort key unrelated to the text's style);
- `topic`: grouped by a crude topic, the first of money / time / distance / count words the
  question uses, items with none last, and by length within a group.

Prints per order the share of runs with p <= 0.05, its Wilson 95% interval, and a one-sided
binomial p against 0.05; exit status 1 when some order's Wilson lower bound exceeds 0.05.

    python bench/exchangeability_order.py [--runs 200] [--items 16] [--shards 8] [--permutations 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contam.models.spec import ModelSpec  # noqa: E402
from contam.probe import ProbeContext  # noqa: E402
from contam.registry import create_model, get_probe  # noqa: E402
from contam.runner import Runner  # noqa: E402
from contam.stats import wilson_interval  # noqa: E402
from contam.types import Item, Partition  # noqa: E402

TESTBED = REPO / ".contam" / "testbed" / "gsm8k-ci"
TOPICS = (
    ("money", re.compile(r"\$|dollar|cent|price|cost|pay|sell|buy", re.I)),
    ("time", re.compile(r"hour|minute|day|week|month|year", re.I)),
    ("distance", re.compile(r"mile|meter|feet|foot|inch|km", re.I)),
    ("count", re.compile(r"how many", re.I)),
)


def answer_value(item: Item) -> float:
    found = re.search(r"####\s*(-?[\d,.]+)", item.text)
    try:
        return float(found.group(1).replace(",", "")) if found else float("inf")
    except ValueError:
        return float("inf")


def topic(item: Item) -> int:
    return next((i for i, (_, rx) in enumerate(TOPICS) if rx.search(item.prompt or item.text)), len(TOPICS))


ORDERS: dict[str, Callable[[list[Item], random.Random], list[Item]]] = {
    "random": lambda items, rng: rng.sample(items, len(items)),
    "length": lambda items, rng: sorted(items, key=lambda i: len(i.text)),
    "answer": lambda items, rng: sorted(items, key=answer_value),
    "topic": lambda items, rng: sorted(items, key=lambda i: (topic(i), len(i.text))),
}


def heldout() -> list[Item]:
    with (TESTBED / "heldout.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return [
        Item(
            id=r["id"],
            partition="heldout",
            text=r["text"],
            prompt=r.get("prompt"),
            reference=r.get("reference"),
        )
        for r in rows
    ]


async def rates(args: argparse.Namespace, pool: Sequence[Item]) -> dict[str, list[float]]:
    probe = get_probe("exchangeability").from_options(
        {"shards": args.shards, "permutations": args.permutations}
    )
    runner = Runner(create_model(ModelSpec.parse(f"hf:{TESTBED / 'model'}?batch=16")))
    out: dict[str, list[float]] = {name: [] for name in ORDERS}
    try:
        for name, order in ORDERS.items():
            rng = random.Random(args.seed)
            for run in range(args.runs):
                chosen = order(rng.sample(list(pool), args.items), rng)
                part = Partition("heldout", tuple(chosen))
                result = await probe.run(part, runner, ProbeContext("gsm8k", seed=args.seed + run))
                assert result.statistic is not None and result.statistic.p_value is not None
                out[name].append(result.statistic.p_value)
            k = sum(p <= 0.05 for p in out[name])
            print(f"  {name}: {k}/{args.runs} runs with p <= 0.05", file=sys.stderr, flush=True)
    finally:
        await runner.aclose()
    return out


def main() -> int:
    from scipy.stats import binomtest

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--permutations", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not (TESTBED / "model" / "model.safetensors").is_file():
        print(f"no testbed at {TESTBED}: contam testbed build --benchmark gsm8k --preset ci", file=sys.stderr)
        return 2
    found = asyncio.run(rates(args, heldout()))
    print(
        f"exchangeability on never-seen GSM8K items (the gsm8k-ci testbed model knows GSM8K's style), "
        f"{args.runs} runs per order of {args.items} items, {args.shards} shards, {args.permutations} "
        "permutations, exact t; share of runs with p <= 0.05"
    )
    head = f"{'order':<8}{'rejected':>10}{'rate':>7}{'Wilson 95%':>18}{'binomial p (> 0.05)':>22}"
    print(head + "\n" + "-" * len(head))
    worst = 0.0
    for name, ps in found.items():
        k = sum(p <= 0.05 for p in ps)
        ci = wilson_interval(k, len(ps))
        worst = max(worst, ci.low)
        test = binomtest(k, len(ps), 0.05, alternative="greater").pvalue
        print(f"{name:<8}{k:>6}/{len(ps):<3}{k / len(ps):>7.3f}   [{ci.low:.3f}, {ci.high:.3f}]{test:>22.3g}")
    ok = worst <= 0.05
    print(f"{'PASS' if ok else 'FAIL'}: no order's Wilson lower bound above 0.05 (largest {worst:.3f})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
