"""`contam report` and `write_reports`: a saved report rendered again, and bad files refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from contam.cli.main import cli
from contam.report import ScanReport
from contam.reports import render_html, render_markdown, write_reports
from tests.fixtures.reports import hand_report


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "r.json"
    hand_report().write(path)
    return path


def test_write_reports_writes_three_siblings_atomically(tmp_path: Path) -> None:
    report = hand_report()
    paths = write_reports(report, tmp_path / "out" / "scan.json")
    assert paths == {k: tmp_path / "out" / f"scan.{k}" for k in ("json", "md", "html")}
    assert ScanReport.read(paths["json"]) == report
    assert paths["md"].read_text(encoding="utf-8") == render_markdown(report)
    assert paths["html"].read_text(encoding="utf-8") == render_html(report)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scan.html", "scan.json", "scan.md"]
    with pytest.raises(ValueError, match="suffix other than"):
        write_reports(report, tmp_path / "scan.md")


@pytest.mark.parametrize(("fmt", "suffix", "start"), [("md", ".md", "# Contamination report"), ("html", ".html", "<!DOCTYPE html>")])
def test_renders_beside_the_report_by_default(saved: Path, fmt: str, suffix: str, start: str) -> None:
    result = _run("report", str(saved), "--format", fmt)
    assert result.exit_code == 0, result.output
    target = saved.with_suffix(suffix)
    assert result.output.strip() == f"{fmt} report written to {target}"
    assert target.read_text(encoding="utf-8").startswith(start)


def test_html_is_the_default_and_dash_is_stdout(saved: Path, tmp_path: Path) -> None:
    result = _run("report", str(saved), "--out", "-")
    assert result.exit_code == 0 and result.output == render_html(ScanReport.read(saved))
    out = tmp_path / "elsewhere" / "page.html"
    assert _run("report", str(saved), "--out", str(out)).exit_code == 0 and out.exists()


def test_refuses_to_overwrite_the_report(saved: Path) -> None:
    result = _run("report", str(saved), "--format", "md", "--out", str(saved))
    assert result.exit_code == 2 and "would overwrite the report itself" in result.output
    assert ScanReport.read(saved) == hand_report()


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "bad.json:1: not JSON: "),
        ('{"items": []}', "bad.json: field 'schema_version': not a contam scan report"),
        ('{"schema_version": "2.0"}', "bad.json: field 'schema_version': report schema 2.0 cannot be read"),
        ('{"schema_version": "1.3", "seed": 0}', "bad.json: field 'benchmark': not a valid scan report of schema 1.3"),
    ],
)
def test_a_bad_report_file_exits_2_naming_it(tmp_path: Path, content: str, message: str) -> None:
    result = _run("report", str(_write(tmp_path, content)))
    assert result.exit_code == 2
    assert message in result.output and str(tmp_path) in result.output


def test_a_missing_file_and_a_wrong_field_exit_2(tmp_path: Path, saved: Path) -> None:
    result = _run("report", str(tmp_path / "nope.json"))
    assert result.exit_code == 2 and "nope.json: cannot read report" in result.output
    data = json.loads(saved.read_text(encoding="utf-8"))
    data["verdicts"]["partitions"][0]["verdict"] = "clean"  # never a verdict
    result = _run("report", str(_write(tmp_path, json.dumps(data))))
    assert result.exit_code == 2 and "field 'verdicts.partitions.0.verdict'" in result.output


def test_an_old_report_renders_with_a_note(tmp_path: Path) -> None:
    data = json.loads(hand_report().model_dump_json())
    data["schema_version"] = "1.2"
    del data["verdicts"], data["excerpts"]
    result = _run("report", str(_write(tmp_path, json.dumps(data))), "--format", "md", "--out", "-")
    assert result.exit_code == 0 and "no verdicts: report schema < 1.3 (this one is 1.2)" in result.output


def test_the_terminal_verdict_table_is_the_verdicts_own() -> None:
    from contam.reports import verdict_table
    from contam.verdicts.table import verdict_table as own

    report = hand_report()
    assert verdict_table is own and report.verdicts is not None
    assert "seen_x16" in verdict_table(report.verdicts)
