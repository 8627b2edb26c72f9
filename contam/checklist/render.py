"""The checklist as files and as a terminal table: `checklist.json`, `.md` and a standalone `.html`.

Renderers are pure functions of the frozen `ChecklistResult`; `write_checklist` writes all three
atomically (a temporary sibling, then a rename), so a pipeline never reads a half-written file.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contam.checklist.result import ChecklistLine, ChecklistResult

_NOTE = (
    '`no_evidence` is not "clean": the probes found nothing at this alpha, which is absence of '
    "evidence, not evidence of absence. `inconclusive` means the test itself was not valid (for "
    "example, a model-free classifier tells the partition from its reference)."
)


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_checklist(result: ChecklistResult, out_dir: Path) -> dict[str, Path]:
    """checklist.json, checklist.md and checklist.html in `out_dir`; returns their paths."""
    paths = {ext: out_dir / f"checklist.{ext}" for ext in ("json", "md", "html")}
    atomic_write(paths["json"], result.model_dump_json(indent=2) + "\n")
    atomic_write(paths["md"], render_markdown(result))
    atomic_write(paths["html"], render_html(result))
    return paths


def fmt_p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3g}"


def _counts(result: ChecklistResult) -> str:
    counts: dict[str, int] = {}
    for line in result.lines:
        counts[line.verdict.value] = counts.get(line.verdict.value, 0) + 1
    return ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))


def checklist_table(result: ChecklistResult, width: int = 70) -> str:
    """Plain text for the terminal: one row per benchmark partition, then the family."""
    rows = [("benchmark", "partition", "verdict", "combined p", "adjusted p", "key evidence")]
    for line in result.lines:
        key = line.key_evidence or line.rule
        key = key if len(key) <= width else key[: width - 1] + "…"
        rows.append(
            (line.benchmark, line.partition, line.verdict.value, fmt_p(line.combined_p),
             fmt_p(line.adjusted_p), key)
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] for row in rows
    ]
    out.insert(1, "-" * len(out[0]))
    out.insert(0, f"release checklist: model {result.model}")
    out.append(f"{_counts(result)}; {result.family}")
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: ChecklistResult) -> str:
    ident = result.identity
    out = [
        f"# Release checklist: {_md_cell(result.model)}",
        "",
        f"Model `{ident.backend}:{ident.name}`, fingerprint `{ident.fingerprint}`"
        + (f" ({ident.basis})" if ident.basis else "")
        + f". Probes: {', '.join(result.probes)}. Created {result.created_at:%Y-%m-%d %H:%M:%S} UTC.",
        "",
        f"**Error control.** {result.family}: when the model saw none of the partitions, its probes flag "
        f"one (`contaminated` or `suspicious`) with probability at most {result.alpha:g} over the whole "
        "checklist. A `suspicious` line from the corpus (`corpus_partial`) is corpus evidence, not "
        "covered by that rate.",
        "",
        f"**Result:** {_counts(result)}.",
        "",
        "| benchmark | partition | verdict | combined p | adjusted p | rule | key evidence | report |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for line in result.lines:
        page = _html_sibling(line.report)
        out.append(
            f"| {_md_cell(line.benchmark)} | {_md_cell(line.partition)} | **{line.verdict.value}** | "
            f"{fmt_p(line.combined_p)} | {fmt_p(line.adjusted_p)} | {_md_cell(line.rule)} | "
            f"{_md_cell(line.key_evidence or '-')} | [{page}]({page}) |"
        )
    out += ["", _NOTE, "", "## Benchmarks", ""]
    for run in result.benchmarks:
        out.append(
            f"- **{_md_cell(run.label)}**: `{_md_cell(run.source)}` (sha256 `{run.sha256[:12]}`), "
            f"partitions {', '.join(run.partitions)}, reference "
            f"{_md_cell(run.reference) if run.reference else 'none'}"
            + (f", corpus overlap from {', '.join(f'`{s}`' for s in run.overlap)}" if run.overlap else "")
            + f"; {run.requests} requests, {run.model_calls} model calls, {run.cache_hits} from the cache. "
            f"Report: [{run.report}]({run.report})."
        )
    return "\n".join(out) + "\n"


def _html_sibling(report_json: str) -> str:
    return report_json[: -len(".json")] + ".html" if report_json.endswith(".json") else report_json


_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 78em; color: #222;
  padding: 0 1em; }
h1 { font-size: 1.5em; } table { border-collapse: collapse; width: 100%; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.p { font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.verdict-contaminated td.verdict { background: #f8d0d0; font-weight: bold; }
tr.verdict-suspicious td.verdict { background: #fbe9c2; font-weight: bold; }
tr.verdict-no_evidence td.verdict { background: #e5efe5; }
tr.verdict-inconclusive td.verdict { background: #e4e4ef; }
.note { color: #555; } code { background: #f3f3f3; padding: 0 .2em; }
"""


def render_html(result: ChecklistResult) -> str:
    """One offline page: inline CSS, no script, no external reference; every text escaped."""
    e = html.escape
    ident = result.identity
    rows = "\n".join(_html_row(line) for line in result.lines)
    runs = "\n".join(
        f"<li><b>{e(run.label)}</b>: <code>{e(run.source)}</code> "
        f"(sha256 <code>{e(run.sha256[:12])}</code>), "
        f"partitions {e(', '.join(run.partitions))}, reference {e(run.reference or 'none')}"
        + (f", corpus overlap from {e(', '.join(run.overlap))}" if run.overlap else "")
        + f"; {run.requests} requests, {run.model_calls} model calls, {run.cache_hits} from the cache. "
        f'Report: <a href="{e(_html_sibling(run.report))}">{e(_html_sibling(run.report))}</a></li>'
        for run in result.benchmarks
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Release checklist: {e(result.model)}</title>
<style>{_CSS}</style></head>
<body>
<h1>Release checklist: {e(result.model)}</h1>
<p>Model <code>{e(ident.backend)}:{e(ident.name)}</code>, fingerprint <code>{e(ident.fingerprint)}</code>.
Probes: {e(", ".join(result.probes))}. Created {e(f"{result.created_at:%Y-%m-%d %H:%M:%S}")} UTC.</p>
<p><b>Error control.</b> {e(result.family)}: when the model saw none of the partitions, its probes
flag one (<i>contaminated</i> or <i>suspicious</i>) with probability at most {result.alpha:g} over the
whole checklist. A <i>suspicious</i> line from the corpus (corpus_partial) is corpus evidence, not
covered by that rate.</p>
<p><b>Result:</b> {e(_counts(result))}.</p>
<table id="checklist">
<thead><tr><th>benchmark</th><th>partition</th><th>verdict</th><th>combined p</th><th>adjusted p</th>
<th>rule</th><th>key evidence</th><th>report</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p class="note">{e(_NOTE).replace("`", "")}</p>
<h2>Benchmarks</h2>
<ul>
{runs}
</ul>
</body></html>
"""


def _html_row(line: ChecklistLine) -> str:
    e = html.escape
    report = _html_sibling(line.report)
    return (
        f'<tr class="verdict-{e(line.verdict.value)}">'
        f"<td>{e(line.benchmark)}</td><td>{e(line.partition)}</td>"
        f'<td class="verdict">{e(line.verdict.value)}</td><td class="p">{fmt_p(line.combined_p)}</td>'
        f'<td class="p">{fmt_p(line.adjusted_p)}</td><td>{e(line.rule)}</td>'
        f"<td>{e(line.key_evidence or '-')}</td>"
        f'<td><a href="{e(report)}">{e(report)}</a></td></tr>'
    )
