"""`contam scan` end to end on the mock backend: verdicts in report.json and first on the terminal."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from contam.cli.main import cli
from contam.report import ScanReport
from contam.verdicts.types import Verdict

WORDS = ["apple", "pear", "river", "stone", "cloud", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "seven", "green", "tables", "bright", "lamps"]


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """seen (memorised by the mock), fresh and unseen: three partitions of the same kind of text."""
    monkeypatch.setenv("CONTAM_CACHE_DIR", str(tmp_path / "cache"))
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(12)) + f" number {i}" for i in range(60)]
    rows = [
        {"id": f"{part[0]}{i}", "text": texts[k * 20 + i], "partition": part}
        for k, part in enumerate(("seen", "fresh", "unseen"))
        for i in range(20)
    ]
    bench = tmp_path / "b.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    seen = tmp_path / "seen.json"
    seen.write_text(json.dumps(texts[:20]), encoding="utf-8")
    return bench, seen


def _scan(bench: Path, seen: Path, out: Path, *extra: str):
    args = ["scan", str(bench), "--model", f"mock:seen={seen}", "--reference", "unseen", "--probe", "loss"]
    return CliRunner().invoke(cli, [*args, "--probe", "zlib", "--out", str(out), *extra], catch_exceptions=False)


def test_verdicts_are_in_the_report_and_printed_first(files: tuple[Path, Path], tmp_path: Path) -> None:
    bench, seen = files
    out = tmp_path / "out" / "r.json"
    result = _scan(bench, seen, out)
    assert result.exit_code == 0, result.output
    report = ScanReport.read(out)
    assert report.verdicts is not None and report.verdicts.policy.alpha == 0.05
    assert report.verdicts.of("seen").verdict is Verdict.CONTAMINATED
    assert report.verdicts.of("fresh").verdict is Verdict.NO_EVIDENCE
    text = result.output
    assert text.index("verdicts (alpha 0.05") < text.index("partition  probe")
    assert any(line.startswith("seen") and "contaminated" in line and "combined:" in line for line in text.splitlines())
    assert any(line.startswith("fresh") and "no_evidence" in line for line in text.splitlines())
    html, md = out.with_suffix(".html"), out.with_suffix(".md")
    assert text.strip().splitlines()[-1] == f"report: {out}, {md}, HTML: {html}"
    assert html.is_file() and md.is_file() and "contaminated" in md.read_text(encoding="utf-8")


def test_alpha_is_validated_and_used(files: tuple[Path, Path], tmp_path: Path) -> None:
    bench, seen = files
    for bad in ("0", "1", "1.5", "-0.1"):
        result = _scan(bench, seen, tmp_path / "r.json", "--alpha", bad)
        assert result.exit_code == 2 and "--alpha" in result.output, bad
    result = _scan(bench, seen, tmp_path / "r.json", "--alpha", "1e-12", "--quiet")
    assert result.exit_code == 0, result.output
    verdicts = ScanReport.read(tmp_path / "r.json").verdicts
    assert verdicts is not None and verdicts.policy.alpha == 1e-12
    # 20 against 20 with AUROC 1 gives p about 3e-8: not below an alpha of 1e-12
    assert verdicts.of("seen").verdict is Verdict.NO_EVIDENCE
    result = _scan(bench, seen, tmp_path / "h.json", "--combination", "holm", "--quiet")
    verdicts = ScanReport.read(tmp_path / "h.json").verdicts
    assert result.exit_code == 0 and verdicts is not None and verdicts.policy.combination == "holm"
    assert "Bonferroni-combined" in verdicts.of("seen").rule


def test_a_json_report_named_like_its_siblings_is_refused(files: tuple[Path, Path], tmp_path: Path) -> None:
    bench, seen = files
    result = _scan(bench, seen, tmp_path / "r.html")
    assert result.exit_code == 2 and "--out" in result.output
