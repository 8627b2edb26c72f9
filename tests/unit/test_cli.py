"""The CLI driven in-process through click's CliRunner, on the mock backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from contam.cli.main import cli
from contam.report import ScanReport


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONTAM_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def bench_file(tmp_path: Path) -> Path:
    rows = [
        {"id": f"s{i}", "text": f"seen text number {i} about apples", "partition": "suspect"}
        for i in range(12)
    ]
    rows += [
        {"id": f"u{i}", "text": f"fresh text number {i} about pears", "partition": "unseen"}
        for i in range(12)
    ]
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_help_everywhere(run) -> None:
    """Every command and sub-command, found by walking the click tree, answers --help."""
    import click

    def walk(command: click.Command, path: list[str]):
        yield path
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, [*path, name]
                yield from walk(sub, [*path, name])

    paths = list(walk(cli, []))
    assert ["index", "query"] in paths and ["testbed", "build"] in paths and len(paths) >= 15
    for path in paths:
        result = run(*path, "--help")
        assert result.exit_code == 0, path
        assert "Usage:" in result.output, path


def test_reference_file_is_read_with_the_benchmarks_field_mapping(run, tmp_path: Path) -> None:
    def write(name: str, texts: list[str]) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps({"key": f"{name}{i}", "body": t}) + "\n" for i, t in enumerate(texts)))
        return path

    suspect = write("s.jsonl", [f"seen text number {i} about apples" for i in range(8)])
    ref = write("r.jsonl", [f"fresh text number {i} about pears" for i in range(8)])
    out = tmp_path / "r.json"
    result = run("scan", str(suspect), "--field", "text=body", "--field", "id=key", "--reference", str(ref),
                 "--out", str(out), "--quiet", "--no-cache")
    assert result.exit_code == 0, result.output
    (probe,) = ScanReport.read(out).probes
    assert probe.statistic is not None and probe.statistic.reference == "reference:r" and probe.statistic.n_reference == 8


def test_scan_writes_report_and_detects_memorised_partition(run, bench_file: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    seen.write_text(json.dumps([f"seen text number {i} about apples" for i in range(12)]), encoding="utf-8")
    out = tmp_path / "r.json"
    result = run(
        "scan",
        str(bench_file),
        "--model",
        f"mock:seen={seen}",
        "--partition",
        "suspect",
        "--reference",
        "unseen",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    report = ScanReport.read(out)
    [probe] = report.probes
    assert probe.probe == "loss" and probe.partition == "suspect" and len(probe.items) == 12
    assert probe.statistic is not None and probe.statistic.reference == "unseen"
    assert probe.statistic.p_value is not None and probe.statistic.p_value < 0.001
    assert probe.statistic.effect == 1.0


def test_scan_without_reference_says_no_test(run, bench_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run("scan", str(bench_file), "--out", str(out))
    assert result.exit_code == 0, result.output
    report = ScanReport.read(out)
    assert {p.partition for p in report.probes} == {"suspect", "unseen"}
    assert all(
        p.statistic is None and any("no test was possible" in n for n in p.notes) for p in report.probes
    )
    assert "no test was possible" in result.output


def test_scan_on_malformed_jsonl_exits_2_naming_the_line(run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{"text": "b"\n', encoding="utf-8")
    result = run("scan", str(bad), "--out", str(tmp_path / "r.json"))
    assert result.exit_code == 2
    assert f"{bad}:2: malformed JSON" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partition", "nope"], "no partition 'nope'"),
        (["--probe", "nope"], "unknown probe 'nope'"),
        (["--model", "nope:x"], "unknown model backend 'nope'"),
        (["--model", "openai:tiny"], "expected openai:NAME@BASE_URL"),
        (["--param", "loss.add_bos"], "is not PROBE.KEY=VALUE"),
        (["--param", "loss.nope=1"], "loss.nope"),
        (["--param", "min_k.k=0.1"], "parameters given for probes not run"),
        (["--reference", "missing"], "neither a partition"),
    ],
)
def test_usage_errors_exit_2(run, bench_file: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = run("scan", str(bench_file), "--out", str(tmp_path / "r.json"), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_click_usage_error_exits_2(run) -> None:
    result = run("scan")
    assert result.exit_code == 2
    assert "Missing argument" in result.output


def test_models_check_mock(run) -> None:
    result = run("models", "check", "mock")
    assert result.exit_code == 0
    info = json.loads(result.output)
    assert info["capabilities"]["prompt_logprobs"] is True
    assert info["checks"]["score"].startswith("ok")
    assert info["checks"]["generate"].startswith("ok")


def test_benchmarks_show_real_counts(run) -> None:
    result = run("benchmarks", "show", "gsm8k")
    assert result.exit_code == 0
    assert "train     7473" in result.output and "test      1319" in result.output
    result = run("benchmarks", "show", "truthfulqa-mc")
    assert "validation      817" in result.output and "choices:" in result.output


def test_rerun_reads_the_cache(run, bench_file: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert run("scan", str(bench_file), "--out", str(first), "--quiet").exit_code == 0
    assert run("scan", str(bench_file), "--out", str(second), "--quiet").exit_code == 0
    a, b = ScanReport.read(first), ScanReport.read(second)
    assert a.findings() == b.findings()
    assert b.run.model_calls == 0 and b.run.cache_hits == 24
