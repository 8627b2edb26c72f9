"""Reports: renderers over a frozen `ScanReport`, one module per format.

`render_markdown` and `render_html` are pure (report in, text out); `plots` holds the figures as
pure functions from scores to an SVG string; `select_excerpts` picks the most suspicious items
(and reads their matched corpus spans back); `write_reports` writes the JSON with its `.md` and
`.html` siblings. Nothing here is imported by `import contam`, and matplotlib only when a figure
is drawn.
"""

from contam.reports.excerpts import select_excerpts
from contam.reports.html import render_html
from contam.reports.markdown import render_markdown
from contam.reports.write import write_reports

__all__ = ["render_html", "render_markdown", "select_excerpts", "write_reports"]
