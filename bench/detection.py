"""Calibration and power of the verdicts, on testbeds whose contamination is known (issue 10).

Three `ci` testbeds (HumanEval, GSM8K, TruthfulQA-MC: a small Llama trained with partitions
injected 16, 4, 1 and 0 times; GSM8K and TruthfulQA-MC also keep the benchmark items the split did
not draw in `heldout.jsonl`, never seen) are scanned through the real pipeline, `contam.scan.scan`
with the default `VerdictPolicy`, and the likelihood probes (loss, zlib, min_k, min_k_pp; the
generation probes are at chance on these models and cost much CPU: `--generation` adds them to the
detection scans). It prints:

1. per probe and exposure, the instance AUROC and TPR at 5% FPR of each seen partition against
   `unseen` (and, as exposure 0, of `unseen` against the held-out pool);
2. the verdict of every testbed partition, and the confusion matrix of verdicts against exposure,
   pooled over the testbeds (exposure 0: `unseen` against the held-out pool, and the pairs of 3);
3. the false-positive rate: the held-out pool shuffled (fixed seed) and cut into 2K disjoint groups;
   group 2i is scanned against group 2i+1, one scan per pair; the share flagged (contaminated or
   suspicious) at alpha 0.05 with its Wilson interval and a one-sided binomial test against 0.05,
   each probe's raw rejection rate (p <= 0.05), and how often the blind baseline fired;
4. the blind-baseline check: unfair references on a model that saw neither side (GSM8K held-out
   items against HumanEval `unseen` on the HumanEval model, and the reverse; the GSM8K held-out
   pool's long half against its short half on the GSM8K model, and the reverse), with the
   baseline's AUROC and what the probes alone would have said;
5. one PASS/FAIL line per target; the exit status is 1 when any target fails.

Model calls go through the Runner and one SQLite call cache, so a re-run is fast.

    python bench/detection.py [--quick] [--generation] [--pairs 24] [--group 24] [--seed 0]
                              [--benchmarks humaneval,gsm8k,truthfulqa-mc]
                              [--cache .contam/bench/detection-calls.sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contam.benchmarks import load_benchmark  # noqa: E402
from contam.cache import CallCache  # noqa: E402
from contam.cli.progress import TqdmProgress  # noqa: E402
from contam.models.spec import ModelSpec  # noqa: E402
from contam.probe import Probe  # noqa: E402
from contam.registry import create_model, get_probe  # noqa: E402
from contam.report import ScanReport  # noqa: E402
from contam.results import ProbeResult  # noqa: E402
from contam.runner import Runner  # noqa: E402
from contam.scan import scan  # noqa: E402
from contam.stats import auroc, tpr_at_fpr, wilson_interval  # noqa: E402
from contam.testbed.config import BuildArgs  # noqa: E402
from contam.testbed.heldout import HELDOUT_FILE  # noqa: E402
from contam.types import Benchmark, Item, Partition, content_sha256  # noqa: E402
from contam.verdicts import PartitionVerdict, Verdict, VerdictPolicy  # noqa: E402
from contam.verdicts.engine import decide  # noqa: E402
from contam.verdicts.evidence import evidence_of  # noqa: E402
from tests.fixtures.testbed import build_testbed  # noqa: E402

BENCHMARKS = ("humaneval", "gsm8k", "truthfulqa-mc")
LIKELIHOOD = ("loss", "zlib", "min_k", "min_k_pp")
GENERATION: Mapping[str, tuple[str, ...]] = {
    "humaneval": ("guided", "ts_guessing_qb", "cdd"),
    "gsm8k": ("guided", "ts_guessing_qb", "cdd"),
    "truthfulqa-mc": ("ts_guessing_mc",),
}
SEEN = ("seen_x16", "seen_x4", "seen_x1")
EXPOSURES = (16, 4, 1, 0)
VERDICTS = tuple(Verdict)
FLAGGED = (Verdict.CONTAMINATED, Verdict.SUSPICIOUS)
POLICY = VerdictPolicy()
FPR_TARGET = 0.05


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- testbeds and scans ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Testbed:
    name: str  # the benchmark's
    path: Path
    bench: Benchmark  # benchmark.jsonl: seen_x16, seen_x4, seen_x1, unseen
    heldout: Partition | None  # heldout.jsonl: drawn by no partition, never seen
    spec: str

    @property
    def unseen(self) -> Partition:
        return self.bench.partition("unseen")


def open_testbed(benchmark: str) -> Testbed:
    """The `ci` testbed at .contam/testbed/BENCHMARK-ci, built or reused as the tests do."""
    started = time.perf_counter()
    path = build_testbed(BuildArgs(benchmark=benchmark, preset="ci", seed=0), f"{benchmark}-ci")
    say(f"testbed {benchmark}: {path} ({time.perf_counter() - started:.0f}s)")
    held_file = path / HELDOUT_FILE
    held = load_benchmark(str(held_file)).partition("heldout") if held_file.is_file() else None
    bench = load_benchmark(str(path / "benchmark.jsonl"))
    return Testbed(benchmark, path, bench, held, f"hf:{path / 'model'}")


def renamed(items: Sequence[Item], name: str) -> Partition:
    return Partition(name, tuple(dataclasses.replace(i, partition=name) for i in items))


def in_memory(name: str, parts: Sequence[Partition], fmt: Any, source: str) -> Benchmark:
    sha = content_sha256(*(f"{p.name}\x00{i.id}\x00{i.text}" for p in parts for i in p.items))
    return Benchmark(name, fmt, {p.name: p for p in parts}, source, sha)


class Session:
    """One call cache and one progress bar for every scan; one runner per model."""

    def __init__(self, cache: CallCache, progress: TqdmProgress) -> None:
        self.cache, self.progress = cache, progress
        self.runners: dict[str, Runner] = {}

    def runner(self, spec: str) -> Runner:
        if spec not in self.runners:
            client = create_model(ModelSpec.parse(spec))
            self.runners[spec] = Runner(client, self.cache, concurrency=2, progress=self.progress)
        return self.runners[spec]

    async def scan(
        self,
        spec: str,
        bench: Benchmark,
        suspects: Sequence[str],
        reference: Partition,
        probes: Sequence[Probe],
    ) -> ScanReport:
        return await scan(
            bench,
            self.runner(spec),
            probes,
            model_spec=spec,
            partitions=list(suspects),
            reference=reference,
            reference_label=reference.name,
            policy=POLICY,
        )

    async def aclose(self) -> None:
        for runner in self.runners.values():
            await runner.aclose()


def probes_for(benchmark: str, generation: bool) -> list[Probe]:
    names = [*LIKELIHOOD, *(GENERATION[benchmark] if generation else ())]
    options: dict[str, dict[str, Any]] = {
        "cdd": {"samples": 20, "max_tokens": 64},
        "guided": {"dataset": benchmark},
    }
    return [get_probe(n).from_options(options.get(n, {})) for n in names]


def exposure(partition: str) -> int:
    return 0 if partition in ("unseen", "heldout") else int(partition.removeprefix("seen_x"))


# -- 1 and 2: detection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    testbed: Testbed
    seen: ScanReport  # seen_x16, seen_x4, seen_x1 against unseen
    unseen: ScanReport | None  # unseen against the held-out pool


async def detect(session: Session, tb: Testbed, generation: bool) -> Detection:
    seen = session.scan(tb.spec, tb.bench, SEEN, tb.unseen, probes_for(tb.name, generation))
    if tb.heldout is None:
        return Detection(tb, await seen, None)
    bench = in_memory(f"{tb.name}-unseen-vs-heldout", [tb.unseen, tb.heldout], tb.bench.format, str(tb.path))
    unseen = session.scan(tb.spec, bench, ["unseen"], tb.heldout, probes_for(tb.name, False))
    a, b = await asyncio.gather(seen, unseen)
    return Detection(tb, a, b)


def _p(r: ProbeResult) -> float | None:
    return r.statistic.p_value if r.statistic is not None else None


def quality_table(runs: Sequence[Detection]) -> str:
    head = (
        f"{'testbed':<14}{'probe':<16}{'partition':<11}{'n':>5}{'n ref':>6}{'AUROC':>8}"
        f"{'TPR@5%FPR':>11}{'p':>10}"
    )
    lines = [head, "-" * len(head)]
    for run in runs:
        results = [*run.seen.probes, *(run.unseen.probes if run.unseen else ())]
        probes = list(dict.fromkeys(r.probe for r in results))
        for probe in probes:
            rows = sorted((r for r in results if r.probe == probe), key=lambda r: -exposure(r.partition))
            for r in rows:
                label = r.partition if r.partition != "unseen" else "unseen/held"
                head = f"{run.testbed.name:<14}{probe:<16}{label:<11}"
                st = r.statistic
                if r.skipped or st is None:
                    lines.append(f"{head}  skipped: {r.skipped or 'no test'}")
                    continue
                if not r.items or not r.reference_items:
                    # A rate test (TS-Guessing): no reference scores to rank.
                    effect = f"{st.effect_name} {st.effect:.3f}" if st.effect is not None else ""
                    lines.append(f"{head}{st.n:>5}{'-':>6}{'-':>8}{'-':>11}{_fmt(st.p_value):>10}  {effect}")
                    continue
                pos, neg = [s.score for s in r.items], [s.score for s in r.reference_items]
                p = _p(r)
                lines.append(
                    f"{run.testbed.name:<14}{probe:<16}{label:<11}{len(pos):>5}{len(neg):>6}"
                    f"{auroc(pos, neg):>8.3f}{tpr_at_fpr(pos, neg, 0.05):>11.3f}{_fmt(p):>10}"
                )
    return "\n".join(lines)


def _fmt(p: float | None) -> str:
    return "-" if p is None else f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def verdict_rows(runs: Sequence[Detection]) -> list[tuple[str, int, PartitionVerdict]]:
    out: list[tuple[str, int, PartitionVerdict]] = []
    for run in runs:
        for report in (run.seen, run.unseen):
            if report is None or report.verdicts is None:
                continue
            out.extend((run.testbed.name, exposure(v.partition), v) for v in report.verdicts.partitions)
    return out


def verdict_table(rows: Sequence[tuple[str, int, PartitionVerdict]]) -> str:
    head = f"{'testbed':<14}{'partition':<11}{'exp':>4}  {'verdict':<13}{'combined p':>11}{'Holm p':>9}  rule"
    lines = [head, "-" * len(head)]
    for name, n, v in sorted(rows, key=lambda r: (r[0], -r[1])):
        label = v.partition if v.partition != "unseen" else "unseen/held"
        lines.append(
            f"{name:<14}{label:<11}{n:>4}  {v.verdict.value:<13}{_fmt(v.combined_p):>11}"
            f"{_fmt(v.adjusted_p):>9}  {v.rule_id}"
        )
    return "\n".join(lines)


def confusion_table(by_exposure: Mapping[int, Sequence[Verdict]]) -> str:
    head = f"{'exposures':>9}{'n':>5}" + "".join(f"{v.value:>14}" for v in VERDICTS) + f"{'flagged':>9}"
    lines = [head, "-" * len(head)]
    for n in EXPOSURES:
        got = list(by_exposure.get(n, ()))
        if not got:
            continue
        flagged = sum(v in FLAGGED for v in got)
        lines.append(
            f"{n:>9}{len(got):>5}"
            + "".join(f"{got.count(v):>14}" for v in VERDICTS)
            + f"{flagged / len(got):>9.2f}"
        )
    return "\n".join(lines)


# -- 3: false-positive rate -----------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    pool: str
    index: int
    report: ScanReport

    @property
    def verdict(self) -> PartitionVerdict:
        assert self.report.verdicts is not None
        return self.report.verdicts.partitions[0]


def groups(pool: Partition, size: int, pairs: int, seed: int) -> list[tuple[Partition, Partition]]:
    """`pairs` disjoint (suspect, reference) groups of `size` items, from a seeded shuffle of `pool`."""
    items = list(pool.items)
    random.Random(f"contam-bench-detection-fpr:{seed}").shuffle(items)
    k = min(pairs, len(items) // (2 * size))
    cut = [items[j * size : (j + 1) * size] for j in range(2 * k)]
    return [
        (renamed(cut[2 * i], f"group{2 * i:02d}"), renamed(cut[2 * i + 1], f"group{2 * i + 1:02d}"))
        for i in range(k)
    ]


async def false_positives(session: Session, tb: Testbed, size: int, pairs: int, seed: int) -> list[Pair]:
    assert tb.heldout is not None
    chosen = groups(tb.heldout, size, pairs, seed)
    probes = probes_for(tb.name, False)

    async def one(i: int, suspect: Partition, ref: Partition) -> Pair:
        bench = in_memory(f"{tb.name}-heldout-pair{i:02d}", [suspect, ref], tb.bench.format, str(tb.path))
        return Pair(tb.name, i, await session.scan(tb.spec, bench, [suspect.name], ref, probes))

    return list(await asyncio.gather(*(one(i, s, r) for i, (s, r) in enumerate(chosen))))


def binom_greater(k: int, n: int, p: float) -> float:
    from scipy.stats import binomtest

    return float(binomtest(k, n, p, alternative="greater").pvalue)


def fpr_table(pairs: Sequence[Pair]) -> tuple[str, int, int]:
    pools = [*dict.fromkeys(p.pool for p in pairs)]
    head = (
        f"{'pool':<22}{'pairs':>6}{'size':>6}{'flagged':>9}{'rate':>7}{'Wilson 95%':>16}"
        f"{'binom p (>0.05)':>17}{'baseline fired':>16}"
    )
    lines = [head, "-" * len(head)]
    for name, chosen in [*((p, [x for x in pairs if x.pool == p]) for p in pools), ("pooled", list(pairs))]:
        if not chosen or (name == "pooled" and len(pools) < 2):
            continue
        k = sum(x.verdict.verdict in FLAGGED for x in chosen)
        fired = sum(bool(x.verdict.baseline and x.verdict.baseline.distinguishes) for x in chosen)
        ci = wilson_interval(k, len(chosen))
        size = {len(x.report.probes[0].items) for x in chosen}
        lines.append(
            f"{name:<22}{len(chosen):>6}{'/'.join(map(str, sorted(size))):>6}{k:>9}{k / len(chosen):>7.3f}"
            f"{f'[{ci.low:.3f}, {ci.high:.3f}]':>16}{binom_greater(k, len(chosen), FPR_TARGET):>17.3f}"
            f"{fired:>16}"
        )
    n = len(pairs)
    k = sum(x.verdict.verdict in FLAGGED for x in pairs)
    probes = [*dict.fromkeys(r.probe for x in pairs for r in x.report.probes)]
    raw = []
    for probe in probes:
        ps = [_p(r) for x in pairs for r in x.report.probes if r.probe == probe]
        rejected = sum(p is not None and p <= 0.05 for p in ps)
        raw.append(f"{probe} {rejected}/{len(ps)} = {rejected / max(1, len(ps)):.3f}")
    lines.append("per-probe raw rejection rate (p <= 0.05), all pairs: " + "; ".join(raw))
    verdicts = [x.verdict.verdict for x in pairs]
    lines.append("verdicts, all pairs: " + ", ".join(f"{v.value} {verdicts.count(v)}" for v in VERDICTS))
    return "\n".join(lines), k, n


# -- 4: blind-baseline check ----------------------------------------------------------------------


@dataclass(frozen=True)
class Unfair:
    label: str
    model: str
    report: ScanReport

    @property
    def verdict(self) -> PartitionVerdict:
        assert self.report.verdicts is not None
        return self.report.verdicts.partitions[0]

    @property
    def probes_alone(self) -> PartitionVerdict:
        """What the same evidence decides with no blind baseline: the probes' own say."""
        return decide(evidence_of(self.report, {}, POLICY), POLICY).partitions[0]


