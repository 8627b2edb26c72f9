"""The Markdown report: the verdict table first, then each partition's evidence, then provenance.

Every text taken from the report (rules, notes, item texts, ids) is data, not Markdown: prose and
table cells escape what would open an HTML tag or entity (a rendered `.md` must not run an item's
`<script>`) and table cells the pipe; ids and paths go in code spans and item texts in code fences,
each fenced by more backticks than it contains, where CommonMark shows text literally.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC

from contam.report import ItemExcerpt, ScanReport
from contam.reports import _format as f
from contam.verdicts.types import PartitionVerdict

_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")


def render_markdown(report: ScanReport) -> str:
    out: list[str] = [f"# Contamination report: {_text(report.benchmark.name)}", ""]
    created = f"{report.run.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    out += [
        f"Model {_code(report.model.spec)} on benchmark {_code(report.benchmark.name)}"
        + (f" against reference {_code(report.reference)}" if report.reference else "")
        + f", {created}, contam {_text(report.run.contam_version)}.",
        "",
        "## Verdicts",
        "",
    ]
    if report.verdicts is None:
        out += [f.no_verdicts(report), ""]
    else:
        out += _table(f.VERDICT_HEADER, [_bold_verdict(f.verdict_row(v)) for v in report.verdicts.partitions])
        out += ["", f"Policy: {_text(f.policy_line(report.verdicts.policy))}.", ""]
        for verdict in report.verdicts.partitions:
            out += _partition(verdict, [e for e in report.excerpts if e.partition == verdict.partition])
    if report.verdicts is None and report.excerpts:
        out += ["## Most suspicious items", ""]
        for excerpt in report.excerpts:
            out += _excerpt(excerpt)
    out += ["## Probes", ""]
    out += _table(f.PROBE_HEADER, [f.probe_row(r) for r in report.probes])
    out += ["", "### Parameters", ""]
    out += [f"- {_code(probe)}: {_code(params)}" for probe, params in f.probe_params(report)]
    out += [""]
    out += _facts("Model", f.model_facts(report))
    out += _facts("Benchmark", f.benchmark_facts(report))
    if report.overlap is not None:
        out += _facts("Corpus index", f.index_facts(report))
    out += _facts("Run", f.run_facts(report))
    return "\n".join(out).rstrip() + "\n"


def _partition(v: PartitionVerdict, excerpts: Sequence[ItemExcerpt]) -> list[str]:
    out = [f"## Partition {_code(v.partition)}: {v.verdict.value}", ""]
    out += [f"Rule {_code(v.rule_id)}: {_text(v.rule)}", ""]
    if v.evidence:
        out += ["### Evidence, strongest first", ""]
        rows = [[str(i), *f.evidence_row(ev)] for i, ev in enumerate(v.evidence, start=1)]
        out += _table(["#", *f.EVIDENCE_HEADER], rows)
        out += [""]
    if v.skipped:
        out += ["### Skipped probes", ""]
        out += [f"- {_code(s.name)}: {_text(s.reason)}" for s in v.skipped]
        out += [""]
    if v.baseline is not None:
        out += ["### Blind baseline", "", _text(f.baseline_line(v.baseline)), ""]
    if v.corpus is not None:
        out += ["### Corpus overlap", ""]
        out += _table(["count", "value"], [[k, val] for k, val in f.corpus_facts(v.corpus)])
        out += [""]
    if excerpts:
        out += ["### Most suspicious items", ""]
        for excerpt in excerpts:
            out += _excerpt(excerpt)
    return out


def _excerpt(e: ItemExcerpt) -> list[str]:
    scores = f.scores(e.scores)
    why = _text(e.why) + (f"; scores: {scores}" if scores else "")
    out = [f"#### {_code(e.id)} ({_text(e.partition)})", "", why]
    out += ["", *_fence(e.text + (" …" if e.truncated else ""))]
    for s in e.snippets:
        out += [
            "",
            f"Corpus match in {_code(s.document)}, characters {s.start}–{s.end} (the match is between »«):",
            "",
            *_fence(f"{s.text[: s.span_start]}»{s.text[s.span_start : s.span_end]}«{s.text[s.span_end :]}"),
        ]
    return [*out, ""]


def _facts(title: str, facts: Iterable[tuple[str, str]]) -> list[str]:
    return [f"## {title}", "", *_table(["field", "value"], [[k, v] for k, v in facts]), ""]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [_row([_cell(h) for h in header]), _row(["---"] * len(header))]
    return lines + [_row([_cell(c) for c in row]) for row in rows]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _bold_verdict(row: list[str]) -> list[str]:
    row[1] = f"**{row[1]}**"
    return row


def _cell(text: str) -> str:
    # Markdown bold markers of our own survive; data never contains a raw newline or pipe afterwards
    return _text(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _text(text: str) -> str:
    """Only what Markdown would read as HTML is escaped (a tag opening, an entity), so a rule such
    as "p <= alpha" still reads as written in the raw file."""
    return _TAG.sub("&lt;", _ENTITY.sub("&amp;", text))


def _code(text: str) -> str:
    """An inline code span that holds any text: fenced by more backticks than it contains."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace(chr(10), ' ')}{pad}{fence}"


def _fence(text: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return [fence + "text", text, fence]
