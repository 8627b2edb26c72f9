"""Detection quality and cost of the generation probes on testbeds built for them, in one run.

Testbeds (`ci` preset, exposures 16, 4, 1, 0; built once and cached):

    humaneval      --form with_metadata   guided, ts_guessing_qb, cdd
    gsm8k          --form with_metadata   guided, ts_guessing_qb, cdd
    truthfulqa-mc  --form verbatim        ts_guessing_mc

`with_metadata` heads each injected copy with `Dataset: <name>` / `Split: <split>` / `ID: <id>`,
the cue guided completion's dataset-naming prompt can exploit. Each testbed's model is served by
one vLLM server (servers.vllm_server, prefix caching off so neither the probe nor the bare client
after it is served from the other's prefill) and probed over the `openai` backend, one server at a
time.

Every probe runs on each partition alone, through a fresh runner with a fresh in-memory call cache
(timed; nothing is served from cache), then each seen partition again with `unseen` as the
reference through a cache holding those answers (untimed, no model call), for the partition
p-value each probe reports against `unseen`. Guided completion prompts the reference's items
naming the tested partition's split, so its reference run asks the model for those guided
completions (untimed; the general ones are cached). Per probe and exposure level, against `unseen`:

    AUROC, TPR@5%FPR   instance level, the probe's item score (contam.stats)
    p                  the partition statistic (Fisher exact / Mann-Whitney U)
    wall               the probe's run on that partition, uncached
    requests           requests the runner sent to the backend (runner stats)
    bare               a bare httpx client (bench/_common.py, as bench/backends.py's) sending the
                       very request bodies the backend sent, at the backend's concurrency, to the
                       same server; ratio = wall / bare (target <= 1.1)

    python bench/generation.py [--benchmarks humaneval,gsm8k,truthfulqa-mc]
                               [--probes guided,guided_dump,ts_guessing_qb,cdd,ts_guessing_mc]
                               [--quick] [--items N] [--cdd-samples 20] [--cdd-max-tokens 64]
                               [--repeats 3] [--seed 0]

`guided_dump` is guided completion with the cue written as the testbed's dump writes it (the
benchmark's own name and published split, `Dataset: X` / `Split: Y` with no `#`), through the
probe's `templates` and `dataset` parameters; `guided` uses the built-in templates. `--quick`:
8 items per partition, CDD 5 samples of 32 tokens, guided completions capped at 96 tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import WireRequest, bare_post  # noqa: E402
from contam.benchmarks import load_benchmark  # noqa: E402
from contam.cache import CallCache  # noqa: E402
from contam.models.openai_http import OpenAIModel  # noqa: E402
from contam.probe import Probe, ProbeContext  # noqa: E402
from contam.registry import get_probe  # noqa: E402
from contam.results import ProbeResult  # noqa: E402
from contam.runner import Runner  # noqa: E402
from contam.stats import auroc, tpr_at_fpr, wilson_interval  # noqa: E402
from contam.testbed.build import build, injectable_items  # noqa: E402
from contam.testbed.config import BuildArgs, Form  # noqa: E402
from contam.types import Partition  # noqa: E402

TESTBEDS: Mapping[str, tuple[Form, tuple[str, ...]]] = {
    "humaneval": ("with_metadata", ("guided", "guided_dump", "ts_guessing_qb", "cdd")),
    "gsm8k": ("with_metadata", ("guided", "guided_dump", "ts_guessing_qb", "cdd")),
    "truthfulqa-mc": ("verbatim", ("ts_guessing_mc",)),
}
PROBES = ("guided", "guided_dump", "ts_guessing_qb", "cdd", "ts_guessing_mc")
SEEN = ("seen_x16", "seen_x4", "seen_x1")
PARTITIONS = (*SEEN, "unseen")
MAX_MODEL_LEN = 1024  # the testbed model's context (max_position_embeddings)
# The backend's HTTP concurrency (the openai default) and the runner's, as `contam scan` sets them.
HTTP_CONCURRENCY = 16
RUNNER_CONCURRENCY = 4


def testbed_root() -> tuple[Path, Path]:
    """Where testbeds are placed, and their build cache (shared with the tests, see
    tests/fixtures/testbed.py): $CONTAM_CACHE_DIR/testbed if set, else the repo's .contam/testbed."""
    root = REPO / ".contam" / "testbed"
    env = os.environ.get("CONTAM_CACHE_DIR")
    return root, (Path(env) / "testbed" if env else root / "cache")