def unfair_pairs(
    he: Testbed, gsm: Testbed, sample: int, seed: int
) -> list[tuple[str, Testbed, Partition, Partition]]:
    """(label, model's testbed, suspect, reference): each side differs in kind, and neither was seen."""
    assert gsm.heldout is not None
    pool = list(gsm.heldout.items)
    random.Random(f"contam-bench-detection-unfair:{seed}").shuffle(pool)
    math = renamed(pool[: len(he.unseen)], "gsm8k_heldout")
    code = renamed(he.unseen.items, "humaneval_unseen")
    by_len = sorted(pool[:sample] if sample else pool, key=lambda i: (len(i.text), i.id))
    half = len(by_len) // 2
    short, long = renamed(by_len[:half], "short_half"), renamed(by_len[half:], "long_half")
    return [
        ("GSM8K held-out vs HumanEval unseen", he, math, code),
        ("HumanEval unseen vs GSM8K held-out", he, code, math),
        ("GSM8K held-out: long vs short", gsm, long, short),
        ("GSM8K held-out: short vs long", gsm, short, long),
    ]


async def blind_check(session: Session, he: Testbed, gsm: Testbed, sample: int, seed: int) -> list[Unfair]:
    async def one(label: str, tb: Testbed, suspect: Partition, ref: Partition) -> Unfair:
        bench = in_memory(
            f"unfair-{suspect.name}-vs-{ref.name}", [suspect, ref], tb.bench.format, str(tb.path)
        )
        report = await session.scan(tb.spec, bench, [suspect.name], ref, probes_for(tb.name, False))
        return Unfair(label, f"{tb.name} ci", report)

    return list(await asyncio.gather(*(one(*row) for row in unfair_pairs(he, gsm, sample, seed))))


