"""Self-contained HTML caseload report for clinic analysts.

One HTML file, openable from ``file://`` with no network: inline CSS, a little vanilla JS for
the client search, therapist / tier filters, sortable columns and charts that open large on
click, and one inline-SVG trajectory chart per client (alliance and symptoms over sessions,
ruptures and missed appointments marked) drawn here in Python. A glossary explains the words
of the reasons (↑ raises / ↓ lowers the risk, "better than expected", rupture, reliable
change) and what a risk tier means for this caseload.

- ``inputs``: the columns the two input frames need, and ``ReportMeta`` for the header.
- ``charts``: the per-client SVG charts, vectorised (no Python loop over clients).
- ``rows``: the caseload table's rows, vectorised likewise.
- ``summary``: the header's metric and validation tables as rows of text.
- ``page``: the Jinja2 environment and ``render_caseload_report``; ``templates/`` holds the
  page (summary, glossary, tier note, filters, legend), ``static/`` its CSS and script.

Everything that comes from the data (identifiers, reasons, metric names, notes) is untrusted.
The template escapes all it is given (autoescape); the rows and charts, built as strings for
speed, escape their data-derived text as they are built and reach the template as ``Markup``.
The embedded JSON is made safe for a ``<script>`` element, and a Content-Security-Policy
allows only the page's own script (by hash) and no network at all.

This package imports nothing of the project but ``alliance_dropout.contract``.
"""

from alliance_dropout.report.charts import chart_frame_symbol, trajectory_charts
from alliance_dropout.report.formatting import escape_text, json_for_script, risk_percent_label
from alliance_dropout.report.inputs import (
    DEFAULT_HOW_TO_READ,
    DEFAULT_NOT_FOR_USE_AS,
    FLAGS,
    HISTORY_COLUMNS,
    SCORED_COLUMNS,
    TIERS,
    MetricEstimate,
    ReportMeta,
)
from alliance_dropout.report.page import render_caseload_report
from alliance_dropout.report.rows import caseload_rows

__all__ = [
    "DEFAULT_HOW_TO_READ",
    "DEFAULT_NOT_FOR_USE_AS",
    "FLAGS",
    "HISTORY_COLUMNS",
    "SCORED_COLUMNS",
    "TIERS",
    "MetricEstimate",
    "ReportMeta",
    "caseload_rows",
    "chart_frame_symbol",
    "escape_text",
    "json_for_script",
    "render_caseload_report",
    "risk_percent_label",
    "trajectory_charts",
]
