"""Acceptance on the HumanEval `ci` testbed: the likelihood probes find the partition the model saw
16 times, against the partition it never saw, through the CLI and the hf backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from contam.cli.main import cli

pytestmark = pytest.mark.integration


def scan(testbed: Path, out: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli,
        ["scan", str(testbed / "benchmark.jsonl"), "--model", f"hf:{testbed / 'model'}", "--no-cache",
         "--quiet", "--out", str(out), *args],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def test_min_k_pp_flags_seen_x16_against_unseen(testbed_ci: Path, tmp_path: Path) -> None:
    report = scan(testbed_ci, tmp_path / "r.json", "--probe", "min_k_pp", "--partition", "seen_x16",
                  "--reference", "unseen")  # fmt: skip
    [result] = report["probes"]
    assert result["probe"] == "min_k_pp" and result["partition"] == "seen_x16"
    assert len(result["items"]) == 41 and all(isinstance(s["score"], float) for s in result["items"])
    assert {s["detail"]["bos"] for s in result["items"]} == {True}
    st = result["statistic"]
    assert st["name"] == "mann_whitney_u" and st["reference"] == "unseen" and st["n_reference"] == 41
    assert st["p_value"] < 0.01
    assert st["effect_name"] == "auroc" and st["effect_ci"]["low"] <= st["effect"] <= st["effect_ci"]["high"]
    assert st["effect_ci"]["low"] > 0.5
    assert result["params"]["distribution"] == "exact" and result["params"]["k"] == 0.2


def test_seen_once_is_not_called_more_certain_than_seen_sixteen_times(
    testbed_ci: Path, tmp_path: Path
) -> None:
    report = scan(testbed_ci, tmp_path / "r.json", "--probe", "min_k", "--probe", "zlib", "--probe", "lowercase",
                  "--reference", "unseen")  # fmt: skip
    by = {(r["probe"], r["partition"]): r["statistic"] for r in report["probes"]}
    for probe in ("min_k", "zlib", "lowercase"):
        assert by[(probe, "seen_x16")]["effect"] > by[(probe, "seen_x1")]["effect"], probe
        assert by[(probe, "seen_x16")]["p_value"] < 0.01, probe
    assert ("min_k", "unseen") not in by  # the reference is not tested against itself


def test_exchangeability_runs_on_a_partition_in_published_order(testbed_ci: Path, tmp_path: Path) -> None:
    report = scan(testbed_ci, tmp_path / "x.json", "--probe", "exchangeability", "--partition", "seen_x16",
                  "--param", "exchangeability.permutations=20")  # fmt: skip
    [result] = report["probes"]
    st = result["statistic"]
    assert result["skipped"] is None and st["name"] == "sharded_likelihood_t" and st["n"] == 41
    assert 0.0 <= st["p_value"] <= 1.0 and st["reference"] is None
    assert result["params"]["shards_used"] == 20  # 41 items: shards of 2-3, fewer than the 50 asked for
    assert any("published order" in n for n in result["notes"])
