"""The HTML report of a real scan (mock model, verdicts decided), rendered by real headless Chromium:
the screenshot is not blank and shows the verdict badges and the plots in colour, and the DOM
Chromium built holds the verdict table with its rows and the inline SVG figures."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from contam.reports import select_excerpts, write_reports
from contam.reports.plots import REFERENCE_COLOR, SUSPECT_COLOR
from tests.fixtures.chromium import Chromium
from tests.fixtures.reports import hand_report, scanned_report

pytestmark = pytest.mark.integration

BADGE = {"contaminated": "#b3261e", "inconclusive": "#5a5f8a"}  # the page's CSS colours


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.verdict_rows: list[str] = []
        self.svgs = 0
        self.svg_titles = 0
        self._in_verdicts = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._in_verdicts = a.get("id") == "verdicts"
        elif tag == "tr" and self._in_verdicts and (a.get("class") or "").startswith("verdict-"):
            self.verdict_rows.append(a.get("class") or "")
        elif tag == "svg":
            self.svgs += 1
        elif tag == "title" and self.svgs:
            self.svg_titles += 1


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))


def _pixels(png: Path) -> tuple[tuple[int, int], dict[tuple[int, int, int], int]]:
    from PIL import Image  # pillow comes with matplotlib

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 24) or []
        return rgb.size, {colour: count for count, colour in colours}


def _near(counts: dict[tuple[int, int, int], int], target: str, tolerance: int = 12) -> int:
    t = _rgb(target)
    return sum(n for c, n in counts.items() if all(abs(a - b) <= tolerance for a, b in zip(c, t, strict=True)))


def test_scan_report_renders_in_chromium(tmp_path: Path, chromium: Chromium) -> None:
    report, bench = scanned_report(tmp_path)
    assert report.verdicts is not None
    report = report.model_copy(update={"excerpts": select_excerpts(report, bench)})
    paths = write_reports(report, tmp_path / "out" / "report.json")

    png = chromium.screenshot(paths["html"], tmp_path / "shot.png")
    size, counts = _pixels(png)
    assert size == (1200, 900)
    assert len(counts) > 50, "a blank or unstyled page has a handful of colours"
    # the mock memorised `seen` and the reference is of the same kind: the badge is on screen, in red
    assert [v.verdict.value for v in report.verdicts.partitions] == ["contaminated"]
    assert _near(counts, BADGE["contaminated"]) > 200

    dom = _Dom()
    dom.feed(chromium.dump_dom(paths["html"]))
    assert dom.verdict_rows == [f"verdict-{v.verdict.value}" for v in report.verdicts.partitions]
    assert dom.svgs == 4 and dom.svg_titles == 4  # loss and min_k: a histogram and an ROC curve each


def test_every_verdict_and_the_plots_are_drawn(tmp_path: Path, chromium: Chromium) -> None:
    """The hand-built report has all four verdicts; a tall window shows the first figures too."""
    page = write_reports(hand_report(), tmp_path / "hand.json")["html"]
    _, counts = _pixels(chromium.screenshot(page, tmp_path / "tall.png", height=2600))
    for colour in BADGE.values():
        assert _near(counts, colour) > 200, colour
    # the histogram outlines and the ROC curve, drawn from the inline SVG
    assert _near(counts, SUSPECT_COLOR, 20) > 300 and _near(counts, REFERENCE_COLOR, 20) > 300
    dom = _Dom()
    dom.feed(chromium.dump_dom(page))
    assert dom.verdict_rows == [
        "verdict-contaminated",
        "verdict-suspicious",
        "verdict-no_evidence",
        "verdict-inconclusive",
    ]
    assert dom.svgs == 8