def build_testbed(benchmark: str, form: Form) -> Path:
    root, cache = testbed_root()
    started = time.perf_counter()
    result = build(
        BuildArgs(benchmark=benchmark, preset="ci", seed=0, form=form),
        root / f"{benchmark}-ci-{form}",
        cache_dir=cache,
        force=True,
        log=lambda msg: print(f"  [testbed {benchmark}] {msg}", file=sys.stderr, flush=True),
    )
    how = "cached" if result.cached else f"built in {time.perf_counter() - started:.0f}s"
    print(f"testbed {benchmark} ({form}, ci): {result.path} ({how})", file=sys.stderr, flush=True)
    return result.path


# -- one timed run -------------------------------------------------------------------------------


class TeeCache(CallCache):
    """A fresh in-memory cache that reads only itself and copies each answer into `keep`, so the
    timed run is served nothing from cache while the reference runs after it need no model call."""

    def __init__(self, keep: CallCache) -> None:
        super().__init__(None)
        self.keep = keep

    def put_many(self, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
        rows = list(rows)
        super().put_many(rows)
        self.keep.put_many(rows)


def record_wire(client: OpenAIModel) -> list[WireRequest]:
    """Every (path, body) the backend posts from now on: the bare client replays these bytes.
    Wraps the instance's one wire method (its retries stay inside it, so a body is listed once)."""
    sent: list[WireRequest] = []
    post = client._post

    async def recording(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        sent.append((path, payload))
        return await post(path, payload)

    client._post = recording  # type: ignore[method-assign]
    return sent


@dataclass
class Row:
    probe: str  # the row's label (guided_dump is the guided probe with other templates)
    partition: str
    result: ProbeResult | None = None
    wall: float = float("nan")
    bare: float = float("nan")
    ratio: float = float("nan")
    requests: int = 0
    asked: int = 0  # requests the probe asked the runner for (before de-duplication)
    p_value: float | None = None
    test: str = ""
    error: str | None = None
    ref_calls: int = 0  # model calls the untimed reference run needed (0 expected but for guided)


async def timed_run(
    probe: Probe,
    part: Partition,
    client: OpenAIModel,
    sent: list[WireRequest],
    keep: CallCache,
    ctx: ProbeContext,
    repeats: int,
) -> tuple[ProbeResult, float, float, float, int, int]:
    """The probe on `part` through a fresh runner and cache, and the bare client on the same
    bodies; `repeats` rounds, the order flipped each round (the first needs the probe's bodies, so
    the probe goes first). Medians of wall, bare and wall/bare."""
    walls, bares, ratios = [], [], []
    result: ProbeResult | None = None
    calls = asked = 0
    payloads: list[WireRequest] = []
    for i in range(repeats):
        order = ("probe", "bare") if i % 2 == 0 else ("bare", "probe")
        took: dict[str, float] = {}
        for what in order:
            if what == "probe":
                runner = Runner(client, TeeCache(keep), concurrency=RUNNER_CONCURRENCY)
                sent.clear()
                start = time.perf_counter()
                result = await probe.run(part, runner, ctx)
                took["probe"] = time.perf_counter() - start
                calls, asked = runner.stats.calls, runner.stats.requested
                if not payloads:
                    payloads = list(sent)
            else:
                start = time.perf_counter()
                await bare_post(client.base_url, payloads, concurrency=HTTP_CONCURRENCY)
                took["bare"] = time.perf_counter() - start
        walls.append(took["probe"])
        bares.append(took["bare"])
        ratios.append(took["probe"] / took["bare"] if took["bare"] > 0 else float("nan"))
    assert result is not None
    return result, statistics.median(walls), statistics.median(bares), statistics.median(ratios), calls, asked


async def measure(
    client: OpenAIModel,
    benchmark: str,
    parts: Mapping[str, Partition],
    probes: Sequence[tuple[str, Probe]],
    seed: int,
    repeats: int,
) -> list[Row]:
    sent = record_wire(client)
    rows: list[Row] = []
    for label, probe in probes:
        # Untimed: the probe's one-time imports (wordfreq's tables, rouge-score) are start-up, not
        # per-scan cost; two unseen items through a throwaway cache.
        warm = Partition("unseen", parts["unseen"].items[:2])
        await probe.run(warm, Runner(client, CallCache(None)), ProbeContext(benchmark=benchmark, seed=seed))
        keep = CallCache(None)  # every answer of this probe's timed runs, for its reference runs
        by_part: dict[str, Row] = {}
        for part_name in PARTITIONS:
            row = Row(label, part_name)
            # The benchmark's own name: a testbed's benchmark.jsonl loads as "benchmark".
            ctx = ProbeContext(benchmark=benchmark, seed=seed)
            try:
                (row.result, row.wall, row.bare, row.ratio, row.requests, row.asked) = await timed_run(
                    probe, parts[part_name], client, sent, keep, ctx, repeats
                )
            except Exception as exc:  # a probe that fails is a finding: say what failed, go on
                row.error = f"{type(exc).__name__}: {exc}"
            print(f"  {label:<15} {part_name:<9} {row.wall:7.1f}s  {row.requests:4d} requests"
                  + (f"  FAILED: {row.error[:300]}" if row.error else ""),
                  file=sys.stderr, flush=True)  # fmt: skip
            by_part[part_name] = row
            rows.append(row)
        for part_name in SEEN:
            row = by_part[part_name]
            if row.result is None or row.result.skipped:
                continue
            runner = Runner(client, keep, concurrency=RUNNER_CONCURRENCY)
            ctx = ProbeContext(benchmark=benchmark, reference=parts["unseen"], seed=seed)
            try:
                ref = await probe.run(parts[part_name], runner, ctx)
            except Exception as exc:
                row.error = f"reference run: {type(exc).__name__}: {exc}"
                continue
            row.ref_calls = runner.stats.calls
            st = ref.statistic
            row.p_value = st.p_value if st else None
            row.test = {"fisher_exact": "fisher vs unseen", "mann_whitney_u": "MWU vs unseen"}.get(
                st.name if st else "", st.name if st else "none"
            )
    return rows


# -- tables --------------------------------------------------------------------------------------


def scores(result: ProbeResult | None) -> list[float]:
    return [s.score for s in result.items] if result is not None else []


def detail(row: Row, unseen: Row) -> str:
    """What each probe's score is made of, in a few words."""
    r = row.result
    if r is None or not r.items:
        return ""
    name = r.probe
    if name == "guided":
        g = [s.detail["guided_rouge_l"] for s in r.items]
        general = [s.detail["general_rouge_l"] for s in r.items]
        counts = r.params["paper_rule"]["counts"]
        rule = "yes" if r.params["paper_rule"]["contaminated"] else "no"
        text = (
            f"R-L guided {statistics.mean(g):.2f} general {statistics.mean(general):.2f}; "
            f"exact {counts['exact']} near {counts['near_exact']}; paper rule {rule}"
        )
        if row is not unseen and unseen.result is not None and unseen.result.items:
            alone = auroc(g, [s.detail["guided_rouge_l"] for s in unseen.result.items])
            text += f"; guided R-L alone AUROC {alone:.2f}"
        return text
    if name.startswith("ts_guessing"):
        k, n = sum(int(s.score) for s in r.items), len(r.items)
        ci = wilson_interval(k, n)
        text = f"hits {k}/{n} [{ci.low:.2f}, {ci.high:.2f}]"
        empty = sum(1 for s in r.items if not s.detail["answer"].strip())
        if empty:  # completion form stops at a newline: an answer that opens with one is empty
            text += f"; {empty} empty answers"
        if r.unscored:
            text += f"; {len(r.unscored)} skipped"
        if name == "ts_guessing_mc":
            text += f"; R-L vs masked option {statistics.mean(s.detail['rouge_l'] for s in r.items):.2f}"
        return text
    if name == "cdd":
        flagged = r.params.get("flagged") or {}
        lengths = [s.detail["greedy_length"] for s in r.items]
        text = (
            f"flagged {flagged.get('count', 0)}/{flagged.get('n', 0)}; "
            f"mean peak {statistics.mean(scores(r)):.2f}; greedy len median {statistics.median(lengths):.0f}"
        )
        if r.unscored:
            text += f"; {len(r.unscored)} unscored"
        if row is not unseen and unseen.result is not None and unseen.result.items:
            # Diagnostic, not the probe's score: are samples any closer to greedy on seen items?
            closeness = [-s.detail["distances"]["median"] for s in r.items]
            ref = [-s.detail["distances"]["median"] for s in unseen.result.items]
            text += f"; -median distance AUROC {auroc(closeness, ref):.2f}"
        return text
    return ""


def quality_table(rows: Sequence[Row]) -> str:
    head = (
        f"{'probe':<15}{'partition':<10}{'n':>4}{'AUROC':>7}{'TPR@5%':>8}{'p':>10}  {'test':<17}"
        f"{'wall s':>7}{'reqs':>6}{'bare s':>7}{'ratio':>6}  detail"
    )
    lines = [head, "-" * len(head)]
    by = {(r.probe, r.partition): r for r in rows}
    for row in rows:
        unseen = by[(row.probe, "unseen")]
        r = row.result
        if row.error and r is None:
            lines.append(f"{row.probe:<15}{row.partition:<10}  FAILED: {row.error[:400]}")
            continue
        assert r is not None
        if r.skipped:
            lines.append(f"{row.probe:<15}{row.partition:<10}  skipped: {r.skipped}")
            continue
        pos, neg = scores(r), scores(unseen.result)
        seen = row.partition != "unseen" and pos and neg
        a = f"{auroc(pos, neg):>7.3f}" if seen else f"{'':>7}"
        t = f"{tpr_at_fpr(pos, neg, 0.05):>8.3f}" if seen else f"{'':>8}"
        p = f"{row.p_value:>10.2e}" if row.p_value is not None else f"{'':>10}"
        lines.append(
            f"{row.probe:<15}{row.partition:<10}{len(pos):>4}{a}{t}{p}  {row.test:<17}"
            f"{row.wall:>7.1f}{row.requests:>6}{row.bare:>7.1f}{row.ratio:>6.2f}  {detail(row, unseen)}"
        )
        if row.error:
            lines.append(f"{'':<25}  {row.error[:400]}")
        if row.ref_calls:
            guided = row.result is not None and row.result.probe == "guided"
            why = "the reference's guided completions naming this split" if guided else "expected 0"
            lines.append(f"{'':<25}  note: the reference run made {row.ref_calls} model calls ({why})")
    return "\n".join(lines)


def findings(rows: Sequence[Row], alpha: float = 0.05) -> list[str]:
    """Per probe: which exposures it detects (partition p < alpha), and whether it is near chance."""
    out = []
    for probe in dict.fromkeys(r.probe for r in rows):
        mine = [r for r in rows if r.probe == probe and r.result is not None and not r.result.skipped]
        by = {r.partition: r for r in mine}
        if "unseen" not in by or not by["unseen"].result or not by["unseen"].result.items:
            continue
        neg = scores(by["unseen"].result)
        parts = []
        for part in SEEN:
            row = by.get(part)
            if row is None or not scores(row.result):
                continue
            a = auroc(scores(row.result), neg)
            verdict = "detected" if row.p_value is not None and row.p_value < alpha else "not detected"
            chance = " (near chance)" if abs(a - 0.5) < 0.1 else ""
            parts.append(f"{part} {verdict}, AUROC {a:.2f}{chance}")
        false_alarm = ""
        u = by["unseen"]
        if u.p_value is not None:
            false_alarm = f"; on unseen p = {u.p_value:.2g}" + (
                " (fires on unseen!)" if u.p_value < alpha else ""
            )
        ratios = [r.ratio for r in mine if r.ratio == r.ratio]
        cost = f"; wall/bare median {statistics.median(ratios):.2f}" if ratios else ""
        out.append(f"{probe}: " + "; ".join(parts) + false_alarm + cost)
    return out


def settings_lines(probes: Sequence[tuple[str, Probe]], rows: Sequence[Row]) -> list[str]:
    lines = []
    for label, probe in probes:
        used = next(
            (r.result.params for r in rows if r.probe == label and r.result and not r.result.skipped), {}
        )
        extra = {k: v for k, v in used.items() if k.endswith("_used") or k in ("dataset_named", "basis")}
        shown = {k: v for k, v in probe.param_dict().items() if v is not None}
        lines.append(f"  {label}: {json.dumps(shown)} {json.dumps(extra) if extra else ''}".rstrip())
    return lines


# -- main ----------------------------------------------------------------------------------------


def probe_set(
    names: Sequence[str], benchmark: str, args: argparse.Namespace, tmp: Path
) -> list[tuple[str, Probe]]:
    out: list[tuple[str, Probe]] = []
    for name in names:
        if name == "cdd":
            options: dict[str, Any] = {"samples": args.cdd_samples, "max_tokens": args.cdd_max_tokens}
            out.append((name, get_probe("cdd").from_options(options)))
        elif name in ("guided", "guided_dump"):
            options = {"max_tokens_cap": args.guided_cap} if args.guided_cap else {}
            if name == "guided_dump":
                options.update(dump_cue(benchmark, tmp))
            out.append((name, get_probe("guided").from_options(options)))
        else:
            out.append((name, get_probe(name).from_options({})))
    return out


def dump_cue(benchmark: str, tmp: Path) -> dict[str, str]:
    """Guided templates whose completion-form cue is the header the testbed's dump writes before
    each copy (contam/testbed/inject.py: `Dataset: <name>` / `Split: <published split>` / `ID:`),
    less the ID line, which no template placeholder gives; the general prompt stays built in."""
    split = injectable_items(load_benchmark(benchmark))[0].partition
    path = tmp / f"guided-dump-{benchmark}.json"
    template = "Dataset: {dataset}\nSplit: " + split + "\n\n{first_piece}"
    path.write_text(json.dumps({"guided": {"completion": template}}), encoding="utf-8")
    return {"templates": str(path), "dataset": benchmark}


def subset(part: Partition, n: int | None) -> Partition:
    return part if not n else Partition(part.name, part.items[:n])


async def warm_up(client: OpenAIModel, samples: int) -> None:
    """A few generations before any timed run, so the first row does not pay the server's start."""
    body: dict[str, Any] = {"model": client.name, "prompt": "def add(a, b):\n", "max_tokens": 16}
    await bare_post(client.base_url, [("/completions", {**body, "n": samples, "temperature": 0.8, "seed": 1})]
                    + [("/completions", {**body, "temperature": 0.0})] * HTTP_CONCURRENCY)  # fmt: skip


def run_testbed(benchmark: str, wanted: Sequence[str], args: argparse.Namespace, tmp: Path) -> None:
    from contam.models.spec import ModelSpec
    from contam.registry import create_model
    from servers.vllm_server import VLLMServer

    form, supported = TESTBEDS[benchmark]
    names = [p for p in supported if p in wanted]
    if not names:
        return
    started = time.perf_counter()
    tb = build_testbed(benchmark, form)
    truth = json.loads((tb / "truth.json").read_text())
    bench = load_benchmark(str(tb / "benchmark.jsonl"))
    parts = {name: subset(bench.partition(name), args.items) for name in PARTITIONS}
    probes = probe_set(names, truth["benchmark"], args, tmp)
    log = REPO / ".contam" / f"bench-generation-vllm-{benchmark}.log"
    extra = ("--no-enable-prefix-caching",)
    t0 = time.perf_counter()
    with VLLMServer(
        tb / "model", name=f"gen-{benchmark}", max_model_len=MAX_MODEL_LEN, log_path=log, extra_args=extra
    ) as server:
        server_start = time.perf_counter() - t0
        client = create_model(ModelSpec.parse(server.spec))
        assert isinstance(client, OpenAIModel)

        async def go() -> list[Row]:
            try:
                await warm_up(client, args.cdd_samples)
                return await measure(client, truth["benchmark"], parts, probes, args.seed, args.repeats)
            finally:
                await client.aclose()

        rows = asyncio.run(go())
    sizes = ", ".join(f"{k} {len(v)}" for k, v in parts.items())
    out = [
        f"{benchmark} testbed ({form}, ci preset, seed 0): {sizes} items; model served by vLLM "
        f"(max_model_len {MAX_MODEL_LEN}, {' '.join(extra)}), openai backend "
        f"(HTTP concurrency {HTTP_CONCURRENCY}, runner concurrency {RUNNER_CONCURRENCY}, "
        f"batch {client.max_batch}); scan seed {args.seed}; {args.repeats} timed round(s); "
        f"server start {server_start:.0f}s",
        "settings:",
        *settings_lines(probes, rows),
        quality_table(rows),
        "findings (p < 0.05 counts as detected, uncorrected for the number of rows):",
        *(f"  {line}" for line in findings(rows)),
        f"({benchmark}: {time.perf_counter() - started:.0f}s with testbed and server)",
    ]
    print("\n".join(out) + "\n", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--benchmarks", default=",".join(TESTBEDS), help="comma-separated: " + ", ".join(TESTBEDS)
    )
    ap.add_argument("--probes", default=",".join(PROBES), help="comma-separated: " + ", ".join(PROBES))
    ap.add_argument("--quick", action="store_true", help="a smoke run: fewer items, samples and tokens")
    ap.add_argument("--items", type=int, default=None, help="first N items of each partition (default all)")
    ap.add_argument("--cdd-samples", type=int, default=None, help="CDD samples per item (20; quick 5)")
    ap.add_argument("--cdd-max-tokens", type=int, default=None, help="CDD tokens per output (64; quick 32)")
    ap.add_argument(
        "--guided-cap", type=int, default=None, help="guided max_tokens_cap (probe default; quick 96)"
    )
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds per row, order flipped each round")
    ap.add_argument("--seed", type=int, default=0, help="the scan seed")
    args = ap.parse_args()
    for flag, full, quick in (("items", None, 8), ("cdd_samples", 20, 5), ("cdd_max_tokens", 64, 32),
                              ("guided_cap", None, 96)):  # fmt: skip
        if getattr(args, flag) is None:
            setattr(args, flag, quick if args.quick else full)
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    wanted = [p.strip() for p in args.probes.split(",") if p.strip()]
    unknown = sorted(set(benchmarks) - set(TESTBEDS)) + sorted(set(wanted) - set(PROBES))
    if unknown:
        ap.error(f"unknown benchmark or probe: {', '.join(unknown)}")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for benchmark in benchmarks:
            run_testbed(benchmark, wanted, args, Path(tmp))
    print(f"total {time.perf_counter() - started:.0f}s{' (quick)' if args.quick else ''}")


if __name__ == "__main__":
    main()
