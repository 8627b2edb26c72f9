"""An item past the model's context is unscored, with its length and the limit, and the scan goes
on (issue 12, item 13); `--on-too-long fail` keeps the old behaviour of failing the scan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from contam.cli.main import cli
from contam.errors import ModelCallError
from contam.models.base import ScoreRequest
from contam.models.mock import MockModel
from contam.probe import ProbeContext
from contam.registry import get_probe
from contam.report import ScanReport
from contam.runner import Runner
from contam.types import Item, Partition

LONG = " ".join(["word"] * 30)  # 30 mock tokens + BOS, past a context of 16


def part(name: str, texts: list[str]) -> Partition:
    return Partition(name, tuple(Item(id=f"{name}{i}", partition=name, text=t) for i, t in enumerate(texts)))


async def test_a_long_text_is_an_overflow_result_and_the_rest_are_scored() -> None:
    runner = Runner(MockModel(context=16))
    ok, long = await runner.score([ScoreRequest(text="a short text"), ScoreRequest(text=LONG)])
    assert ok.overflow is None and len(ok.logprobs) == 3
    assert long.logprobs == () and long.overflow is not None
    assert (long.overflow.tokens, long.overflow.limit) == (31, 16)


async def test_the_fail_policy_raises_naming_the_text_and_the_lengths() -> None:
    runner = Runner(MockModel(context=16), on_too_long="fail")
    with pytest.raises(ModelCallError, match=r"31 tokens; the model's maximum context length is 16 tokens") as info:
        await runner.score([ScoreRequest(text="a short text"), ScoreRequest(text=LONG)])
    assert "'word word" in str(info.value) and "--on-too-long skip" in str(info.value)


@pytest.mark.parametrize("name", ["loss", "zlib", "lowercase", "min_k", "min_k_pp"])
async def test_probes_list_the_long_item_as_unscored_with_its_length(name: str) -> None:
    suspect = part("s", ["alpha beta gamma", LONG, "delta epsilon zeta"])
    reference = part("r", ["eta theta iota", "kappa lambda mu"])
    result = await get_probe(name)().run(suspect, Runner(MockModel(context=16)), ProbeContext("b", reference=reference))
    [unscored] = result.unscored
    assert unscored.id == "s1" and unscored.reason == "longer than the model's context"
    assert unscored.detail["length"] == 31 and unscored.detail["limit"] == 16
    assert len(result.items) == 2 and result.statistic is not None and result.statistic.n == 2
    assert any("1 of 3 items could not be scored" in n and "longer than the model's context (1)" in n for n in result.notes)


@pytest.fixture
def bench_file(tmp_path: Path) -> Path:
    rows = [{"id": f"s{i}", "text": f"suspect text {i}", "partition": "suspect"} for i in range(6)]
    rows.append({"id": "long", "text": LONG, "partition": "suspect"})
    rows += [{"id": f"u{i}", "text": f"unseen text {i}", "partition": "unseen"} for i in range(6)]
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _scan(tmp_path: Path, bench: Path, *extra: str):  # type: ignore[no-untyped-def]
    env = {"CONTAM_CACHE_DIR": str(tmp_path / "cache")}
    args = ["scan", str(bench), "--model", "mock:context=16", "--partition", "suspect", "--reference", "unseen",
            "--out", str(tmp_path / "r.json"), *extra]
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def test_scan_goes_on_and_the_report_and_summary_say_how_many(tmp_path: Path, bench_file: Path) -> None:
    result = _scan(tmp_path, bench_file)
    assert result.exit_code == 0, result.output
    assert "not scored, longer than the model's context: 1 item(s): suspect/long (31 > 16 tokens)" in result.output
    [probe] = ScanReport.read(tmp_path / "r.json").probes
    assert [u.id for u in probe.unscored] == ["long"] and len(probe.items) == 6
    assert probe.statistic is not None and probe.statistic.n == 6


def test_on_too_long_fail_keeps_the_old_behaviour(tmp_path: Path, bench_file: Path) -> None:
    result = _scan(tmp_path, bench_file, "--on-too-long", "fail")
    assert result.exit_code == 1
    assert "31 tokens; the model's maximum context length is 16 tokens" in result.output
    assert not (tmp_path / "r.json").exists()
