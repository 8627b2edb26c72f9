"""The testbed model through contam's own backends: it loads and scores in `hf`, and a scan of its
benchmark.jsonl finds the partition it saw 16 times, against the ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from contam.benchmarks import load_benchmark
from contam.cli.main import cli
from contam.models.base import ScoreRequest
from contam.models.spec import ModelSpec
from contam.registry import create_model
from contam.report import ScanReport
from contam.testbed.sanity import score_texts

pytestmark = pytest.mark.integration


async def test_hf_backend_scores_match_transformers(testbed_ci: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bench = load_benchmark(str(testbed_ci / "benchmark.jsonl"))
    texts = [i.text for i in bench.partition("unseen").items[:4]]
    client = create_model(ModelSpec.parse(f"hf:{testbed_ci / 'model'}"))
    try:
        results = await client.score([ScoreRequest(text=t) for t in texts])
    finally:
        await client.aclose()
    model = AutoModelForCausalLM.from_pretrained(str(testbed_ci / "model"))
    tok = AutoTokenizer.from_pretrained(str(testbed_ci / "model"))
    direct, _ = score_texts(model, tok, texts)
    for r, d in zip(results, direct, strict=True):
        assert r.bos and len(r.logprobs) == d.tokens
        assert sum(r.logprobs) / len(r.logprobs) == pytest.approx(d.loss, abs=1e-4)


def test_scan_of_testbed_flags_seen_x16_not_by_chance(testbed_ci: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    res = CliRunner().invoke(cli, [
        "scan", str(testbed_ci / "benchmark.jsonl"), "--model", f"hf:{testbed_ci / 'model'}",
        "--partition", "seen_x16", "--reference", "unseen", "--probe", "loss",
        "--out", str(out), "--no-cache", "--quiet",
    ])
    assert res.exit_code == 0, res.output
    report = ScanReport.read(out)
    (result,) = report.probes
    assert result.partition == "seen_x16" and result.statistic is not None
    assert result.statistic.p_value < 0.01
    assert result.statistic.effect > 0.8


async def test_vllm_server_scores_the_testbed_model(testbed_ci: Path, vllm_server: Any) -> None:
    """Needs `served_model_dir` pointed at the testbed model (tests/fixtures/models.py)."""
    from contam.models.openai_http import OpenAIModel
    from contam.stats import compare_to_reference

    assert Path(vllm_server.model_dir).resolve() == (testbed_ci / "model").resolve(), (
        "the shared server must serve the testbed model: point served_model_dir at testbed_ci / 'model'"
    )
    bench = load_benchmark(str(testbed_ci / "benchmark.jsonl"))
    seen = [i.text for i in bench.partition("seen_x16").items]
    unseen = [i.text for i in bench.partition("unseen").items]
    client = OpenAIModel(vllm_server.name, vllm_server.base_url)
    try:
        served = await client.score([ScoreRequest(text=t) for t in seen + unseen])
    finally:
        await client.aclose()
    means = [sum(r.logprobs) / len(r.logprobs) for r in served]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(testbed_ci / "model"))
    tok = AutoTokenizer.from_pretrained(str(testbed_ci / "model"))
    direct, _ = score_texts(model, tok, seen[:3] + unseen[:3])
    for r, d in zip(served[:3] + served[len(seen):len(seen) + 3], direct, strict=True):
        assert len(r.logprobs) == d.tokens
        assert sum(r.logprobs) / len(r.logprobs) == pytest.approx(d.loss, abs=1e-3)
    stat = compare_to_reference(means[: len(seen)], means[len(seen):], reference_name="unseen")
    assert stat.p_value < 0.01


def test_testbed_cli_reuses_the_build_and_shows_and_lists_it(testbed_ci: Path, tmp_path: Path) -> None:
    """`contam testbed build` with the fixture's arguments returns the cached build at once and prints
    the sanity table; `show` prints the card; `list` finds the build in the cache."""
    from tests.fixtures.testbed import TESTBED_ROOT

    cache = TESTBED_ROOT / "cache"
    runner = CliRunner()
    built = runner.invoke(cli, ["testbed", "build", "--benchmark", "humaneval", "--preset", "ci",
                                "--seed", "0", "--out", str(tmp_path / "tb"), "--cache-dir", str(cache)])
    assert built.exit_code == 0, built.output
    assert "reused a finished build" in built.output
    for partition in ("seen_x16", "seen_x4", "seen_x1"):
        assert any(line.startswith(partition) for line in built.output.splitlines()), built.output
    assert (tmp_path / "tb" / "model" / "model.safetensors").read_bytes() == (
        testbed_ci / "model" / "model.safetensors").read_bytes()

    shown = runner.invoke(cli, ["testbed", "show", str(testbed_ci)])
    assert shown.exit_code == 0, shown.output
    assert shown.output == (testbed_ci / "card.md").read_text(encoding="utf-8") + "\n"
    assert "seen_x16" in shown.output

    listed = runner.invoke(cli, ["testbed", "list", "--cache-dir", str(cache)])
    assert listed.exit_code == 0, listed.output
    key = json.loads((testbed_ci / "build.json").read_text())["key"]
    assert any(key in line and "humaneval" in line for line in listed.output.splitlines()), listed.output
