"""Reports: renderers over a frozen `ScanReport`, one module per format.

`render_markdown` and `render_html` are pure (report in, text out); `plots` holds the figures as
pure functions from scores to an SVG string; `select_excerpts` picks the most suspicious items
(and reads their matched corpus spans back); `write_reports` writes the JSON with its `.md` and
`.html` siblings; `verdict_table` is the terminal table (`contam.verdicts.table`). Nothing here is
imported by `import contam`, and matplotlib only when a figure is drawn.
"""

from contam.reports.excerpts import select_excerpts
from contam.reports.html import render_html
from contam.reports.markdown import render_markdown
from contam.reports.write import write_reports

# the terminal table belongs to the verdicts (no other renderer shares its layout): one copy
from contam.verdicts.table import verdict_table

__all__ = ["render_html", "render_markdown", "select_excerpts", "verdict_table", "write_reports"]
