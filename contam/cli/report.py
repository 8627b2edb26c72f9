"""`contam report`: render a saved scan report as Markdown or a standalone HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import click
from pydantic import ValidationError

from contam.errors import InputError
from contam.report import SCHEMA_VERSION, ScanReport

SUFFIX = {"html": ".html", "md": ".md"}


@click.command()
@click.argument("report_path", metavar="REPORT.JSON", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(SUFFIX)),
    default="html",
    show_default=True,
    help="html: one offline page with the plots; md: Markdown",
)
@click.option(
    "--out",
    default=None,
    metavar="PATH",
    help="where to write (default: beside the report, REPORT.html or REPORT.md); '-' for stdout",
)
def report(report_path: Path, fmt: str, out: str | None) -> None:
    """Render REPORT.JSON (written by `contam scan`) as HTML or Markdown."""
    from contam.reports import render_html, render_markdown
    from contam.reports.write import write_text_atomic

    loaded = read_report(report_path)
    text = render_html(loaded) if fmt == "html" else render_markdown(loaded)
    if out == "-":
        click.echo(text, nl=False)
        return
    target = Path(out) if out is not None else report_path.with_suffix(SUFFIX[fmt])
    if target.resolve() == report_path.resolve():
        raise InputError("would overwrite the report itself; give another --out", path=str(target))
    try:
        write_text_atomic(target, text)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=str(target), field="--out") from exc
    click.echo(f"{fmt} report written to {target}")


def read_report(path: Path) -> ScanReport:
    """A saved `ScanReport`, or an `InputError` naming the file and the first field that is wrong."""
    where = str(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read report: {exc.strerror or exc}", path=where) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", path=where) from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", path=where, line=exc.lineno) from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, str):
        raise InputError("not a contam scan report (no schema_version)", path=where, field="schema_version")
    if _major(version) != _major(SCHEMA_VERSION):
        raise InputError(
            f"report schema {version} cannot be read by this contam (reads {_major(SCHEMA_VERSION)}.x "
            f"up to {SCHEMA_VERSION})",
            path=where,
            field="schema_version",
        )
    try:
        return ScanReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise InputError(
            f"not a valid scan report of schema {version}: {first['msg']}", path=where, field=key
        ) from exc


def _major(version: str) -> str:
    return version.split(".", 1)[0]
