"""Detection quality of the likelihood probes on the testbed, and scoring throughput per backend.

On a testbed (a small Llama trained with HumanEval partitions injected 16, 4, 1 and 0 times),
every score probe scores every item through the hf backend; for each exposure level against the
`unseen` partition it prints the instance-level AUROC, TPR at 5% FPR and FPR at 95% TPR, and the
partition-level one-sided Mann-Whitney p-value the probe reports. The sharded exchangeability
test (no reference needed) runs on each partition in published order; on a `canonical_dump`
testbed the seen partitions were trained on in that order, so it has something to find.
Throughput: the same scoring requests through each backend, uncached, tokens/s and the ratio to
hf measured in this run. Statistic cost: time and peak memory of the AUROC bootstrap CI on
synthetic scores, 2,000 and 20,000 items a side, unchunked (as first written) against chunked.

    python bench/likelihood.py [--testbed DIR] [--dump-testbed DIR] [--reference-model SPEC]
                               [--skip-vllm] [--skip-server] [--shards 20] [--permutations 50]
                               [--statistics-only]

Without --testbed the HumanEval `ci` testbed is built (or reused) under .contam/testbed/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contam.benchmarks import load_benchmark  # noqa: E402
from contam.models.base import ModelClient, ScoreRequest  # noqa: E402
from contam.models.spec import ModelSpec  # noqa: E402
from contam.probe import Probe  # noqa: E402
from contam.registry import create_model, get_probe  # noqa: E402
from contam.results import ProbeResult  # noqa: E402
from contam.runner import Runner  # noqa: E402
from contam.scan import scan  # noqa: E402
from contam.stats import (  # noqa: E402
    BOOTSTRAP_MEMORY,
    auroc,
    bootstrap_auroc_ci,
    compare_to_reference,
    fpr_at_tpr,
    tpr_at_fpr,
)
from contam.types import Benchmark  # noqa: E402
from tests.fixtures.testbed import build_ci_testbed  # noqa: E402

SCORES = ("loss", "min_k", "min_k_pp", "zlib", "lowercase")


def exposure(name: str) -> int:
    return 0 if name == "unseen" else int(name.removeprefix("seen_x"))


async def run_probes(
    bench: Benchmark, model: ModelClient, probes: list[Probe], spec: str
) -> list[ProbeResult]:
    runner = Runner(model, concurrency=2)
    # Every partition, unseen too, each compared with unseen; the runner answers repeats from cache.
    report = await scan(bench, runner, probes, model_spec=spec, partitions=list(bench.partitions),
                        reference=bench.partition("unseen"), reference_label="unseen")  # fmt: skip
    return list(report.probes)


def quality_table(bench: Benchmark, results: list[ProbeResult]) -> str:
    by = {(r.probe, r.partition): r for r in results}
    seen = sorted((p for p in bench.partitions if p != "unseen"), key=exposure, reverse=True)
    head = (
        f"{'score':<11}{'partition':<11}{'n':>4}{'AUROC':>8}{'TPR@5%FPR':>11}{'FPR@95%TPR':>12}"
        f"{'p (MWU)':>11}"
    )
    lines = [head, "-" * len(head)]
    for probe in sorted({r.probe for r in results if r.items}, key=lambda p: (p not in SCORES, p)):
        neg = [s.score for s in by[(probe, "unseen")].items]
        for part in seen:
            r = by[(probe, part)]
            pos = [s.score for s in r.items]
            p = r.statistic.p_value if r.statistic and r.statistic.p_value is not None else float("nan")
            lines.append(
                f"{probe:<11}{part:<11}{len(pos):>4}{auroc(pos, neg):>8.3f}"
                f"{tpr_at_fpr(pos, neg, 0.05):>11.3f}{fpr_at_tpr(pos, neg, 0.95):>12.3f}{p:>11.2e}"
            )
    return "\n".join(lines)


def exchange_table(label: str, results: list[ProbeResult]) -> str:
    head = f"{'testbed':<30}{'partition':<11}{'n':>4}{'shards':>7}{'t':>9}{'p':>11}"
    lines = [head, "-" * len(head)]
    for r in sorted(results, key=lambda r: -exposure(r.partition)):
        st = r.statistic
        if r.skipped or st is None:
            lines.append(f"{label:<30}{r.partition:<11}  skipped: {r.skipped}")
            continue
        lines.append(
            f"{label:<30}{r.partition:<11}{st.n:>4}{r.params['shards_used']:>7}{st.value:>9.2f}{st.p_value:>11.2e}"
        )
    return "\n".join(lines)


async def throughput(model: ModelClient, texts: list[str], distribution: bool) -> tuple[int, float]:
    """Tokens scored and seconds taken, all texts uncached through a fresh runner.

    Batches of 8, one in flight, for every backend alike: the in-process engine's exact statistics
    hold the full-vocabulary log-probs of a whole batch in memory (all 163 items at once ran this
    24 GiB machine out of memory).
    """
    runner = Runner(model, concurrency=1, batch_size=8)
    await runner.score([ScoreRequest(text=texts[0], distribution=distribution)])  # warm-up, not timed
    started = time.perf_counter()
    results = await runner.score([ScoreRequest(text=t, distribution=distribution) for t in texts[1:]])
    return sum(len(r.logprobs) for r in results), time.perf_counter() - started


def unchunked_bootstrap_auroc_ci(
    pos: np.ndarray, neg: np.ndarray, rounds: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """The bootstrap as first written, kept for comparison: all rounds' resamples and ranks at once."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    p = pos[rng.integers(0, pos.size, size=(rounds, pos.size))]
    n = neg[rng.integers(0, neg.size, size=(rounds, neg.size))]
    ranks = rankdata(np.concatenate([p, n], axis=1), axis=1)
    u = ranks[:, : pos.size].sum(axis=1) - pos.size * (pos.size + 1) / 2
    alpha = (1 - 0.95) / 2
    low, high = np.quantile(u / (pos.size * neg.size), [alpha, 1 - alpha])
    return float(low), float(high)


