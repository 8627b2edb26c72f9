"""The Markdown report over a real mock scan and a hand-built report with every verdict value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contam.report import ScanReport
from contam.reports import render_markdown, select_excerpts
from contam.verdicts.types import Verdict
from corpora_index.report import ItemOverlap, OverlapReport
from corpora_index.settings import IndexSettings
from tests.fixtures.reports import hand_report, scanned_report


def _cells(line: str) -> list[str]:
    """A GFM table row's cells: split at pipes that are not escaped."""
    assert line.startswith("| ") and line.endswith(" |"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def _table_after(md: str, heading: str) -> list[list[str]]:
    lines = md.splitlines()
    start = lines.index(heading)
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    rows = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    return rows


@pytest.fixture(scope="module")
def hand_md() -> str:
    return render_markdown(hand_report())


def test_verdict_table_comes_first_with_one_row_per_partition(hand_md: str) -> None:
    report = hand_report()
    assert report.verdicts is not None
    first_table = next(line for line in hand_md.splitlines() if line.startswith("|"))
    assert _cells(first_table) == ["partition", "verdict", "combined p", "adjusted p", "rule"]
    header, rule, *rows = _table_after(hand_md, "## Verdicts")
    assert all(cell == "---" for cell in rule)
    assert [r[0] for r in rows] == [v.partition for v in report.verdicts.partitions]
    assert [r[1].strip("*") for r in rows] == [v.value for v in Verdict]
    assert all(len(r) == len(header) for r in rows), "an unescaped pipe would add a cell"
    contaminated, _, _, inconclusive = rows
    assert contaminated[2:4] == ["5.0e-09", "1.0e-08"] and inconclusive[2:4] == ["–", "–"]
    assert contaminated[4].startswith("adjusted p 1.0e-08 <= alpha 0.05")
    assert "Policy: alpha 0.05" in hand_md


def test_each_partition_lists_its_evidence_in_the_verdicts_order_then_the_rest(hand_md: str) -> None:
    section = hand_md.split("## Partition `seen_x16`: contaminated")[1].split("## Partition ")[0]
    header, _, *rows = _table_after(section, "### Evidence, strongest first")
    assert header[:3] == ["#", "source", "name"] and [r[2] for r in rows] == ["loss", "min_k"]
    assert [r[header.index("used")] for r in rows] == ["yes", "yes"]
    assert "- `min_k_pp`: model 'mock' lacks: distribution" in section
    assert "AUROC 0.520 [0.400, 0.630] on 40 vs 40 items, bound 0.6" in section
    assert "| dirty | 9 (22.5%) |" in section and "| longest span | 57 words |" in section
    # the set-aside evidence of the blind-baseline partition says so
    unfair = hand_md.split("## Partition `other_kind`: inconclusive")[1]
    _, _, row = _table_after(unfair, "### Evidence, strongest first")
    assert row[8] == "set aside" and "tells the partition from its reference without any model" in unfair


def test_provenance_sections(hand_md: str) -> None:
    for heading in ("## Probes", "### Parameters", "## Model", "## Benchmark", "## Run"):
        assert heading in hand_md.splitlines(), heading
    assert "| sha256 | " + "ab" * 32 + " |" in hand_md
    assert "| fingerprint | " + "f" * 16 + " |" in hand_md and "| setting dtype | x |" in hand_md
    assert "distribution=none" in hand_md
    assert "## Corpus index" not in hand_md  # no overlap attached


def test_hostile_text_is_escaped_outside_code_fences(hand_md: str) -> None:
    # code fences and code spans show text literally (CommonMark): hostile text is inert there
    prose = re.sub(r"^(`{3,})text\n.*?\n\1$", "", hand_md, flags=re.MULTILINE | re.DOTALL)
    assert prose != hand_md, "the item text is fenced"
    spans = re.findall(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", prose)
    assert ("``", ' bench <script>alert("x")</script> & <img src="https://evil.example/x.png"> | `tick` ') in spans
    prose = re.sub(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", "", prose)
    assert "<script" not in prose and "<img" not in prose and "</" not in prose
    assert "&lt;script>alert" in prose  # in the title, the rule, the notes and the parameters
    assert "p 1.0e-08 <= alpha 0.05" in prose  # a comparison is not a tag: left as written


def test_item_text_is_kept_verbatim_inside_its_fence(hand_md: str) -> None:
    block = re.search(r"^(`{3,})text\n(.*?)\n\1$", hand_md, re.MULTILINE | re.DOTALL)
    assert block is not None
    assert block.group(2).startswith('item text <script>alert("x")</script>')  # a fence shows text as is
    assert "»the memorised passage«" in hand_md


def test_a_report_before_schema_1_3_says_it_has_no_verdicts() -> None:
    old = hand_report().model_copy(update={"schema_version": "1.2", "verdicts": None, "excerpts": ()})
    md = render_markdown(old)
    assert "no verdicts: report schema < 1.3 (this one is 1.2)" in md
    assert "## Partition" not in md and "## Probes" in md
    current = hand_report().model_copy(update={"verdicts": None})
    assert "no verdicts: the scan was run without a verdict policy" in render_markdown(current)


def test_real_scan_renders_both_probes_and_the_index_fingerprint(tmp_path: Path) -> None:
    report, bench = scanned_report(tmp_path)
    overlap = OverlapReport(
        fingerprint=IndexSettings(n=8),
        items=tuple(
            ItemOverlap(id=i.id, partition=i.partition, matched=False, ngram_fraction=0.0, token_coverage=0.0,
                        longest_span=0)
            for i in bench.items()
        ),
    )
    report = report.model_copy(update={"overlap": overlap})
    report = report.model_copy(update={"excerpts": select_excerpts(report, bench, k=2)})
    md = render_markdown(ScanReport.model_validate_json(report.model_dump_json()))
    header, _, *rows = _table_after(md, "## Probes")
    assert [(r[0], r[1]) for r in rows] == [("seen", "loss"), ("seen", "min_k")]
    for row, result in zip(rows, report.probes, strict=True):
        assert result.statistic is not None and result.statistic.p_value is not None
        assert row[header.index("p")] == f"{result.statistic.p_value:.1e}"  # the mock's seen items: p < 1e-3
        assert row[header.index("vs")] == "unseen"
    assert "- `min_k`: `{\"add_bos\": null, \"k\": 0.2}`" in md
    assert '"n": 8' in md.split("## Corpus index")[1]
    assert md.count("#### `s") == 2  # two excerpts
