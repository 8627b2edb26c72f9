"""Writing a report in all three formats beside each other: `r.json`, `r.md`, `r.html`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from contam.report import ScanReport
from contam.reports.html import render_html
from contam.reports.markdown import render_markdown


def write_reports(report: ScanReport, json_path: str | Path) -> dict[str, Path]:
    """The JSON report at `json_path` and its `.md` and `.html` siblings, each written atomically
    (a temporary file in the same folder, then renamed over the target), so a reader or a killed
    process never sees half a file. Renders first: a rendering error leaves nothing half-written."""
    target = Path(json_path)
    paths = {"json": target, "md": target.with_suffix(".md"), "html": target.with_suffix(".html")}
    if len(set(paths.values())) < 3:
        raise ValueError(f"{target}: the JSON report needs a suffix other than .md or .html")
    rendered = {"md": render_markdown(report), "html": render_html(report)}
    report.write(target)
    for kind, text in rendered.items():
        write_text_atomic(paths[kind], text)
    return paths


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
