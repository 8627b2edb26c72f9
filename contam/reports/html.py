"""The HTML report: one standalone page that works offline and without JavaScript.

Inline CSS, inline SVG figures (`contam.reports.plots`), no external URL of any kind. Every text
from the report goes through `html.escape`: item texts are benchmark data and may hold markup.
The verdict table is `<table id="verdicts">` with one `<tr class="verdict-<value>">` per
partition, so a browser test (and a reader's own script) can find it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC
from html import escape

from contam.report import CorpusSnippet, ItemExcerpt, ScanReport
from contam.reports import _format as f
from contam.reports import plots
from contam.results import ProbeResult
from contam.verdicts.types import PartitionVerdict

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:0;
background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:1.2rem 1.5rem 3rem}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}h4{margin:.8rem 0 .2rem;font-size:.95rem}
table{border-collapse:collapse;margin:.4rem 0;background:#fff;font-size:.88rem}
th,td{border:1px solid #d5d5d5;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #ddd;padding:.5rem;
max-height:22rem;overflow:auto}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:.6rem;font-weight:600;color:#fff;
background:#777}
.verdict-contaminated .badge,.badge.verdict-contaminated{background:#b3261e}
.verdict-suspicious .badge,.badge.verdict-suspicious{background:#b86e00}
.verdict-no_evidence .badge,.badge.verdict-no_evidence{background:#4d6b53}
.verdict-inconclusive .badge,.badge.verdict-inconclusive{background:#5a5f8a}
tr.set-aside td{color:#888}.muted{color:#666}.lede{color:#444}
.figures{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:.3rem}
figure svg{display:block;max-width:100%;height:auto}figcaption{font-size:.8rem;color:#555}
mark{background:#ffe066;padding:0 .1rem}
article.excerpt{border-left:3px solid #ccc;padding-left:.8rem;margin:.8rem 0}
"""


def render_html(report: ScanReport) -> str:
    title = f"Contamination report: {report.benchmark.name}"
    body = [
        f"<header><h1>{escape(title)}</h1>",
        f'<p class="lede">{_lede(report)}</p></header>',
        _verdicts(report),
    ]
    figure_ids = itertools.count(1)  # unique figure keys across the page (SVG ids must not clash)
    for partition in f.partitions_in_order(report):
        verdict = report.verdicts.of(partition) if report.verdicts else None
        results = [r for r in report.probes if r.partition == partition]
        excerpts = [e for e in report.excerpts if e.partition == partition]
        body.append(_partition(partition, verdict, results, excerpts, report, figure_ids))
    body.append(_probes(report))
    body.append(_facts_section("model", "Model", f.model_facts(report)))
    body.append(_facts_section("benchmark", "Benchmark", f.benchmark_facts(report)))
    if report.overlap is not None:
        body.append(_facts_section("index", "Corpus index", f.index_facts(report)))
    body.append(_facts_section("run", "Run", f.run_facts(report)))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )


def _lede(report: ScanReport) -> str:
    text = f"Model <code>{escape(report.model.spec)}</code> on benchmark "
    text += f"<code>{escape(report.benchmark.name)}</code>"
    if report.reference:
        text += f" against reference <code>{escape(report.reference)}</code>"
    created = f"{report.run.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return text + f", {escape(created)}, contam {escape(report.run.contam_version)}."


def _verdicts(report: ScanReport) -> str:
    out = ['<section id="verdicts-section"><h2>Verdicts</h2>']
    if report.verdicts is None:
        out.append(f'<p class="muted" id="no-verdicts">{escape(f.no_verdicts(report))}</p>')
    else:
        out.append('<table id="verdicts"><thead><tr>')
        out += [f"<th>{escape(h)}</th>" for h in f.VERDICT_HEADER]
        out.append("</tr></thead><tbody>")
        for v in report.verdicts.partitions:
            partition, verdict, combined, adjusted, rule = f.verdict_row(v)
            out.append(
                f'<tr class="verdict-{escape(verdict)}">'
                f'<td><a href="#{_anchor(partition)}">{escape(partition)}</a></td>'
                f'<td><span class="badge">{escape(verdict)}</span></td>'
                f'<td class="num">{escape(combined)}</td><td class="num">{escape(adjusted)}</td>'
                f"<td>{escape(rule)}</td></tr>"
            )
        out.append("</tbody></table>")
        out.append(f'<p class="muted">Policy: {escape(f.policy_line(report.verdicts.policy))}.</p>')
    out.append("</section>")
    return "\n".join(out)


