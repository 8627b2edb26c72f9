"""Figures for the HTML report: pure functions from scores to one inline SVG string.

matplotlib is imported inside each function (it is slow to import and `import contam` stays light).
Figures are built on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot: no
global figure registry, no backend switch in the caller's process, safe in a server thread.
The output is deterministic (the same scores give the same bytes): `svg.hashsalt` is fixed per
figure, the date is left out of the metadata, and text stays text (`svg.fonttype: none`), so the
page is searchable and small. Element ids get a per-figure prefix, because several SVGs inlined in
one page would otherwise share ids such as `figure_1` and the clip paths that refer to them.
"""

from __future__ import annotations

import html
import io
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SUSPECT_COLOR = "#c0392b"
REFERENCE_COLOR = "#2c6fbb"
MAX_BINS = 40
MAX_RUG = 300  # a rug of more items is a solid bar that costs one SVG element per item
_ID = re.compile(r'\bid="([^"]+)"')
_XML_PROLOGUE = re.compile(r"^\s*<\?xml[^>]*\?>\s*(<!DOCTYPE[^>]*>\s*)?", re.DOTALL)
_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
# rcParams are process-global: two reports rendered at once (service threads) must not swap salts
_RC_LOCK = threading.Lock()
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)


def roc_points(positive: Sequence[float], negative: Sequence[float]) -> tuple[list[float], list[float]]:
    """(FPR, TPR) of the rule "score >= t" at every distinct score t, from (0, 0) to (1, 1).

    Positives are the suspect partition's items, negatives the reference's; ties move both rates at
    once (a diagonal step), as a threshold cannot split them.
    """
    if not positive or not negative:
        raise ValueError("an ROC curve needs scores on both sides")
    pos, neg = sorted(positive, reverse=True), sorted(negative, reverse=True)
    fpr, tpr = [0.0], [0.0]
    i = j = 0
    while i < len(pos) or j < len(neg):
        # the next threshold: the largest score not yet passed, on either side
        t = max(pos[i] if i < len(pos) else float("-inf"), neg[j] if j < len(neg) else float("-inf"))
        while i < len(pos) and pos[i] >= t:
            i += 1
        while j < len(neg) and neg[j] >= t:
            j += 1
        fpr.append(j / len(neg))
        tpr.append(i / len(pos))
    return fpr, tpr


def distribution_svg(
    suspect: Sequence[float],
    reference: Sequence[float] = (),
    *,
    title: str,
    key: str,
    suspect_label: str = "suspect",
    reference_label: str = "reference",
    xlabel: str = "item score (higher = more likely seen)",
) -> str:
    """Overlaid step histograms (as densities, so unequal sizes compare) on shared bins, with a
    rug of the individual scores up to `MAX_RUG` items; the suspect partition alone when there is
    no reference."""
    import numpy as np

    if not suspect:
        raise ValueError("a score distribution needs at least one suspect score")
    values = np.asarray([*suspect, *reference], dtype=np.float64)
    edges = np.histogram_bin_edges(values, bins="auto")
    if edges.size - 1 > MAX_BINS:
        edges = np.histogram_bin_edges(values, bins=MAX_BINS)
    fig = _figure()
    ax = fig.add_subplot()
    groups = [(suspect, suspect_label, SUSPECT_COLOR)]
    if reference:
        groups.append((reference, reference_label, REFERENCE_COLOR))
    for scores, label, color in groups:
        common = {"bins": edges.tolist(), "density": True, "color": color}
        ax.hist(list(scores), histtype="stepfilled", alpha=0.2, linewidth=0, **common)
        ax.hist(list(scores), histtype="step", linewidth=1.5, label=f"{label} (n={len(scores)})", **common)
    # the rug: one tick per item in a band below zero, so a handful of items is still visible
    top = ax.get_ylim()[1]
    ax.set_ylim(-0.06 * top * len(groups) - 0.02 * top, top)
    for row, (scores, _, color) in enumerate(groups, start=1):
        if len(scores) <= MAX_RUG:
            ys = [-0.06 * top * row + 0.02 * top] * len(scores)
            ax.plot(list(scores), ys, "|", color=color, markersize=5, alpha=0.8)
    ax.axhline(0, color="#999999", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    summary = f"{len(suspect)} {suspect_label} scores" + (
        f" against {len(reference)} {reference_label} scores" if reference else ""
    )
    return _svg(fig, key=key, label=f"{title}: histogram of {summary}")


def roc_svg(
    suspect: Sequence[float],
    reference: Sequence[float],
    *,
    title: str,
    key: str,
    auroc: float | None = None,
) -> str:
    """The ROC curve of telling suspect items from reference items by score, with the chance line."""
    fpr, tpr = roc_points(suspect, reference)
    fig = _figure(size=(3.8, 3.6))
    ax = fig.add_subplot()
    curve = "score" + (f" (AUROC {auroc:.3f})" if auroc is not None else "")
    ax.plot(fpr, tpr, color=SUSPECT_COLOR, linewidth=1.8, label=curve)
    ax.plot([0, 1], [0, 1], linestyle="--", color="#888888", linewidth=1, label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false-positive rate (reference)")
    ax.set_ylabel("true-positive rate (suspect)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    label = f"{title}: ROC curve, {len(suspect)} suspect vs {len(reference)} reference scores"
    return _svg(fig, key=key, label=label)


def _figure(size: tuple[float, float] = (5.2, 3.4)) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    # fixed margins, not a layout engine: constrained layout measures every label and doubled the
    # cost of a figure; these fit the short titles and labels drawn here
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.17, top=0.9)
    FigureCanvasAgg(fig)
    return fig


def _svg(fig: Figure, *, key: str, label: str) -> str:
    """The figure as an SVG element ready to inline: no XML prologue, ids prefixed with `key`,
    `role="img"`, an `aria-label` and a `<title>` (what a screen reader and a tooltip show)."""
    import matplotlib

    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", key)
    buffer = io.StringIO()
    with _RC_LOCK, matplotlib.rc_context({"svg.hashsalt": f"contam:{prefix}", "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    # the RDF metadata block says only "made by matplotlib", with links to vocabularies: dropped
    text = _METADATA.sub("", _XML_PROLOGUE.sub("", buffer.getvalue()), count=1)
    ids = set(_ID.findall(text))
    text = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    # references to those ids: url(#x) in styles and attributes, and xlink:href="#x"
    text = re.sub(
        r"(url\(#|href=\"#)([^)\"]+)",
        lambda m: f"{m.group(1)}{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(0),
        text,
    )
    escaped = html.escape(label, quote=True)
    opening = _SVG_OPEN.search(text)
    if opening is None:  # matplotlib always writes one; a change there must not pass silently
        raise RuntimeError("matplotlib wrote no <svg> element")
    tag = opening.group(0)[:-1].rstrip("/")
    head = f'{tag} role="img" aria-label="{escaped}"><title>{escaped}</title>'
    return text[: opening.start()] + head + text[opening.end() :]