def blind_table(rows: Sequence[Unfair]) -> str:
    head = (
        f"{'suspect vs reference':<37}{'model':<15}{'n':>5}{'n ref':>6}{'baseline AUROC [95% CI]':>25}"
        f"  {'verdict':<13}{'probes alone: combined p':>25}  {'verdict'}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        v, alone, b = row.verdict, row.probes_alone, row.verdict.baseline
        auc = f"{b.auroc:.3f} [{b.auroc_ci.low:.3f}, {b.auroc_ci.high:.3f}]" if b else "none (too few items)"
        n_ref = row.report.probes[0].reference_items
        lines.append(
            f"{row.label:<37}{row.model:<15}{len(row.report.probes[0].items):>5}{len(n_ref):>6}"
            f"{auc:>25}  {v.verdict.value:<13}{_fmt(alone.combined_p):>25}  {alone.verdict.value}"
        )
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------


def targets(
    detections: Sequence[tuple[str, int, PartitionVerdict]], fpr: tuple[int, int], unfair: Sequence[Unfair]
) -> list[tuple[bool, str]]:
    strong = [(name, v) for name, n, v in detections if n >= 4]
    missed = [
        f"{name}/{v.partition} {v.verdict.value}" for name, v in strong if v.verdict != Verdict.CONTAMINATED
    ]
    ones = [v for _, n, v in detections if n == 1]
    k, n = fpr
    binom = binom_greater(k, n, FPR_TARGET) if n else 0.0
    wrong = [
        f"{u.label}: {u.verdict.verdict.value}" for u in unfair if u.verdict.verdict != Verdict.INCONCLUSIVE
    ]
    x1 = sum(v.verdict == Verdict.CONTAMINATED for v in ones)
    return [
        (
            not missed and bool(strong),
            f"detection: {len(strong) - len(missed)}/{len(strong)} partitions seen >= 4 times contaminated"
            + (f" (missed: {', '.join(missed)})" if missed else "")
            + f"; at 1 exposure {x1}/{len(ones)} contaminated",
        ),
        (
            n >= 20 and binom >= 0.05,
            f"false positives: {k}/{n} disjoint never-seen partitions flagged at alpha {POLICY.alpha:g} "
            f"(rate {k / max(1, n):.3f}; one-sided binomial p = {binom:.3f} against {FPR_TARGET:g}; "
            "needs >= 20 partitions and no significant excess)",
        ),
        (
            not wrong and len(unfair) == 4,
            f"blind baseline: {len(unfair) - len(wrong)}/{len(unfair)} unfair references inconclusive"
            + (f" (not: {'; '.join(wrong)})" if wrong else ""),
        ),
    ]


async def run(args: argparse.Namespace, testbeds: Sequence[Testbed], cache: CallCache) -> int:
    by = {tb.name: tb for tb in testbeds}
    pair_pools = [tb for tb in testbeds if tb.heldout is not None and (not args.quick or tb.name == "gsm8k")]
    with TqdmProgress("detection") as progress:
        session = Session(cache, progress)
        try:
            started = time.perf_counter()
            runs = list(await asyncio.gather(*(detect(session, tb, args.generation) for tb in testbeds)))
            say(f"detection scans: {time.perf_counter() - started:.0f}s")
            fpr_runs = await asyncio.gather(
                *(false_positives(session, tb, args.group, args.pairs, args.seed) for tb in pair_pools)
            )
            pairs = [p for run_ in fpr_runs for p in run_]
            say(f"false-positive scans: {time.perf_counter() - started:.0f}s")
            unfair = await blind_check(
                session, by["humaneval"], by["gsm8k"], 240 if args.quick else 0, args.seed
            )
            say(f"blind-baseline scans: {time.perf_counter() - started:.0f}s")
        finally:
            await session.aclose()

    print(
        f"\n1. Instance AUROC and TPR at 5% FPR, each seen partition against `unseen`; `unseen/held`: "
        f"`unseen` against the held-out pool (never seen either)\n{quality_table(runs)}"
    )
    rows = verdict_rows(runs)
    print(
        f"\n2. Verdicts ({POLICY.combination} combination, alpha {POLICY.alpha:g}, Holm over each scan's "
        f"partitions, AUROC floor {POLICY.auroc_floor:g}, blind-baseline bound {POLICY.baseline_bound:g})"
    )
    print(verdict_table(rows))
    by_exposure: dict[int, list[Verdict]] = {}
    for _, n, v in rows:
        by_exposure.setdefault(n, []).append(v.verdict)
    by_exposure.setdefault(0, []).extend(p.verdict.verdict for p in pairs)
    print(
        "\nConfusion matrix, pooled over the testbeds (exposure 0: `unseen` against the held-out pool, "
        "and every false-positive pair of 3)"
    )
    print(confusion_table(by_exposure))
    if pairs:
        print(
            f"\n3. False-positive rate: disjoint never-seen groups of {args.group} held-out items, group 2i "
            f"scanned against group 2i+1 (seed {args.seed})"
        )
        text, k, n = fpr_table(pairs)
        print(text)
    else:
        k = n = 0
    print("\n4. Blind-baseline check: unfair references on a model that saw neither side")
    print(blind_table(unfair))
    print()
    results = targets(rows, (k, n), unfair)
    for ok, line in results:
        print(f"{'PASS' if ok else 'FAIL'}  {line}")
    return 0 if all(ok for ok, _ in results) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a smaller run: 20 pairs of 12 from GSM8K only; long/short on 240 held-out items",
    )
    ap.add_argument(
        "--generation",
        action="store_true",
        help="add the generation probes to the detection scans (slow on CPU; at chance here)",
    )
    ap.add_argument(
        "--pairs", type=int, default=None, help="false-positive pairs per pool (default 24; quick 20)"
    )
    ap.add_argument("--group", type=int, default=None, help="items per group (default 24; quick 12)")
    ap.add_argument(
        "--benchmarks",
        default=",".join(BENCHMARKS),
        help="testbeds to use; humaneval and gsm8k are needed (the blind-baseline check, the pairs)",
    )
    ap.add_argument("--seed", type=int, default=0, help="the false-positive shuffle and the blind samples")
    ap.add_argument("--cache", type=Path, default=REPO / ".contam" / "bench" / "detection-calls.sqlite")
    args = ap.parse_args()
    args.pairs = args.pairs or (20 if args.quick else 24)
    args.group = args.group or (12 if args.quick else 24)
    chosen = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    if not {"humaneval", "gsm8k"} <= set(chosen) or not set(chosen) <= set(BENCHMARKS):
        raise SystemExit(f"--benchmarks: humaneval and gsm8k, optionally truthfulqa-mc; got {chosen}")
    testbeds = [open_testbed(b) for b in BENCHMARKS if b in chosen]
    if next(tb for tb in testbeds if tb.name == "gsm8k").heldout is None:
        raise SystemExit("the GSM8K testbed has no held-out pool; the false-positive run needs it")
    print(
        "testbeds (ci, seed 0): "
        + "; ".join(
            f"{tb.name} {tb.bench.counts}, held out {len(tb.heldout) if tb.heldout else 0}" for tb in testbeds
        )
    )
    cache = CallCache(args.cache)
    try:
        return asyncio.run(run(args, testbeds, cache))
    finally:
        cache.close()


if __name__ == "__main__":
    sys.exit(main())
