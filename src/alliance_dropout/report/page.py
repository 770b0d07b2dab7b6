"""The page: a Jinja2 template (autoescaped) filled with the header, filters and caseload rows.

The page is one file, openable from ``file://`` with no network. The CSS and the script
(``static/``: search, filters, sorting, enlarged charts) are inlined; a Content-Security-Policy
allows only that script, by its hash, and no network at all, so even a missed escape could
neither run code nor phone home.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib.resources import files
from typing import NamedTuple

import pandas as pd
from jinja2 import Environment, FunctionLoader, StrictUndefined
from jinja2.ext import Extension
from markupsafe import Markup

from alliance_dropout.contract import CLIENT_ID, DROPOUT_RISK, MODEL_ID, RISK_TIER, THERAPIST_ID
from alliance_dropout.report.charts import MARKER_SHAPES, chart_frame_symbol, trajectory_charts
from alliance_dropout.report.formatting import (
    date_text,
    json_for_script,
    num,
    risk_percent_label,
)
from alliance_dropout.report.inputs import (
    HISTORY_COLUMNS,
    SCORED_COLUMNS,
    TIERS,
    ReportMeta,
    check_columns,
    tier_basis,
    tier_css,
)
from alliance_dropout.report.rows import caseload_rows
from alliance_dropout.report.summary import metric_rows, validation_rows

_PACKAGE = "alliance_dropout.report"
# Sortable columns (static/report.js knows each key's values and default direction).
SORT_COLUMNS = (
    ("rank", "#"),
    ("client", "Client"),
    ("therapist", "Therapist"),
    ("asof", "As of"),
    ("risk", "Risk / tier"),
)
PAGE_TEMPLATE = "report.html.j2"
_LINE_BREAK = re.compile(r"\r?\n[ \t]*")


class JoinLines(Extension):
    """Template line breaks, and the indentation after them, are layout only: not output.

    So the templates can be indented for people while the page comes out as compact as the
    string-built one did (and inline elements get no stray spaces between them).
    """

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return _LINE_BREAK.sub("", source)


def _template_source(name: str) -> str | None:
    resource = files(_PACKAGE) / "templates" / name
    return resource.read_text(encoding="utf-8") if resource.is_file() else None


@functools.cache
def environment() -> Environment:
    """The report's Jinja2 environment: packaged templates, autoescape on, strict variables."""
    env = Environment(
        loader=FunctionLoader(_template_source),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=[JoinLines],
    )
    env.filters["num"] = num
    env.filters["thousands"] = lambda n: f"{int(n):,}"
    return env


class Assets(NamedTuple):
    css: Markup
    script: Markup
    csp: str


def _static(name: str, element: str) -> Markup:
    """A packaged static file, checked to be safe to inline as the text of ``element``."""
    text = (files(_PACKAGE) / "static" / name).read_text(encoding="utf-8")
    if f"</{element}" in text.lower():
        raise ValueError(f"static/{name} would end its <{element}> element early")
    return Markup(text)


def _csp(script: str) -> str:
    """No network, no plugins; only this page's own script (by hash) may run."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


@functools.cache
def assets() -> Assets:
    """The inlined CSS and script, and the CSP that allows exactly that script."""
    script = _static("report.js", "script")
    return Assets(_static("report.css", "style"), script, _csp(script))


class TierSummary(NamedTuple):
    name: str
    css: str  # class suffix: t-high, t-medium, t-low or t-other
    clients: int
    risks: str = ""  # the range of risk in this caseload's tier: "31–56%"


def _tier_ranges(scored: pd.DataFrame, tiers: pd.Series) -> dict[str, str]:
    """Lowest and highest risk per tier in this caseload, as percentages ("31–56%")."""
    risk = pd.to_numeric(scored[DROPOUT_RISK], errors="coerce").astype(float)
    span = risk.groupby(tiers.to_numpy()).agg(["min", "max"]).dropna()
    low, high = risk_percent_label(span["min"]), risk_percent_label(span["max"])
    text = (low.str.rstrip("%") + "–" + high).where(low != high, high)
    return {str(k): str(v) for k, v in text.items()}


def _tier_order(tiers: pd.Series) -> list[str]:
    """Tiers present, known ones first (high, medium, low); all known ones for an empty list."""
    seen = {str(t) for t in tiers.dropna().unique()}
    if not seen:
        return list(TIERS)
    return [t for t in TIERS if t in seen] + sorted(seen - set(TIERS))


def render_caseload_report(scored: pd.DataFrame, histories: pd.DataFrame, meta: ReportMeta) -> str:
    """The complete, self-contained HTML caseload report (ranked order of ``scored`` kept).

    Charts are drawn for the top ``meta.max_charts`` clients only, and the page says so.
    """
    check_columns(scored, SCORED_COLUMNS, "scored")
    check_columns(histories, HISTORY_COLUMNS, "histories")
    n = len(scored)
    max_charts = max(int(meta.max_charts), 0)
    charted = scored[CLIENT_ID].astype(str).iloc[:max_charts]
    hist = histories.assign(**{CLIENT_ID: histories[CLIENT_ID].astype(str)})
    charts = trajectory_charts(
        hist, charted, meta.symptom_scale, meta.alliance_scale, max(int(meta.max_chart_sessions), 1)
    )
    tier_values = scored[RISK_TIER].astype("string").str.lower()
    tier_names = _tier_order(tier_values)
    tier_counts: dict[str, int] = (
        dict(meta.tier_counts)
        if meta.tier_counts is not None
        else {str(k): int(v) for k, v in tier_values.value_counts().items()}
    )
    ranges = _tier_ranges(scored, tier_values)
    model_ids = sorted(scored[MODEL_ID].dropna().astype(str).unique())
    therapists = sorted(scored[THERAPIST_ID].astype(str).unique())
    generated = date_text(meta.generated_at, with_time=True)
    data_payload = {
        "n_clients": n,
        "therapists": therapists,
        "tiers": tier_names,
        "model_ids": model_ids,
        "generated_at": generated,
    }
    page_assets = assets()
    template = environment().get_template(PAGE_TEMPLATE)
    return template.render(
        meta=meta,
        symptom=meta.symptom_scale,
        alliance=meta.alliance_scale,
        n_clients=n,
        max_charts=max_charts,
        generated=generated,
        data_start=date_text(meta.data_start),
        data_end=date_text(meta.data_end),
        metrics=metric_rows(meta.test_metrics),
        validation=validation_rows(meta.validation_summary),
        model_ids=model_ids,
        tiers=[
            TierSummary(t, tier_css(t), int(tier_counts.get(t, 0)), ranges.get(t, ""))
            for t in tier_names
        ],
        tier_basis=tier_basis(meta),
        sort_columns=SORT_COLUMNS,
        therapists=therapists,
        marker_shapes=MARKER_SHAPES,
        chart_frame=chart_frame_symbol(meta.symptom_scale, meta.alliance_scale),
        rows=caseload_rows(scored, charts, max_charts),
        # made safe for a <script> element by json_for_script
        data_json=Markup(json_for_script(data_payload)),
        css=page_assets.css,
        script=page_assets.script,
        csp=page_assets.csp,
    )