def chunked_ci(pos: np.ndarray, neg: np.ndarray, rounds: int) -> tuple[float, float]:
    ci = bootstrap_auroc_ci(pos, neg, rounds=rounds)
    return ci.low, ci.high


def partition_statistic(pos: np.ndarray, neg: np.ndarray, rounds: int) -> tuple[float, float]:
    """What a scan computes per probe and partition: Mann-Whitney U, AUROC and its CI."""
    ci = compare_to_reference(pos.tolist(), neg.tolist(), reference_name="synthetic").effect_ci
    assert ci is not None and ci.method == f"bootstrap({rounds})"
    return ci.low, ci.high


def statistic_table(sizes: tuple[int, ...] = (2000, 20000), rounds: int = 2000) -> str:
    """The AUROC CI per partition, old way and new, on binormal scores (AUROC about 0.58).

    Seconds are measured under tracemalloc and the peak is what it traced, numpy's buffers
    included; ratios are to the unchunked row of the same size, in this run.
    """
    approaches: list[tuple[str, Callable[[np.ndarray, np.ndarray, int], tuple[float, float]]]] = [
        ("unchunked, all rounds at once (old)", unchunked_bootstrap_auroc_ci),
        (f"chunked, {BOOTSTRAP_MEMORY >> 20} MiB budget (new)", chunked_ci),
        ("compare_to_reference (MWU, AUROC, CI)", partition_statistic),
    ]
    head = (
        f"{'n a side':>9}  {'approach':<38}{'seconds':>8}{'peak MiB':>10}{'CI low':>9}{'CI high':>9}"
        f"{'time/old':>9}{'mem/old':>9}"
    )
    lines = [head, "-" * len(head)]
    for size in sizes:
        rng = np.random.default_rng(size)
        pos, neg = rng.normal(0.3, 1, size), rng.normal(0, 1, size)
        base: tuple[float, int] | None = None
        for label, approach in approaches:
            tracemalloc.start()
            started = time.perf_counter()
            try:
                low, high = approach(pos, neg, rounds)
                secs, peak = time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            base = base or (secs, peak)
            lines.append(
                f"{size:>9}  {label:<38}{secs:>8.2f}{peak / 2**20:>10.1f}{low:>9.5f}{high:>9.5f}"
                f"{secs / base[0]:>9.3f}{peak / base[1]:>9.4f}"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--testbed", type=Path, default=None)
    ap.add_argument(
        "--dump-testbed", type=Path, default=None, help="a testbed built with --form canonical_dump"
    )
    ap.add_argument(
        "--reference-model",
        default="fixture",
        help="spec of a model that never saw the benchmark for `reference` ('fixture': the tests' tiny "
        "Llama; 'none' to skip)",
    )
    ap.add_argument("--shards", type=int, default=20)
    ap.add_argument("--permutations", type=int, default=50)
    ap.add_argument("--skip-vllm", action="store_true")
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--statistics-only", action="store_true", help="only the statistic-cost table")
    args = ap.parse_args()

    print("Cost of the partition statistic: AUROC bootstrap CI, 2000 rounds, binormal scores")
    print(statistic_table() + "\n")
    if args.statistics_only:
        return

    testbed = args.testbed or build_ci_testbed()
    bench = load_benchmark(str(testbed / "benchmark.jsonl"))
    model_dir = testbed / "model"
    build = json.loads((testbed / "build.json").read_text())
    hf_spec = f"hf:{model_dir}"
    hf = create_model(ModelSpec.parse(hf_spec))
    if args.reference_model == "fixture":
        from tests.fixtures.models import build_tiny_model

        # A model that never saw HumanEval: the suite's tiny Llama, trained on 6 stdlib modules.
        args.reference_model = f"hf:{build_tiny_model()}"
    if args.reference_model == "none":
        args.reference_model = None
    names = list(SCORES) + (["reference"] if args.reference_model else [])
    probes = [
        get_probe(n).from_options({"model": args.reference_model} if n == "reference" else {}) for n in names
    ]
    exch = get_probe("exchangeability").from_options(
        {"shards": args.shards, "permutations": args.permutations}
    )

    started = time.perf_counter()
    results = asyncio.run(run_probes(bench, hf, probes, hf_spec))
    form = build.get("args", {}).get("form", "verbatim")
    n_unseen = len(bench.partition("unseen").items)
    print(f"testbed {testbed} ({form}); k = 0.2; each seen partition against `unseen` (n = {n_unseen})")
    if args.reference_model:
        print(f"reference model for `reference`: {args.reference_model}")
    print(quality_table(bench, results))
    print(f"(scores through hf in {time.perf_counter() - started:.0f}s)\n")

    print(f"Sharded exchangeability test (Oren et al.), {args.shards} shards max, {args.permutations} "
          "permutations; one-sided p, no reference")  # fmt: skip
    rows = [exchange_table(testbed.name, asyncio.run(run_probes(bench, hf, [exch], hf_spec)))]
    if args.dump_testbed:
        dump_bench = load_benchmark(str(args.dump_testbed / "benchmark.jsonl"))
        dump_spec = f"hf:{args.dump_testbed / 'model'}"
        dump_model = create_model(ModelSpec.parse(dump_spec))
        rows.append(
            exchange_table(
                args.dump_testbed.name, asyncio.run(run_probes(dump_bench, dump_model, [exch], dump_spec))
            )
        )
    print("\n".join(r if i == 0 else "\n".join(r.splitlines()[2:]) for i, r in enumerate(rows)) + "\n")

    texts = [item.text for item in bench.items()]
    rows_tp: list[tuple[str, str, int, float]] = []
    for dist in (False, True):
        n, secs = asyncio.run(throughput(create_model(ModelSpec.parse(hf_spec)), texts, dist))
        rows_tp.append(("hf", "dist" if dist else "plain", n, secs))
    if not args.skip_vllm:
        engine = create_model(ModelSpec.parse(f"vllm:{model_dir}?max_model_len=1024"))
        for dist in (False, True):
            n, secs = asyncio.run(throughput(engine, texts, dist))
            rows_tp.append(("vllm", "dist" if dist else "plain", n, secs))
        getattr(engine, "shutdown", lambda: None)()
    if not args.skip_server:
        from servers.vllm_server import VLLMServer

        with VLLMServer(
            model_dir, name="testbed", log_path=REPO / ".contam" / "bench-likelihood-vllm.log"
        ) as server:
            n, secs = asyncio.run(throughput(create_model(ModelSpec.parse(server.spec)), texts, False))
            rows_tp.append(("openai (vLLM server)", "plain", n, secs))
    hf_rate = {kind: n / s for b, kind, n, s in rows_tp if b == "hf"}
    print(
        f"Scoring throughput, {len(texts) - 1} items uncached "
        "(plain: log-probs; dist: + exact distribution stats)"
    )
    head = f"{'backend':<22}{'request':<8}{'tokens':>8}{'seconds':>9}{'tokens/s':>10}{'vs hf':>7}"
    print(head + "\n" + "-" * len(head))
    for backend, kind, n, secs in rows_tp:
        print(f"{backend:<22}{kind:<8}{n:>8}{secs:>9.2f}{n / secs:>10.0f}{(n / secs) / hf_rate[kind]:>7.2f}")


if __name__ == "__main__":
    main()