def _partition(
    partition: str,
    v: PartitionVerdict | None,
    results: Sequence[ProbeResult],
    excerpts: Sequence[ItemExcerpt],
    report: ScanReport,
    figure_ids: Iterator[int],
) -> str:
    head = f"Partition <code>{escape(partition)}</code>"
    if v is not None:
        head += f': <span class="badge verdict-{escape(v.verdict.value)}">{escape(v.verdict.value)}</span>'
    out = [f'<section class="partition" id="{_anchor(partition)}"><h2>{head}</h2>']
    if v is not None:
        out.append(f'<p class="rule">Rule <code>{escape(v.rule_id)}</code>: {escape(v.rule)}</p>')
        if v.evidence:
            out.append("<h3>Evidence, strongest first</h3>")
            rows = []
            for i, ev in enumerate(v.evidence, start=1):
                cells = [str(i), *f.evidence_row(ev)]
                rows.append(("" if ev.used else "set-aside", cells))
            out.append(_table(["#", *f.EVIDENCE_HEADER], rows, css="evidence", nowrap={4, 7}))
        if v.skipped:
            out.append("<h3>Skipped probes</h3><ul>")
            out += [f"<li><code>{escape(s.name)}</code>: {escape(s.reason)}</li>" for s in v.skipped]
            out.append("</ul>")
        if v.baseline is not None:
            out.append(f"<h3>Blind baseline</h3><p>{escape(f.baseline_line(v.baseline))}</p>")
        if v.corpus is not None:
            out.append("<h3>Corpus overlap</h3>" + _facts_table(f.corpus_facts(v.corpus)))
    figures = _figures(partition, results, report, figure_ids)
    if figures:
        out.append("<h3>Scores, suspect against reference</h3>")
        out.append('<div class="figures">' + "".join(figures) + "</div>")
    if excerpts:
        out.append("<h3>Most suspicious items</h3>")
        out += [_excerpt(e) for e in excerpts]
    out.append("</section>")
    return "\n".join(out)


def _figures(
    partition: str, results: Sequence[ProbeResult], report: ScanReport, ids: Iterator[int]
) -> list[str]:
    """Per probe that scored the partition: its score histogram (against the reference's scores,
    when the probe had a reference) and, with a reference, its ROC curve."""
    out = []
    for r in results:
        if not r.items:
            continue
        suspect = [s.score for s in r.items]
        reference = [s.score for s in r.reference_items]
        ref_name = (r.statistic.reference if r.statistic else None) or report.reference or "reference"
        title = f"{r.probe} on {partition}"
        svg = plots.distribution_svg(
            suspect,
            reference,
            title=title,
            key=f"fig{next(ids)}",
            suspect_label=partition,
            reference_label=ref_name,
        )
        caption = f"{r.probe}: {len(suspect)} item scores of {partition}" + (
            f" against {len(reference)} of {ref_name}" if reference else " (no reference scores)"
        )
        out.append(_figure(svg, caption))
        if reference:
            auroc = r.statistic.effect if r.statistic and r.statistic.effect_name == "auroc" else None
            roc = plots.roc_svg(suspect, reference, title=f"ROC: {title}", key=f"fig{next(ids)}", auroc=auroc)
            out.append(_figure(roc, f"{r.probe}: ROC of {partition} against {ref_name}"))
    return out


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _excerpt(e: ItemExcerpt) -> str:
    scores = f.scores(e.scores)
    out = [
        f'<article class="excerpt"><h4><code>{escape(e.id)}</code></h4>',
        f"<p>{escape(e.why)}" + (f"; scores: {escape(scores)}" if scores else "") + "</p>",
        f"<pre>{escape(e.text)}{' …' if e.truncated else ''}</pre>",
    ]
    for s in e.snippets:
        out.append(
            f'<p class="muted">Corpus match in <code>{escape(s.document)}</code>, '
            f"characters {s.start}–{s.end}:</p>{_snippet(s)}"
        )
    out.append("</article>")
    return "\n".join(out)


def _snippet(s: CorpusSnippet) -> str:
    before, span, after = s.text[: s.span_start], s.text[s.span_start : s.span_end], s.text[s.span_end :]
    return f'<pre class="corpus">{escape(before)}<mark>{escape(span)}</mark>{escape(after)}</pre>'


def _probes(report: ScanReport) -> str:
    rows = [("", f.probe_row(r)) for r in report.probes]
    params = [("", [probe, value]) for probe, value in f.probe_params(report)]
    return (
        '<section id="probes"><h2>Probes</h2>'
        + _table(f.PROBE_HEADER, rows, css="probes", nowrap={2, 5})
        + "<h3>Parameters</h3>"
        + _table(["probe", "parameters"], params, css="params")
        + "</section>"
    )


def _facts_section(anchor: str, title: str, facts: Iterable[tuple[str, str]]) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{_facts_table(facts)}</section>'


def _facts_table(facts: Iterable[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def _table(
    header: Sequence[str],
    rows: Iterable[tuple[str, Sequence[str]]],
    *,
    css: str,
    nowrap: frozenset[int] | set[int] = frozenset(),
) -> str:
    """`nowrap`: columns of numbers, kept on one line (a p-value cut at its exponent misreads)."""
    out = [f'<table class="{css}"><thead><tr>']
    out += [f"<th>{escape(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for row_class, cells in rows:
        attr = f' class="{row_class}"' if row_class else ""
        tds = "".join(
            f'<td class="num">{escape(c)}</td>' if i in nowrap else f"<td>{escape(c)}</td>"
            for i, c in enumerate(cells)
        )
        out.append(f"<tr{attr}>{tds}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _anchor(partition: str) -> str:
    return "partition-" + re.sub(r"[^A-Za-z0-9_-]", "-", partition)
