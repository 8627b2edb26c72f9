"""From a real scan on the mock model to verdicts: evidence, skipped probes, corpus, blind baseline."""

from __future__ import annotations

import asyncio
import random
import re

from contam.benchmarks.builtin import gsm8k, humaneval
from contam.models.base import ScoreResult
from contam.models.mock import MockModel, tokenize
from contam.registry import get_probe
from contam.report import ScanReport
from contam.results import PartitionStatistic, ProbeResult
from contam.runner import Runner
from contam.scan import scan
from contam.types import Benchmark, Item, Partition
from contam.verdicts import evidence_of, judge
from contam.verdicts.evidence import NO_REFERENCE
from contam.verdicts.types import Verdict, VerdictPolicy
from corpora_index.report import ItemOverlap, OverlapReport
from corpora_index.settings import IndexSettings

WORDS = ["apple", "pear", "river", "stone", "cloud", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "seven", "green", "tables", "bright", "lamps"]


def _bench(parts: dict[str, list[str]]) -> Benchmark:
    partitions = {
        name: Partition(name, tuple(Item(id=f"{name}-{i}", partition=name, text=t) for i, t in enumerate(texts)))
        for name, texts in parts.items()
    }
    return Benchmark("b", "plain", partitions, "memory", "0" * 64)


def _same_kind(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(14)) + f" item {seed}-{i}" for i in range(n)]


def _scan(bench: Benchmark, model: MockModel, probes: list[str], reference: str | None, **kw) -> ScanReport:
    runner = Runner(model)
    ref = bench.partition(reference) if reference else None
    tested = [p for p in bench.partitions if p != reference]

    async def go() -> ScanReport:
        try:
            return await scan(
                bench, runner, [get_probe(p).from_options({}) for p in probes], model_spec="mock",
                partitions=tested, reference=ref, reference_label=reference, **kw,
            )  # fmt: skip
        finally:
            await runner.aclose()

    return asyncio.run(go())


def test_seen_partition_is_contaminated_and_fresh_one_is_no_evidence() -> None:
    texts = _same_kind(60, 1)
    bench = _bench({"seen": texts[:20], "fresh": texts[20:40], "unseen": texts[40:]})
    report = _scan(bench, MockModel(seen=texts[:20]), ["loss", "zlib"], "unseen")
    assert report.verdicts is not None
    seen, fresh = report.verdicts.of("seen"), report.verdicts.of("fresh")
    assert (seen.verdict, seen.rule_id) == (Verdict.CONTAMINATED, "combined")
    assert fresh.verdict is Verdict.NO_EVIDENCE
    assert seen.baseline is not None and not seen.baseline.distinguishes
    line = next(e.summary for e in seen.evidence if e.name == "loss")
    assert re.fullmatch(r"loss: AUROC 1\.00 \[1\.00, 1\.00\] vs unseen, Mann-Whitney p = \S+ \(n 20 / 20\)", line), line
    # the report reloads with its verdicts
    assert ScanReport.model_validate_json(report.model_dump_json()).verdicts == report.verdicts


def test_no_policy_means_no_verdicts() -> None:
    texts = _same_kind(20, 2)
    report = _scan(_bench({"a": texts[:10], "u": texts[10:]}), MockModel(), ["loss"], "u", policy=None)
    assert report.verdicts is None


def test_without_reference_probes_are_skipped_and_nothing_is_testable() -> None:
    texts = _same_kind(20, 3)
    report = _scan(_bench({"a": texts}), MockModel(seen=texts), ["loss"], None)
    assert report.verdicts is not None
    v = report.verdicts.of("a")
    assert (v.verdict, v.rule_id) == (Verdict.INCONCLUSIVE, "nothing_testable")
    assert [(s.name, s.reason) for s in v.skipped] == [("loss", NO_REFERENCE)]


def test_a_probe_the_model_cannot_run_is_listed_and_not_counted() -> None:
    texts = _same_kind(40, 4)
    bench = _bench({"seen": texts[:20], "unseen": texts[20:]})
    report = _scan(bench, MockModel(seen=texts[:20]), ["loss", "min_k_pp"], "unseen")
    skipped = ProbeResult.skip("guided", "seen", {}, "model 'mock' lacks: chat")
    report = report.model_copy(update={"probes": (*report.probes, skipped)})
    (pe,) = evidence_of(report, {})
    assert [s.name for s in pe.skipped] == ["guided"] and "lacks" in pe.skipped[0].reason
    assert [e.name for e in pe.evidence] == ["loss", "min_k_pp"]


