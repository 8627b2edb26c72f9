"""The checklist end to end on the scripted mock model: verdicts, exit codes, one Holm family over
every benchmark, the files it writes, and a re-run that makes no model call."""

from __future__ import annotations

import json
import random
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from contam.checklist import ChecklistResult, load_checklist, run_checklist
from contam.cli.main import cli
from contam.errors import InputError
from contam.verdicts import holm_adjust

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "green",
    "seven",
    "under",
    "bright",
    "paper",
    "window",
    "silver",
    "number",
    "table",
    "orange",
    "quiet",
    "garden",
    "yellow",
    "eleven",
    "music",
    "winter",
    "basket",
    "candle",
    "forest",
    "summer",
    "copper",
    "marble",
    "velvet",
    "harbor",
    "meadow",
]


def texts(rng: random.Random, n: int) -> list[str]:
    # One distribution for every partition, so the model-free baseline cannot tell them apart and
    # only what the model memorised separates them.
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(14, 22))) for _ in range(n)]


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_folder(tmp_path: Path) -> Path:
    """Two benchmarks. `one`: leaked (memorised), fresh, and a reference partition `held`.
    `two`: leaked2 (memorised) and fresh2, with a reference file of its own."""
    rng = random.Random(7)
    seen: list[str] = []
    rows = []
    for partition in ("leaked", "fresh", "held"):
        for i, text in enumerate(texts(rng, 30)):
            rows.append({"id": f"{partition}-{i}", "partition": partition, "text": text})
            if partition == "leaked":
                seen.append(text)
    jsonl(tmp_path / "one.jsonl", rows)
    rows = []
    for partition in ("leaked2", "fresh2"):
        for i, text in enumerate(texts(rng, 30)):
            rows.append({"id": f"{partition}-{i}", "partition": partition, "text": text})
            if partition == "leaked2":
                seen.append(text)
    jsonl(tmp_path / "two.jsonl", rows)
    jsonl(tmp_path / "heldout.jsonl", [{"id": f"h{i}", "text": t} for i, t in enumerate(texts(rng, 30))])
    (tmp_path / "seen.json").write_text(json.dumps(seen), encoding="utf-8")
    (tmp_path / "none.json").write_text("[]", encoding="utf-8")
    return tmp_path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path)


@pytest.fixture(scope="module")
def leaked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One CLI run of the checklist on a model that memorised `leaked` and `leaked2`, shared by the
    tests that read what it wrote (each full run renders two reports with their figures)."""
    folder = make_folder(tmp_path_factory.mktemp("leaked"))
    return folder, run_cli(folder, checklist_yaml(folder, "mock:seen=seen.json"))


def checklist_yaml(folder: Path, model: str, *, extra: str = "") -> Path:
    path = folder / "release.yaml"
    path.write_text(
        f"""\
model: "{model}"
benchmarks:
  - name: one.jsonl
    reference: held
{extra}  - name: two.jsonl
    reference: heldout.jsonl
