"""The report's figures: pure functions from scores to an inline SVG string."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from contam.reports.plots import distribution_svg, roc_points, roc_svg

SVG = "{http://www.w3.org/2000/svg}"
SUSPECT = [0.1 * i for i in range(30)]
REFERENCE = [0.1 * i - 0.8 for i in range(25)]


def _ids(svg: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', svg))


def test_roc_points_step_through_every_threshold_and_move_diagonally_on_ties() -> None:
    fpr, tpr = roc_points([3.0, 2.0, 1.0], [2.0, 0.0])
    # t=3: one positive; t=2: a positive and a negative tie; t=1: the last positive; t=0: the last negative
    assert list(zip(fpr, tpr, strict=True)) == [(0, 0), (0, 1 / 3), (0.5, 2 / 3), (0.5, 1), (1, 1)]
    assert roc_points([5.0], [1.0]) == ([0.0, 0.0, 1.0], [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="both sides"):
        roc_points([1.0], [])


@pytest.mark.parametrize(
    "svg",
    [
        pytest.param(lambda: distribution_svg(SUSPECT, REFERENCE, title="loss <on> seen", key="k1"), id="hist"),
        pytest.param(lambda: distribution_svg(SUSPECT, title="loss <on> seen", key="k1"), id="hist-no-ref"),
        pytest.param(lambda: distribution_svg([2.0] * 5, [2.0] * 3, title="loss <on> seen", key="k1"), id="constant"),
        pytest.param(lambda: roc_svg(SUSPECT, REFERENCE, title="loss <on> seen", key="k1", auroc=0.8), id="roc"),
    ],
)
def test_svg_parses_is_labelled_and_deterministic(svg) -> None:
    text = svg()
    assert not text.lstrip().startswith("<?xml"), "inline SVG carries no XML prologue"
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("aria-label", "").startswith("loss <on> seen: ")  # unescaped by the parser: it was escaped
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == root.get("aria-label")
    assert root.find(f"{SVG}metadata") is None
    assert svg() == text, "the same scores must give the same bytes"
    # every id carries the figure's key, and every internal reference points at one of them
    ids = _ids(text)
    assert ids and all(i.startswith("k1-") for i in ids)
    refs = set(re.findall(r"url\(#([^)]+)\)", text)) | set(re.findall(r'href="#([^"]+)"', text))
    assert refs and refs <= ids


def test_figures_on_one_page_share_no_id() -> None:
    a = distribution_svg(SUSPECT, REFERENCE, title="t", key="fig1")
    b = distribution_svg(SUSPECT, REFERENCE, title="t", key="fig2")
    assert _ids(a).isdisjoint(_ids(b))
    assert a.replace("fig1-", "") != a and a.replace("fig1-", "fig2-") != a


def test_histogram_draws_both_groups_and_the_legend_counts_items() -> None:
    text = distribution_svg(SUSPECT, REFERENCE, title="t", key="k", suspect_label="seen", reference_label="unseen")
    assert "seen (n=30)" in text and "unseen (n=25)" in text  # text stays text (svg.fonttype none)
    alone = distribution_svg(SUSPECT, title="t", key="k", suspect_label="seen")
    assert "seen (n=30)" in alone and "(n=25)" not in alone
    with pytest.raises(ValueError, match="at least one suspect score"):
        distribution_svg([], REFERENCE, title="t", key="k")


def test_roc_legend_shows_the_auroc_given() -> None:
    assert "AUROC 0.812" in roc_svg(SUSPECT, REFERENCE, title="t", key="k", auroc=0.8123)
    assert "AUROC" not in roc_svg(SUSPECT, REFERENCE, title="t", key="k")
