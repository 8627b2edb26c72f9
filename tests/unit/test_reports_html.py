"""The standalone HTML report: structure, offline-ness, escaping and its inline SVG figures."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from contam.reports import render_html, select_excerpts
from contam.verdicts.types import Verdict
from corpora_index.report import ItemOverlap, OverlapReport
from corpora_index.settings import IndexSettings
from tests.fixtures.reports import HOSTILE, SEEN, hand_report, scanned_report


class _Page(HTMLParser):
    """Start tags with their attributes, the verdict table's rows and the text inside <mark>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.verdict_rows: list[str | None] = []
        self.marks: list[str] = []
        self._in_verdicts = self._in_mark = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table" and a.get("id") == "verdicts":
            self._in_verdicts = True
        elif tag == "tr" and self._in_verdicts and self.tags[-2][0] != "thead":
            self.verdict_rows.append(a.get("class"))
        elif tag == "mark":
            self._in_mark = True
            self.marks.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_verdicts = False
        if tag == "mark":
            self._in_mark = False

    def handle_data(self, data: str) -> None:
        if self._in_mark:
            self.marks[-1] += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def _svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", page, re.DOTALL)]


def _external_references(page: str) -> list[str]:
    """Anything a browser would fetch: URL-valued attributes, CSS url() and @import, that leave the page."""
    found = []
    for tag, attrs in _parse(page).tags:
        for name, value in attrs.items():
            fetched = name in {"src", "href", "xlink:href", "action", "poster", "data", "srcset"}
            if fetched and value and not value.startswith("#"):
                found.append(f"<{tag} {name}={value}>")
    found += re.findall(r"url\((?!#)[^)]*\)", page)
    found += re.findall(r"@import", page)
    return found


@pytest.fixture(scope="module")
def hand_page() -> str:
    return render_html(hand_report())


def test_verdict_table_has_one_classed_row_per_partition(hand_page: str) -> None:
    page = _parse(hand_page)
    assert [t for t, a in page.tags if a.get("id") == "verdicts"] == ["table"]
    assert page.verdict_rows == [f"verdict-{v.value}" for v in Verdict]
    assert hand_page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in hand_page


def test_page_is_offline_and_needs_no_script(hand_page: str) -> None:
    assert _external_references('<a href="https://x.example/">') and _external_references("a{b:url(x.png)}")
    assert _external_references(hand_page) == []
    tags = {t for t, _ in _parse(hand_page).tags}
    assert "script" not in tags and "link" not in tags and "iframe" not in tags and "img" not in tags
    assert not any(name.startswith("on") for _, a in _parse(hand_page).tags for name in a)


def test_hostile_text_is_escaped_everywhere(hand_page: str) -> None:
    assert HOSTILE not in hand_page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in hand_page
    # it appears as text in the title, rules, item, document id, parameters and notes
    assert hand_page.count("&lt;script&gt;") >= 6


def test_the_corpus_span_is_highlighted(hand_page: str) -> None:
    assert _parse(hand_page).marks == ["the memorised passage"]
    assert "before the match <mark>the memorised passage</mark> after the match" in hand_page


def test_one_histogram_and_one_roc_per_probe_with_reference_scores(hand_page: str) -> None:
    svgs = _svgs(hand_page)
    assert len(svgs) == 8  # loss on four partitions, each with reference scores: histogram + ROC
    labels = [s.get("aria-label", "") for s in svgs]
    assert sum("histogram of 40 seen_x16 scores against 40 unseen_ref scores" in a for a in labels) == 1
    assert sum(a.startswith("ROC: loss on seen_x16") for a in labels) == 1
    ids = [i for s in svgs for e in s.iter() if (i := e.get("id"))]
    assert len(ids) == len(set(ids)), "figures inlined in one page must not share ids"


def test_sections_and_provenance(hand_page: str) -> None:
    ids = {a.get("id") for _, a in _parse(hand_page).tags}
    assert {"verdicts-section", "probes", "model", "benchmark", "run", "partition-seen_x16"} <= ids
    assert "index" not in ids  # no overlap attached
    assert "ab" * 32 in hand_page and "f" * 16 in hand_page
    assert '<tr class="set-aside">' in hand_page  # the evidence the blind baseline set aside
    assert "model &#x27;mock&#x27; lacks: distribution" in hand_page


def test_old_report_renders_without_verdicts() -> None:
    old = hand_report(hostile=False).model_copy(update={"schema_version": "1.2", "verdicts": None})
    page = render_html(old)
    assert 'id="verdicts"' not in page and "no verdicts: report schema &lt; 1.3 (this one is 1.2)" in page
    assert len(_svgs(page)) == 8  # the scores are still plotted


def test_real_scan_page_plots_both_probes_and_is_deterministic(tmp_path: Path) -> None:
    report, bench = scanned_report(tmp_path)
    report = report.model_copy(update={"excerpts": select_excerpts(report, bench, k=3)})
    page = render_html(report)
    assert render_html(report) == page
    svgs = _svgs(page)
    labels = [s.get("aria-label", "") for s in svgs]
    n = len(SEEN)  # and as many unseen
    assert labels == [
        f"loss on seen: histogram of {n} seen scores against {n} unseen scores",
        f"ROC: loss on seen: ROC curve, {n} suspect vs {n} reference scores",
        f"min_k on seen: histogram of {n} seen scores against {n} unseen scores",
        f"ROC: min_k on seen: ROC curve, {n} suspect vs {n} reference scores",
    ]
    assert "AUROC 1.000" in page  # the mock memorised the seen partition: perfect separation
    assert page.count('<article class="excerpt">') == 3
    assert _external_references(page) == []
    assert 'id="index"' not in page
    overlap = OverlapReport(
        fingerprint=IndexSettings(n=8),
        items=tuple(ItemOverlap(id=i.id, partition=i.partition, matched=False, ngram_fraction=0.0,
                                token_coverage=0.0, longest_span=0) for i in bench.items()),
    )
    with_index = render_html(report.model_copy(update={"overlap": overlap}))
    index = with_index.split('<section id="index">')[1].split("</section>")[0]
    assert "<th>fingerprint</th>" in index and "&quot;n&quot;: 8" in index