probes: [loss, min_k]
alpha: 0.05
""",
        encoding="utf-8",
    )
    return path


def run_cli(folder: Path, config: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cli,
        [
            "checklist",
            str(config),
            "--out",
            str(folder / "out"),
            "--cache",
            str(folder / "calls.sqlite"),
            *args,
        ],
    )


def test_a_leak_fails_the_gate_and_every_partition_gets_a_line(leaked: tuple[Path, Any]) -> None:
    folder, result = leaked
    assert result.exit_code == 3, result.output
    assert "release gate failed: 2 partition(s) flagged" in result.output
    checklist = ChecklistResult.read(folder / "out" / "checklist.json")
    verdicts = {(line.benchmark, line.partition): line.verdict.value for line in checklist.lines}
    assert verdicts == {
        ("one", "leaked"): "contaminated",
        ("one", "fresh"): "no_evidence",
        ("two", "leaked2"): "contaminated",
        ("two", "fresh2"): "no_evidence",
    }
    leaked = next(line for line in checklist.lines if line.partition == "leaked")
    assert leaked.rule_id == "combined" and leaked.adjusted_p is not None and leaked.adjusted_p <= 0.05
    assert leaked.key_evidence is not None and "AUROC" in leaked.key_evidence
    assert leaked.report == "one/report.json"
    # the terminal table and the paths
    assert "contaminated" in result.output and str(folder / "out" / "checklist.html") in result.output
    # each benchmark's reports, with the same verdicts as the checklist
    for label in ("one", "two"):
        for ext in ("json", "md", "html"):
            assert (folder / "out" / label / f"report.{ext}").is_file()
    report = json.loads((folder / "out" / "one" / "report.json").read_text())
    assert {v["partition"]: v["verdict"] for v in report["verdicts"]["partitions"]} == {
        "leaked": "contaminated",
        "fresh": "no_evidence",
    }
    assert report["reference"] == "held"
    assert json.loads((folder / "out" / "two" / "report.json").read_text())["reference"].startswith("file:")


def test_fail_on_suspicious_fails_on_a_partly_copied_partition(folder: Path) -> None:
    """One item of `fresh` verbatim in the corpus (under the 10% share that decides alone) makes it
    suspicious: the default gate passes, `--fail-on suspicious` fails."""
    overlap = overlap_json(folder, dirty={("fresh", "fresh-3")})
    config = checklist_yaml(folder, "mock:seen=none.json", extra=f"    overlap: {overlap.name}\n")
    result = run_cli(folder, config)
    assert result.exit_code == 0, result.output
    lines = ChecklistResult.read(folder / "out" / "checklist.json").lines
    fresh = next(line for line in lines if line.partition == "fresh")
    assert fresh.verdict.value == "suspicious" and fresh.rule_id == "corpus_partial"
    assert {line.verdict.value for line in lines if line.partition != "fresh"} == {"no_evidence"}
    result = run_cli(folder, config, "--fail-on", "suspicious")
    assert result.exit_code == 3, result.output


def test_nothing_seen_passes(folder: Path) -> None:
    result = run_cli(
        folder, checklist_yaml(folder, "mock:seen=none.json"), "--fail-on", "suspicious", "--quiet"
    )
    assert result.exit_code == 0, result.output
    lines = ChecklistResult.read(folder / "out" / "checklist.json").lines
    assert [line.verdict.value for line in lines] == ["no_evidence"] * 4
    assert "benchmark" not in result.output  # --quiet: no table, the paths only


def test_one_family_over_all_benchmarks(leaked: tuple[Path, Any]) -> None:
    """Holm runs over every partition of the checklist, not per benchmark."""
    folder, _ = leaked
    result = ChecklistResult.read(folder / "out" / "checklist.json")
    combined = [line.combined_p for line in result.lines]
    assert all(p is not None for p in combined)
    expected = holm_adjust([p for p in combined if p is not None])
    assert [line.adjusted_p for line in result.lines] == pytest.approx(expected)
    assert "Holm over the 4 partitions" in result.family and "alpha = 0.05" in result.family
    assert all(line.family == result.family for line in result.lines)
    assert result.identity.backend == "mock" and result.alpha == 0.05
    assert result.flagged() and result.exit_code() == 3
    markdown = (folder / "out" / "checklist.md").read_text()
    assert "Holm over the 4 partitions" in markdown and "| one | leaked | **contaminated** |" in markdown


def test_a_rerun_resumes_from_the_cache_with_no_model_call(leaked: tuple[Path, Any]) -> None:
    folder, _ = leaked
    first = ChecklistResult.read(folder / "out" / "checklist.json")
    config = load_checklist(folder / "release.yaml")
    second = run_checklist(config, out_dir=folder / "b", cache_path=folder / "calls.sqlite")
    assert first.model_calls > 0
    assert second.model_calls == 0 and all(b.cache_hits > 0 for b in second.benchmarks)
    for run in second.benchmarks:
        report = json.loads((folder / "b" / run.report).read_text())
        assert report["run"]["model_calls"] == 0
    assert [line.model_dump() for line in second.lines] == [line.model_dump() for line in first.lines]


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.in_table = False
        self.rows: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id") == "checklist":
            self.in_table = True
        if tag == "tr" and self.in_table and a.get("class"):
            self.rows.append(a["class"] or "")
        for key in ("src", "href"):
            if (a.get(key) or "").startswith(("http:", "https:", "//")):
                self.external.append(a[key] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_table = False


def test_the_html_checklist_is_one_offline_page_with_rows_classed_by_verdict(
    leaked: tuple[Path, Any],
) -> None:
    folder, _ = leaked
    page = (folder / "out" / "checklist.html").read_text()
    parser = _Rows()
    parser.feed(page)
    assert parser.rows == ["verdict-contaminated", "verdict-no_evidence"] * 2
    assert parser.external == [] and "<script" not in page
    assert 'href="one/report.html"' in page


def test_input_problems_found_after_loading_point_at_the_line_before_any_model_call(folder: Path) -> None:
    calls = folder / "calls.jsonl"
    path = folder / "release.yaml"
    path.write_text(
        f"model: mock:seen=seen.json,calls={calls}\n"
        "benchmarks:\n"
        "  - name: one.jsonl\n"
        "    reference: held\n"
        "  - name: two.jsonl\n"
        "    reference: heldout.jsonl\n"
        "    partitions: [leaked2, fresh3]\n",
        encoding="utf-8",
    )
    config = load_checklist(path)
    with pytest.raises(InputError) as info:
        run_checklist(config, out_dir=folder / "out", cache_path=None)
    error = info.value
    assert (error.path, error.line, error.field) == (str(path), 7, "benchmarks.1.partitions.1")
    assert "no partition 'fresh3'" in error.message and "leaked2, fresh2" in error.message
    assert not calls.exists()  # the first benchmark was not scanned either
    # a reference that is neither a partition nor a file, through the CLI: exit 2
    path.write_text(path.read_text().replace("reference: held\n", "reference: kept\n"), encoding="utf-8")
    result = run_cli(folder, path)
    assert result.exit_code == 2, result.output
    assert f"{path}:4: field 'benchmarks.0.reference'" in result.output and "nor a file" in result.output


def overlap_json(folder: Path, *, dirty: set[tuple[str, str]]) -> Path:
    """An overlap.json of benchmark `one` (partitions leaked and fresh) in which `dirty` items are
    verbatim in a corpus document and every other item is clean."""
    from corpora_index.report import DocumentMatch, ItemOverlap, OverlapReport, Span
    from corpora_index.settings import IndexSettings

    items = []
    for line in (folder / "one.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["partition"] == "held":
            continue
        words = len(row["text"].split())
        hit = (row["partition"], row["id"]) in dirty
        items.append(
            ItemOverlap(
                id=row["id"],
                partition=row["partition"],
                matched=hit,
                ngram_fraction=1.0 if hit else 0.0,
                token_coverage=1.0 if hit else 0.0,
                longest_span=words if hit else 0,
                documents=(DocumentMatch(id="web.txt", spans=(Span(start=0, end=9, tokens=words),)),)
                if hit
                else (),
                documents_total=int(hit),
                tokens=words,
                ngrams=max(0, words - 12),
            )
        )
    report = OverlapReport(fingerprint=IndexSettings(), mode="stream", benchmark="one", items=tuple(items))
    path = folder / "overlap.json"
    report.write(path)
    return path