def test_effect_floors_follow_the_effect_name() -> None:
    texts = _same_kind(20, 5)
    report = _scan(_bench({"a": texts[:10], "u": texts[10:]}), MockModel(), ["loss"], "u", policy=None)

    def result(name: str, effect_name: str | None, effect: float | None, reference: str | None) -> ProbeResult:
        st = PartitionStatistic(
            name=name, value=1.0, p_value=0.01, null="-", effect_name=effect_name, effect=effect,
            reference=reference, n=10, n_reference=10 if reference else None,
        )  # fmt: skip
        return ProbeResult(probe=name, partition="a", params={}, statistic=st)

    probes = (
        result("wilcoxon_signed_rank", "rank_biserial", 0.05, None),
        result("fisher_exact", "rate_difference", 0.3, "u"),
        result("sharded_likelihood_t", None, None, None),
        ProbeResult(probe="nop", partition="a", params={}, statistic=PartitionStatistic(name="x", value=0, null="-", n=3)),
    )
    (pe,) = evidence_of(report.model_copy(update={"probes": probes}), {}, VerdictPolicy())
    floors = {e.name: (e.effect_floor, e.meets_floor, e.uses_reference) for e in pe.evidence}
    assert floors == {
        "wilcoxon_signed_rank": (0.1, False, False),
        "fisher_exact": (0.02, True, True),
        "sharded_likelihood_t": (None, None, False),
    }
    assert [s.name for s in pe.skipped] == ["nop"] and "no p-value" in pe.skipped[0].reason


def _overlap(bench: Benchmark, coverage: dict[str, tuple[float, int]]) -> OverlapReport:
    items = []
    for part in bench.partitions.values():
        for item in part.items:
            cov, span = coverage.get(item.id, (0.0, 0))
            items.append(
                ItemOverlap(id=item.id, partition=part.name, matched=cov > 0, ngram_fraction=cov,
                            token_coverage=cov, longest_span=span)
            )  # fmt: skip
    return OverlapReport(fingerprint=IndexSettings(), items=tuple(items))


def test_corpus_overlap_becomes_a_summary_and_decides_alone() -> None:
    texts = _same_kind(40, 6)
    bench = _bench({"a": texts[:20], "u": texts[20:]})
    # a-0..a-2 verbatim (3 of 20 = 15%), a-3 covered but no long span, a-4 partly: 2 partly, 15 clean
    coverage = {"a-0": (1.0, 20), "a-1": (0.9, 15), "a-2": (0.8, 13), "a-3": (0.95, 12), "a-4": (0.5, 8)}
    report = _scan(bench, MockModel(), ["loss"], "u", overlap=_overlap(bench, coverage))
    assert report.verdicts is not None
    v = report.verdicts.of("a")
    assert v.corpus is not None
    assert (v.corpus.dirty, v.corpus.partly, v.corpus.clean, v.corpus.longest_span) == (3, 2, 15, 20)
    assert (v.verdict, v.rule_id) == (Verdict.CONTAMINATED, "corpus_direct")
    assert v.evidence[0].source == "corpus" and "3 of 20 items verbatim (15%" in v.evidence[0].summary
    assert "13-grams of words" in v.corpus.index
    partial = _scan(bench, MockModel(), ["loss"], "u", overlap=_overlap(bench, {"a-0": (1.0, 20)}))
    assert partial.verdicts is not None and partial.verdicts.of("a").rule_id == "corpus_partial"


def test_too_few_items_for_the_baseline_is_listed() -> None:
    texts = _same_kind(14, 7)
    bench = _bench({"a": texts[:7], "u": texts[7:]})
    report = _scan(bench, MockModel(seen=texts[:7]), ["loss"], "u")
    assert report.verdicts is not None
    v = report.verdicts.of("a")
    assert v.baseline is None and any("too few items" in s.reason for s in v.skipped)
    assert v.combined_p is not None  # the probe still counts; only the fairness check could not run


def _scripted(texts: list[str], logprob: float) -> dict[str, ScoreResult]:
    """What a clean model does with text that is easy for it: every token likely, nothing seen."""
    out = {}
    for t in texts:
        tokens = tuple(tokenize(t))
        out[t] = ScoreResult(tokens=tokens, logprobs=(logprob,) * len(tokens), bos=True)
    return out


def test_a_clean_model_with_an_unfair_reference_is_inconclusive_not_contaminated() -> None:
    """The model saw neither side, but finds code easier than math word problems, so every
    likelihood probe separates HumanEval from GSM8K. The blind baseline tells them apart without
    any model, so the verdict is inconclusive; the same scores against a fair reference (other
    GSM8K questions) are contaminated."""
    code = [i.text for i in humaneval().partition("test").items[:30]]
    math_qs = [i.prompt or i.text for i in gsm8k().partition("test").items[:60]]
    unfair = _bench({"code": code, "math": math_qs[:30]})
    model = MockModel(score_script={**_scripted(code, -0.4), **_scripted(math_qs, -2.5)})
    report = judge(_scan(unfair, model, ["loss"], "math", policy=None), unfair, unfair.partition("math"))
    assert report.verdicts is not None
    v = report.verdicts.of("code")
    assert report.probes[0].statistic is not None and report.probes[0].statistic.effect == 1.0
    assert (v.verdict, v.rule_id) == (Verdict.INCONCLUSIVE, "blind_baseline")
    assert v.baseline is not None and v.baseline.distinguishes and v.baseline.auroc > 0.95
    assert all(not e.used for e in v.evidence)

    fair = _bench({"suspect": math_qs[30:], "math": math_qs[:30]})
    model = MockModel(score_script={**_scripted(math_qs[30:], -0.4), **_scripted(math_qs[:30], -2.5)})
    fair_report = _scan(fair, model, ["loss"], "math")
    assert fair_report.verdicts is not None
    assert fair_report.verdicts.of("suspect").rule_id == "combined"
