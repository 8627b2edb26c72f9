"""Overlap evidence in `ScanReport`: `contam scan --overlap overlap.json`, refused when it does not fit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from contam.cli.main import cli
from contam.report import ScanReport
from corpora_index.report import OverlapReport

COPIED = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa"
FRESH = "the quick brown fox jumps over the lazy dog while seven wizards quietly hex the judge again"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONTAM_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args))

    return invoke


def _bench(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text(
        "".join(json.dumps({"id": i, "partition": p, "text": t}) + "\n" for i, p, t in rows), encoding="utf-8"
    )
    return path


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return _bench(
        tmp_path / "b.jsonl",
        [("q1", "test", COPIED), ("q2", "test", FRESH), ("t1", "train", FRESH), ("t2", "train", FRESH)],
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "web.txt").write_text("some page text\n" + COPIED + "\nmore text", encoding="utf-8")
    return folder


def _overlap(run, bench: Path, corpus: Path, out: Path, *extra: str) -> OverlapReport:
    result = run("overlap", str(bench), str(corpus), "--out", str(out), "--no-minhash", "--quiet", *extra)
    assert result.exit_code == 0, result.output
    return OverlapReport.read(out)


def test_overlap_report_is_keyed_by_partition_and_id() -> None:
    from corpora_index import BenchmarkIndex, Document, finalize, scan_documents

    # the library accepts the same id in two partitions, so evidence is keyed by (partition, id)
    index = BenchmarkIndex.build([("q1", "test", COPIED), ("q1", "train", FRESH)], minhash=False)
    report = finalize(index, scan_documents(index, [Document("web", "page " + COPIED + " page")]))
    keyed = report.by_key()
    assert len(keyed) == 2
    assert keyed[("test", "q1")].matched and not keyed[("train", "q1")].matched


def test_scan_attaches_overlap_evidence(run, bench: Path, corpus: Path, tmp_path: Path) -> None:
    overlap = _overlap(run, bench, corpus, tmp_path / "o.json")
    out = tmp_path / "r.json"
    result = run("scan", str(bench), "--overlap", str(tmp_path / "o.json"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "corpus overlap: 1/4 items with exact n-gram matches" in result.output
    report = ScanReport.read(out)
    assert report.overlap == overlap
    found = report.item_overlap("test", "q1")
    assert found is not None and found.matched and found.longest_span == 16
    missing = report.item_overlap("train", "t1")
    assert missing is not None and not missing.matched
    assert report.item_overlap("test", "nope") is None
    # without --overlap the field is absent (null) and old reports still read
    plain = tmp_path / "plain.json"
    assert run("scan", str(bench), "--out", str(plain), "--quiet").exit_code == 0
    data = json.loads(plain.read_text())
    assert data["overlap"] is None
    del data["overlap"]
    assert ScanReport.model_validate(data).overlap is None


def test_scan_refuses_overlap_of_another_benchmark(run, bench: Path, corpus: Path, tmp_path: Path) -> None:
    other = _bench(tmp_path / "other.jsonl", [("x1", "test", COPIED), ("q2", "test", FRESH)])
    _overlap(run, other, corpus, tmp_path / "other.json")
    result = run(
        "scan", str(bench), "--overlap", str(tmp_path / "other.json"), "--out", str(tmp_path / "r.json")
    )
    assert result.exit_code == 2
    assert "1 item(s) of partition 'test' are not in benchmark" in result.output and "'x1'" in result.output
    assert not (tmp_path / "r.json").exists()


def test_scan_refuses_overlap_missing_a_tested_partition(
    run, bench: Path, corpus: Path, tmp_path: Path
) -> None:
    _overlap(run, bench, corpus, tmp_path / "o.json", "--partition", "test")
    args = ["scan", str(bench), "--overlap", str(tmp_path / "o.json"), "--out", str(tmp_path / "r.json")]
    result = run(*args)
    assert result.exit_code == 2
    assert "has no items of partition 'train', which this scan tests" in result.output
    # scanning only the partition it covers is fine
    assert run(*args, "--partition", "test", "--quiet").exit_code == 0


def test_scan_refuses_overlap_lacking_items_or_not_an_overlap_file(
    run, bench: Path, corpus: Path, tmp_path: Path
) -> None:
    report = _overlap(run, bench, corpus, tmp_path / "o.json")
    cut = report.model_copy(update={"items": report.items[1:]})
    cut.write(tmp_path / "cut.json")
    result = run(
        "scan", str(bench), "--overlap", str(tmp_path / "cut.json"), "--out", str(tmp_path / "r.json")
    )
    assert result.exit_code == 2 and "lacks 1 of the 2 items of partition 'test'" in result.output
    (tmp_path / "junk.json").write_text('{"items": []}', encoding="utf-8")
    result = run(
        "scan", str(bench), "--overlap", str(tmp_path / "junk.json"), "--out", str(tmp_path / "r.json")
    )
    assert result.exit_code == 2 and "not an overlap.json" in result.output and "fingerprint" in result.output


def test_scan_out_is_checked_before_the_scan(bench: Path, tmp_path: Path) -> None:
    nested = tmp_path / "new" / "dir" / "r.json"
    done = subprocess.run(
        [sys.executable, "-m", "contam.cli.main", "scan", str(bench), "--out", str(nested), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert nested.is_file() and not list(nested.parent.glob(".r.json.*"))
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    for bad in ("/proc/x/r.json", str(tmp_path / "afile" / "r.json")):
        done = subprocess.run(
            [sys.executable, "-m", "contam.cli.main", "scan", str(bench), "--out", bad, "--quiet"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and f"error: {bad}: field '--out'" in done.stderr


def test_import_contam_stays_free_of_index_backends() -> None:
    code = "import contam, contam.report, sys; print(','.join(sorted(set(sys.modules))))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        .stdout.strip()
        .split(",")
    )
    assert "corpora_index.report" in loaded
    assert not {"datasketch", "xxhash", "numba", "pyarrow", "zstandard", "corpora_index.scan"} & loaded


def test_the_frequency_cap_warning_is_in_the_docs_and_help(run) -> None:
    import corpora_index

    assert "Corpus overlap" in (corpora_index.__doc__ or "")
    assert "costs recall" in (corpora_index.__doc__ or "")
    for args in (["overlap", "--help"], ["index", "query", "--help"]):
        result = run(*args)
        assert result.exit_code == 0 and "costs recall" in " ".join(result.output.split())
