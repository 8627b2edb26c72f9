"""Acceptance: `contam checklist examples/release.yaml` on the GSM8K `ci` testbed model exits 3,
flags every partition the model saw 4 or more times and no partition it never saw (the testbeds'
truth.json), through the CLI and the hf backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from contam.checklist import ChecklistResult
from contam.cli.main import cli

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "release.yaml"


def test_the_example_checklist_flags_what_the_model_saw_and_nothing_it_did_not(
    testbed_ci: Path, testbed_gsm8k: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["checklist", str(EXAMPLE), "--out", str(out), "--cache", str(tmp_path / "calls.sqlite"), "--quiet"],
    )
    assert result.exit_code == 3, result.output
    checklist = ChecklistResult.read(out / "checklist.json")

    gsm8k_truth = json.loads((testbed_gsm8k / "truth.json").read_text())
    exposure = {("gsm8k-ci", name): part["exposures"] for name, part in gsm8k_truth["partitions"].items()}
    # The HumanEval partitions went into the HumanEval testbed's model, never into this one.
    humaneval_truth = json.loads((testbed_ci / "truth.json").read_text())
    exposure |= {("humaneval-ci", name): 0 for name in humaneval_truth["partitions"]}

    verdicts = {(line.benchmark, line.partition): line.verdict.value for line in checklist.lines}
    assert set(verdicts) == {
        key for key in exposure if key != ("humaneval-ci", "unseen")
    }  # that one is the reference
    for key, verdict in sorted(verdicts.items()):
        print(f"{key[0]}/{key[1]}: exposure {exposure[key]}, {verdict}")  # seen_x1 is recorded, not asserted
    seen_often = {key for key, n in exposure.items() if n >= 4}
    assert seen_often == {("gsm8k-ci", "seen_x16"), ("gsm8k-ci", "seen_x4")}
    assert {key: verdicts[key] for key in seen_often} == dict.fromkeys(seen_often, "contaminated")
    never_seen = {key for key, n in exposure.items() if n == 0 and key in verdicts}
    assert len(never_seen) == 4
    assert {key: verdicts[key] for key in never_seen if verdicts[key] in ("contaminated", "suspicious")} == {}
    assert "Holm over the 7 partitions" in (out / "checklist.md").read_text()
    assert checklist.model.startswith("hf:") and checklist.identity.backend == "hf"
