"""Self-contained HTML caseload report for clinic analysts.

One HTML file, openable from ``file://`` with no network: inline CSS, a little vanilla JS for
the therapist / tier filters, and one inline-SVG trajectory chart per client (alliance and
symptoms over sessions, ruptures and missed appointments marked) drawn here in Python.

Everything that comes from the data (identifiers, reasons, metric names, notes) is untrusted:
it is HTML-escaped, the embedded JSON is made safe for a ``<script>`` element, and a
Content-Security-Policy allows only this file's own script (by hash) and no network at all,
so even a missed escape could neither run code nor phone home.

Rows are built with vectorised pandas string operations (no Python loop over clients), so a
caseload of thousands renders in well under a second; charts are drawn for the top
``max_charts`` clients only and the page says so.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from alliance_dropout.contract import (
    ALLIANCE_CLIENT,
    ALLIANCE_THERAPIST,
    ATTENDANCE,
    CANCELLED,
    CLIENT_ID,
    NO_SHOW,
    PHQ9,
    SESSION_DATE,
    SESSION_NUMBER,
    SYMPTOM_SCORE,
    THERAPIST_ID,
    WAI_SR,
    Scale,
)
from alliance_dropout.contract import RISK_LIST_COLUMNS as OUTPUT_COLUMNS

TIERS = ("high", "medium", "low")
RUPTURE = "rupture"

# Flag column -> (label shown to the analyst, icon, css class).
FLAGS: dict[str, tuple[str, str, str]] = {
    "flag_unrepaired_rupture": ("Unrepaired rupture", "▲", "f-rupture"),
    "flag_low_alliance": ("Low alliance", "▼", "f-alliance"),
    "flag_off_expected_course": ("Off expected course", "↗", "f-course"),
    "flag_recent_missed": ("Recent missed session", "✕", "f-missed"),
}

# the scoring stage's output is the report's input: one definition of its columns
SCORED_COLUMNS = OUTPUT_COLUMNS
HISTORY_COLUMNS = (
    CLIENT_ID,
    SESSION_NUMBER,
    SESSION_DATE,
    ATTENDANCE,
    ALLIANCE_CLIENT,
    ALLIANCE_THERAPIST,
    SYMPTOM_SCORE,
    RUPTURE,
)

DEFAULT_HOW_TO_READ = (
    "Clients are ranked by the model's estimated probability of ending treatment early, as of "
    "their latest recorded session. The reasons name what moved the estimate most; the flags are "
    "simple rules on the session record. Use the list to decide whom to discuss first and what to "
    "raise in the next session: repair a rupture, revisit goals, follow up a missed appointment."
)
DEFAULT_NOT_FOR_USE_AS = (
    "Not a diagnosis, not a reason to end, shorten or deny treatment, and not a measure of a "
    "therapist's performance. A low score does not mean a client is safe: clinical judgement "
    "and the client's own account come first."
)


class MetricEstimate(NamedTuple):
    """A test-set metric with its (optional) confidence interval."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True)
class ReportMeta:
    """Everything the report header says about the model, the data and the run.

    ``test_metrics`` maps a display name (e.g. "ROC AUC", "Brier score", "Calibration slope")
    to ``(value, ci_low, ci_high)``. ``validation_summary`` maps a count's name (e.g.
    "rows_in", "clients_quarantined") to an int, or to a mapping of counts (e.g. failures per
    check). ``tier_counts`` defaults to the counts in the scored frame.
    """

    title: str
    generated_at: datetime
    model_name: str
    model_version: str
    model_uri: str
    test_metrics: Mapping[str, tuple[float, float | None, float | None]]
    data_start: date
    data_end: date
    symptom_scale: Scale = PHQ9
    alliance_scale: Scale = WAI_SR
    validation_summary: Mapping[str, Any] = field(default_factory=dict)
    tier_counts: Mapping[str, int] | None = None
    tier_definition: str = ""
    test_set_note: str = ""
    how_to_read: str = DEFAULT_HOW_TO_READ
    not_for_use_as: str = DEFAULT_NOT_FOR_USE_AS
    # Beyond these the page lists clients without charts, so a huge caseload stays a small file.
    max_charts: int = 2000
    # Only the latest sessions of a very long episode are drawn.
    max_chart_sessions: int = 40


# --- escaping ----------------------------------------------------------------------------------


def escape_text(value: object) -> str:
    """HTML-escape any value for element text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _escape_series(s: pd.Series) -> pd.Series:
    """Vectorised ``html.escape(quote=True)`` of a column (missing values become "")."""
    out = s.astype("string").fillna("")
    # '&' first, so the entities added below are not escaped twice.
    for raw, entity in (
        ("&", "&amp;"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ('"', "&quot;"),
        ("'", "&#x27;"),
    ):
        out = out.str.replace(raw, entity, regex=False)
    return out.astype(str)


def json_for_script(obj: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>``, ``<!--`` or JS line breaks."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


# --- number formatting (vectorised) ------------------------------------------------------------


def _fmt(values: pd.Series, decimals: int, missing: str = "–") -> pd.Series:
    """Numbers as fixed-decimal text, ``missing`` for NaN."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    text = pd.Series(np.char.mod(f"%.{decimals}f", v.fillna(0).to_numpy()), index=v.index)
    return text.where(v.notna(), missing).astype(str)


def _coord(values: np.ndarray) -> np.ndarray:
    """SVG coordinates with one decimal and no trailing '.0' (keeps chart paths compact)."""
    text = np.char.mod("%.1f", np.round(values, 1))
    return np.char.replace(text, ".0", "") if text.size else text


def risk_percent_label(risk: pd.Series) -> pd.Series:
    """Probabilities as whole percentages; '<1%' rather than a misleading '0%'."""
    pct = (pd.to_numeric(risk, errors="coerce").astype(float) * 100).round()
    label = _fmt(pct, 0) + "%"
    return label.where(~(pct < 1), "<1%").where(pct.notna(), "–").astype(str)


# --- trajectory charts -------------------------------------------------------------------------

CHART_W, CHART_H = 280, 116
PLOT_X0, PLOT_X1 = 24, 276
ALLIANCE_Y0, ALLIANCE_Y1 = 11, 49  # top and bottom of the alliance panel
SYMPTOM_Y0, SYMPTOM_Y1 = 63, 95  # top and bottom of the symptom panel
ATTENDANCE_Y = 102  # strip for missed appointments
SESSION_LABEL_Y = 114  # first and last session number


def _y_on(values: pd.Series, scale: Scale, top: float, bottom: float) -> pd.Series:
    """Map scale values onto a panel (higher value = higher on screen), clipped to the panel."""
    frac = (values.astype(float) - scale.min) / (scale.max - scale.min)
    return bottom - frac.clip(0, 1) * (bottom - top)


def chart_frame_symbol(symptom: Scale, alliance: Scale) -> str:
    """The static axes shared by every chart, defined once and drawn with ``<use>``."""
    cutoff = ""
    if symptom.clinical_cutoff is not None:
        y = _y_on(pd.Series([symptom.clinical_cutoff]), symptom, SYMPTOM_Y0, SYMPTOM_Y1).iloc[0]
        cutoff = f'<line class="cut" x1="{PLOT_X0}" x2="{PLOT_X1}" y1="{y:.1f}" y2="{y:.1f}"/>'
        # Label the cutoff on the axis unless it would overprint the min/max labels.
        if SYMPTOM_Y0 + 9 < y < SYMPTOM_Y1 - 8:
            cutoff += (
                f'<text class="tick" x="{PLOT_X0 - 3}" y="{y + 3:.1f}" text-anchor="end">'
                f"{escape_text(_num(symptom.clinical_cutoff))}</text>"
            )
    mid = (ALLIANCE_Y0 + ALLIANCE_Y1) / 2
    return (
        '<svg class="defs" width="0" height="0" aria-hidden="true" focusable="false">'
        f'<symbol id="spark-frame" viewBox="0 0 {CHART_W} {CHART_H}">'
        f'<text class="plabel" x="{PLOT_X0}" y="{ALLIANCE_Y0 - 3}">Alliance</text>'
        f'<text class="plabel" x="{PLOT_X0}" y="{SYMPTOM_Y0 - 3}">'
        f"{escape_text(symptom.name)}</text>"
        f'<rect class="panel" x="{PLOT_X0}" y="{ALLIANCE_Y0}" width="{PLOT_X1 - PLOT_X0}" '
        f'height="{ALLIANCE_Y1 - ALLIANCE_Y0}"/>'
        f'<line class="grid" x1="{PLOT_X0}" x2="{PLOT_X1}" y1="{mid}" y2="{mid}"/>'
        f'<rect class="panel" x="{PLOT_X0}" y="{SYMPTOM_Y0}" width="{PLOT_X1 - PLOT_X0}" '
        f'height="{SYMPTOM_Y1 - SYMPTOM_Y0}"/>'
        f"{cutoff}"
        f'<text class="tick" x="{PLOT_X0 - 3}" y="{ALLIANCE_Y0 + 6}" text-anchor="end">'
        f"{escape_text(_num(alliance.max))}</text>"
        f'<text class="tick" x="{PLOT_X0 - 3}" y="{ALLIANCE_Y1}" text-anchor="end">'
        f"{escape_text(_num(alliance.min))}</text>"
        f'<text class="tick" x="{PLOT_X0 - 3}" y="{SYMPTOM_Y0 + 6}" text-anchor="end">'
        f"{escape_text(_num(symptom.max))}</text>"
        f'<text class="tick" x="{PLOT_X0 - 3}" y="{SYMPTOM_Y1}" text-anchor="end">'
        f"{escape_text(_num(symptom.min))}</text>"
        "</symbol></svg>"
    )


def _num(x: float) -> str:
    return f"{x:g}"


def _polyline(points: pd.DataFrame, y: str, css: str) -> pd.Series:
    """One ``<polyline>`` per client through the non-missing ``y`` values, indexed by client."""
    ok = points[points[y].notna()]
    xy = pd.Series(
        np.char.add(np.char.add(_coord(ok["x"].to_numpy()), ","), _coord(ok[y].to_numpy())),
        index=ok.index,
    )
    grouped = xy.groupby(ok[CLIENT_ID], sort=False)
    joined = grouped.agg(" ".join)
    # a lone rating: a zero-length segment, drawn as a dot by the round line caps
    single = grouped.size() == 1
    joined[single] = joined[single] + " " + joined[single]
    return f'<polyline class="{css}" points="' + joined + '"/>'


def _markers(rows: pd.DataFrame, y: pd.Series, shape: str, css: str, label: str) -> pd.Series:
    """A marker with a hover title at each given row, concatenated per client."""
    x = _coord(rows["x"].to_numpy())
    yy = _coord(y.to_numpy())
    title = (
        "<title>Session "
        + rows[SESSION_NUMBER].astype("int64").astype(str)
        + " ("
        + rows[SESSION_DATE].dt.strftime("%Y-%m-%d").fillna("date unknown").astype(str)
        + f"): {label}</title>"
    )
    mark = (
        f'<g class="{css}" transform="translate('
        + pd.Series(x, index=rows.index)
        + ","
        + pd.Series(yy, index=rows.index)
        + f')"><path d="{shape}"/>'
        + title
        + "</g>"
    )
    return mark.groupby(rows[CLIENT_ID], sort=False).agg("".join)


def _trajectory_label(h: pd.DataFrame, symptom: Scale) -> pd.Series:
    """Plain-text summary of each client's chart (the SVG's accessible name and tooltip)."""
    g = h.groupby(CLIENT_ID, sort=False)

    def first_last(col: str) -> pd.Series:
        # groupby first/last skip missing values: the first and latest recorded scores.
        return _fmt(g[col].first(), 1) + " → " + _fmt(g[col].last(), 1)

    sessions = g[SESSION_NUMBER].agg(["min", "max"]).astype("int64").astype(str)
    ruptures = g[RUPTURE].sum().astype("int64")
    missed = (h[ATTENDANCE] == NO_SHOW).groupby(h[CLIENT_ID], sort=False).sum()
    return (
        "Sessions "
        + sessions["min"]
        + "–"
        + sessions["max"]
        + ". Client alliance "
        + first_last(ALLIANCE_CLIENT)
        + "; therapist alliance "
        + first_last(ALLIANCE_THERAPIST)
        + f"; {symptom.name} "
        + first_last(SYMPTOM_SCORE)
        + "; ruptures: "
        + ruptures.astype(str)
        + "; no-shows: "
        + missed.astype(str)
        + "."
    )


def trajectory_charts(
    histories: pd.DataFrame,
    clients: pd.Series,
    symptom: Scale,
    alliance: Scale,
    max_sessions: int,
) -> pd.Series:
    """Inline SVG chart per client (indexed by client id), for the given clients only.

    Top panel: client (solid) and therapist (dashed) alliance on the alliance scale; bottom
    panel: symptom score on its own scale with the clinical cutoff; ruptures as red triangles
    on the client-alliance line; no-shows (×) and cancellations (○) on a strip below.
    """
    h = histories[histories[CLIENT_ID].isin(clients)].sort_values(
        [CLIENT_ID, SESSION_NUMBER], kind="stable"
    )
    # Keep the latest sessions of very long episodes.
    from_end = h.groupby(CLIENT_ID, sort=False).cumcount(ascending=False)
    h = h[from_end < max_sessions].copy()
    if h.empty:
        return pd.Series(dtype=str)
    h[RUPTURE] = h[RUPTURE].fillna(False).astype(bool)

    session = h[SESSION_NUMBER].astype(float)
    by_client = session.groupby(h[CLIENT_ID], sort=False)
    first, last = by_client.transform("min"), by_client.transform("max")
    span = (last - first).replace(0, np.nan)
    centre = (PLOT_X0 + PLOT_X1) / 2
    inset = 4  # keep end markers inside the panel
    h["x"] = (PLOT_X0 + inset + (session - first) / span * (PLOT_X1 - PLOT_X0 - 2 * inset)).fillna(
        centre
    )
    h["ya"] = _y_on(h[ALLIANCE_CLIENT], alliance, ALLIANCE_Y0, ALLIANCE_Y1)
    h["yt"] = _y_on(h[ALLIANCE_THERAPIST], alliance, ALLIANCE_Y0, ALLIANCE_Y1)
    h["ys"] = _y_on(h[SYMPTOM_SCORE], symptom, SYMPTOM_Y0, SYMPTOM_Y1)

    ids = pd.Index(h[CLIENT_ID].unique())
    parts = [
        _polyline(h, "yt", "l-ther"),
        _polyline(h, "ya", "l-client"),
        _polyline(h, "ys", "l-sym"),
    ]
    rup = h[h[RUPTURE]]
    parts.append(
        _markers(rup, rup["ya"].fillna(ALLIANCE_Y0 + 4), "M0 4L-4.5-3.5H4.5Z", "m-rup", "rupture")
    )
    noshow = h[h[ATTENDANCE] == NO_SHOW]
    parts.append(
        _markers(
            noshow,
            pd.Series(ATTENDANCE_Y, index=noshow.index, dtype=float),
            "M-3-3L3 3M-3 3L3-3",
            "m-noshow",
            "no-show",
        )
    )
    cancelled = h[h[ATTENDANCE] == CANCELLED]
    parts.append(
        _markers(
            cancelled,
            pd.Series(ATTENDANCE_Y, index=cancelled.index, dtype=float),
            "M-2.6 0a2.6 2.6 0 1 0 5.2 0a2.6 2.6 0 1 0-5.2 0",
            "m-cancel",
            "cancelled",
        )
    )
    span_labels = session.groupby(h[CLIENT_ID], sort=False).agg(["min", "max"]).astype("int64")
    parts.append(
        f'<text class="tick" x="{PLOT_X0}" y="{SESSION_LABEL_Y}">session '
        + span_labels["min"].astype(str)
        + f'</text><text class="tick" x="{PLOT_X1}" y="{SESSION_LABEL_Y}" text-anchor="end">'
        + span_labels["max"].astype(str)
        + "</text>"
    )
    body = pd.Series("", index=ids, dtype=str)
    for part in parts:
        body = body + part.reindex(ids).fillna("").astype(str)

    label = _escape_series(_trajectory_label(h, symptom).reindex(ids))
    return (
        f'<svg class="spark" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" '
        # A first-child <title> is the chart's accessible name and its tooltip.
        f'height="{CHART_H}" role="img"><title>'
        + label
        + '</title><use href="#spark-frame"/>'
        + body
        + "</svg>"
    )


# --- table rows ----------------------------------------------------------------------------------


def _check_columns(df: pd.DataFrame, required: tuple[str, ...], name: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{name} frame lacks column(s): {', '.join(missing)}")


def _tier_order(tiers: pd.Series) -> list[str]:
    """Tiers present, known ones first (high, medium, low); all known ones for an empty list."""
    seen = {str(t) for t in tiers.dropna().unique()}
    if not seen:
        return list(TIERS)
    return [t for t in TIERS if t in seen] + sorted(seen - set(TIERS))


def caseload_rows(scored: pd.DataFrame, charts: pd.Series, max_charts: int) -> str:
    """The ``<tbody>`` rows, in the order given (the scoring stage's ranking)."""
    s = scored.reset_index(drop=True)
    n = len(s)
    rank = pd.Series(np.arange(1, n + 1), index=s.index).astype(str)
    client = _escape_series(s[CLIENT_ID])
    therapist = _escape_series(s[THERAPIST_ID])
    tier_raw = s["risk_tier"].astype("string").fillna("unknown").str.lower()
    tier = _escape_series(tier_raw)
    tier_class = tier_raw.where(tier_raw.isin(TIERS), "other").astype(str)
    risk = pd.to_numeric(s["dropout_risk"], errors="coerce").astype(float)
    bar_width = _fmt((risk.clip(0, 1) * 100).round(1), 1, missing="0")
    as_of_date = pd.to_datetime(s["as_of_date"], errors="coerce")
    date_text = as_of_date.dt.strftime("%Y-%m-%d").fillna("–").astype(str)
    as_of_session = _fmt(s["as_of_session"], 0)

    reasons = _escape_series(s["top_reasons"]).str.strip()
    reasons_html = (
        "<ul><li>" + reasons.str.replace(" | ", "</li><li>", regex=False) + "</li></ul>"
    ).where(reasons != "", '<span class="muted">No reason given</span>')

    flags = pd.Series("", index=s.index, dtype=str)
    for col, (label, icon, css) in FLAGS.items():
        on = s[col].astype("boolean").fillna(False).to_numpy(dtype=bool)
        pill = (
            f'<span class="flag {css}" title="{label}">'
            f'<span aria-hidden="true">{icon}</span> {label}</span>'
        )
        flags = flags + pd.Series(np.where(on, pill, ""), index=s.index, dtype=str)
    flags = flags.where(flags != "", '<span class="muted">–</span>')

    chart = charts.reindex(s[CLIENT_ID].astype(str)).fillna(
        '<span class="muted">No sessions on record</span>'
    )
    chart.index = s.index
    beyond = pd.Series(np.arange(n) >= max_charts, index=s.index)
    chart = chart.where(
        ~beyond, f'<span class="muted">Chart omitted (rank &gt; {max_charts})</span>'
    )

    rows = (
        '<tr data-rank="'
        + rank
        + '" data-therapist="'
        + therapist
        + '" data-tier="'
        + tier
        + '"><td class="rank">'
        + rank
        + '</td><td class="client"><span class="cid">'
        + client
        + '</span></td><td class="ther">'
        + therapist
        + '</td><td class="asof">Session '
        + as_of_session
        + '<br><span class="muted">'
        + date_text
        + '</span></td><td class="risk"><span class="pct">'
        + risk_percent_label(risk)
        + '</span><span class="bar"><span class="fill t-'
        + tier_class
        + '" style="width:'
        + bar_width
        + '%"></span></span></td><td><span class="badge t-'
        + tier_class
        + '">'
        + tier
        + '</span></td><td class="reasons">'
        + reasons_html
        + '</td><td class="flags">'
        + flags
        + '</td><td class="chart">'
        + chart
        + "</td></tr>"
    )
    return "\n".join(rows.tolist())


# --- header ----------------------------------------------------------------------------------

_METRIC_HINTS = {
    "rocauc": "0.5 = chance, 1 = perfect",
    "auc": "0.5 = chance, 1 = perfect",
    "prauc": "higher is better; compare with the dropout rate",
    "averageprecision": "higher is better; compare with the dropout rate",
    "brier": "lower is better",
    "brierscore": "lower is better",
    "calibrationslope": "ideal 1; below 1 = risks too extreme",
    "calibrationintercept": "ideal 0; above 0 = risks too low overall",
}


def _metric_hint(name: str) -> str:
    return _METRIC_HINTS.get(re.sub(r"[^a-z]", "", name.lower()), "")


def _metric_value(x: float | None) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def metrics_table(metrics: Mapping[str, tuple[float, float | None, float | None]]) -> str:
    if not metrics:
        return '<p class="muted">No test-set metrics were supplied.</p>'
    rows = []
    for name, estimate in metrics.items():
        m = MetricEstimate(*estimate)
        ci = (
            f"{_metric_value(m.ci_low)} – {_metric_value(m.ci_high)}"
            if m.ci_low is not None and m.ci_high is not None
            else "–"
        )
        rows.append(
            f"<tr><th scope=row>{escape_text(name)}</th><td class=num>{_metric_value(m.value)}</td>"
            f"<td class=num>{ci}</td><td class=muted>{escape_text(_metric_hint(name))}</td></tr>"
        )
    return (
        '<table class="kv metrics"><thead><tr><th scope=col>Metric</th><th scope=col>Value</th>'
        "<th scope=col>95% CI</th><th scope=col>How to read</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _humanise(key: str) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _count(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):,.4g}"
    return escape_text(value)


def validation_table(summary: Mapping[str, Any]) -> str:
    """Aggregate counts only; nested mappings (e.g. failures per check) as indented rows."""
    if not summary:
        return '<p class="muted">No validation summary was supplied.</p>'
    rows = []
    for key, value in summary.items():
        if isinstance(value, Mapping):
            rows.append(
                f'<tr><th scope=row colspan=2 class="group">{escape_text(_humanise(key))}</th></tr>'
            )
            if not value:
                rows.append('<tr><td class="sub muted" colspan=2>none</td></tr>')
            for sub, count in value.items():
                rows.append(
                    f'<tr><th scope=row class="sub">{escape_text(sub)}</th>'
                    f"<td class=num>{_count(count)}</td></tr>"
                )
        else:
            rows.append(
                f"<tr><th scope=row>{escape_text(_humanise(key))}</th>"
                f"<td class=num>{_count(value)}</td></tr>"
            )
    return '<table class="kv validation"><tbody>' + "".join(rows) + "</tbody></table>"


def _date_text(d: date | datetime | pd.Timestamp | None, with_time: bool = False) -> str:
    if d is None or pd.isna(d):
        return "–"
    ts = pd.Timestamp(d)
    return ts.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def _legend(symptom: Scale, alliance: Scale) -> str:
    cutoff = (
        f", dashed line = clinical cutoff {escape_text(_num(symptom.clinical_cutoff))}"
        if symptom.clinical_cutoff is not None
        else ""
    )
    worse = "higher is worse" if symptom.higher_is_worse else "higher is better"
    sw = 'width="26" height="12" viewBox="0 0 26 12" aria-hidden="true"'
    return (
        '<ul class="legend" aria-label="Chart legend">'
        f'<li><svg {sw}><line class="l-client" x1="1" x2="25" y1="6" y2="6"/></svg>'
        f"Client-rated alliance ({escape_text(alliance.name)}, "
        f"{escape_text(_num(alliance.min))}–{escape_text(_num(alliance.max))}, top panel)</li>"
        f'<li><svg {sw}><line class="l-ther" x1="1" x2="25" y1="6" y2="6"/></svg>'
        "Therapist-rated alliance (top panel)</li>"
        f'<li><svg {sw}><line class="l-sym" x1="1" x2="25" y1="6" y2="6"/></svg>'
        f"{escape_text(symptom.name)} ({escape_text(_num(symptom.min))}–"
        f"{escape_text(_num(symptom.max))}, {worse}; bottom panel{cutoff})</li>"
        f'<li><svg {sw}><g class="m-rup" transform="translate(13,6)">'
        '<path d="M0 4L-4.5-3.5H4.5Z"/></g></svg>Alliance rupture</li>'
        f'<li><svg {sw}><g class="m-noshow" transform="translate(13,6)">'
        '<path d="M-3-3L3 3M-3 3L3-3"/></g></svg>No-show</li>'
        f'<li><svg {sw}><g class="m-cancel" transform="translate(13,6)">'
        '<path d="M-2.6 0a2.6 2.6 0 1 0 5.2 0a2.6 2.6 0 1 0-5.2 0"/></g></svg>Cancelled</li>'
        "</ul>"
    )


# --- page --------------------------------------------------------------------------------------

_CSS = """
:root{--ink:#101828;--muted:#475467;--line:#d0d5dd;--bg:#f5f7fa;--card:#fff;--navy:#14284b;
--high:#b42318;--high-bg:#fee4e2;--med:#93370d;--med-bg:#fef0c7;--low:#05603a;--low-bg:#d1fadf;
--client:#1d4ed8;--ther:#7c3aed;--sym:#0e7490;--rup:#d92d20}
*{box-sizing:border-box}
html{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;color:var(--ink);background:var(--bg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
[hidden]{display:none!important}
header.top{background:var(--navy);color:#fff;padding:18px 28px 16px}
header.top h1{margin:0 0 4px;font-size:22px;font-weight:650;letter-spacing:.2px}
header.top p{margin:0;color:#d6dde9}
header.top code{color:#fff;background:rgba(255,255,255,.12);padding:1px 5px;border-radius:4px;
word-break:break-all}
main{padding:18px 28px 40px}
.cards{display:grid;grid-template-columns:1.35fr 1fr 1fr;gap:16px;margin-bottom:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.card h2{font-size:13px;text-transform:uppercase;letter-spacing:.6px;color:var(--muted);
margin:0 0 10px}
.card p{margin:6px 0}
table.kv{border-collapse:collapse;width:100%;font-size:13px}
table.kv th,table.kv td{padding:3px 6px;border-bottom:1px solid #eaecf0;text-align:left;
vertical-align:top}
table.kv thead th{color:var(--muted);font-weight:600;font-size:12px}
table.kv th.group{padding-top:8px;color:var(--muted)}
table.kv .sub{padding-left:18px;font-weight:400}
.num{text-align:right!important;font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:var(--muted)}
.tiers{display:flex;gap:8px;flex-wrap:wrap;margin:4px 0 8px}
.tiercount{display:flex;flex-direction:column;align-items:center;min-width:78px;padding:6px 10px;
border-radius:8px}
.tiercount b{font-size:22px;line-height:1.1}
.notes{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin-bottom:16px}
.note{border-left:4px solid var(--client);background:#eef4ff;padding:10px 14px;
border-radius:0 8px 8px 0}
.note.warn{border-left-color:var(--med);background:#fffaeb}
.note h2{font-size:13px;margin:0 0 4px}
.note p{margin:0}
.controls{position:sticky;top:0;z-index:2;background:var(--card);border:1px solid var(--line);
border-radius:8px;padding:10px 14px;margin-bottom:10px;display:flex;gap:22px;align-items:center;
flex-wrap:wrap;box-shadow:0 1px 3px rgba(16,24,40,.08)}
.controls label{font-weight:600;margin-right:6px}
.controls select{font:inherit;padding:4px 8px;border:1px solid var(--line);border-radius:6px;
min-width:160px;max-width:320px}
.controls fieldset{border:0;padding:0;margin:0;display:flex;gap:10px;align-items:center}
.controls legend{float:left;font-weight:600;margin-right:6px}
.controls fieldset label{font-weight:400;display:inline-flex;gap:4px;align-items:center}
#shown-count{margin-left:auto;font-weight:600}
ul.legend{list-style:none;margin:0 0 10px;padding:0;display:flex;flex-wrap:wrap;gap:4px 18px;
font-size:12.5px;color:var(--muted)}
ul.legend li{display:flex;align-items:center;gap:5px}
.chartnote{font-size:12.5px;color:var(--muted);margin:0 0 10px}
table.caseload{width:100%;border-collapse:separate;border-spacing:0;background:var(--card);
border:1px solid var(--line);border-radius:8px;overflow:hidden}
table.caseload th,table.caseload td{padding:8px 10px;border-bottom:1px solid #eaecf0;
vertical-align:top;text-align:left}
table.caseload thead th{background:#f2f4f7;font-size:12px;text-transform:uppercase;
letter-spacing:.4px;color:var(--muted);position:sticky;top:0}
table.caseload tbody tr:nth-child(even){background:#fcfcfd}
table.caseload tbody tr:hover{background:#f5f8ff}
td.rank{font-weight:700;color:var(--muted);text-align:right;width:40px}
td.client{max-width:170px}
.cid{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:13px;
word-break:break-all}
td.ther{max-width:130px;word-break:break-word}
td.asof{white-space:nowrap}
td.risk{width:118px}
.pct{font-size:16px;font-weight:700;font-variant-numeric:tabular-nums}
.bar{display:block;height:6px;background:#eaecf0;border-radius:3px;margin-top:4px;overflow:hidden}
.bar .fill{display:block;height:100%}
.fill.t-high{background:var(--high)}.fill.t-medium{background:#dc6803}.fill.t-low{background:#12b76a}
.fill.t-other{background:#98a2b3}
.badge{display:inline-block;padding:2px 9px;border-radius:999px;font-size:12px;font-weight:700;
text-transform:capitalize;white-space:nowrap}
.t-high{color:var(--high);background:var(--high-bg)}
.t-medium{color:var(--med);background:var(--med-bg)}
.t-low{color:var(--low);background:var(--low-bg)}
.t-other{color:var(--ink);background:#eaecf0}
.tiercount.t-high b{color:var(--high)}
td.reasons ul{margin:0;padding-left:16px}
td.reasons li{margin:1px 0}
td.flags{width:170px}
.flag{display:inline-block;font-size:12px;padding:1px 7px;margin:0 3px 4px 0;border-radius:5px;
border:1px solid;white-space:nowrap}
.f-rupture{color:#b42318;border-color:#fda29b;background:#fff6f5}
.f-alliance{color:#1d3a8a;border-color:#a4bcfd;background:#f5f8ff}
.f-course{color:#93370d;border-color:#fec84b;background:#fffcf5}
.f-missed{color:#344054;border-color:#98a2b3;background:#f9fafb}
td.chart{width:292px;padding:4px 6px}
.plabel{font-size:8.5px;font-weight:700;fill:#475467;font-family:inherit}
svg.spark{display:block}
svg.defs{position:absolute;width:0;height:0;overflow:hidden}
.panel{fill:#fafbfc;stroke:#e4e7ec}
.grid{stroke:#eaecf0}
.cut{stroke:#98a2b3;stroke-dasharray:3 3}
.tick{font-size:8.5px;fill:#667085;font-family:inherit}
.l-client,.l-ther,.l-sym{fill:none;stroke-width:1.8;stroke-linejoin:round;stroke-linecap:round}
.l-client{stroke:var(--client)}
.l-ther{stroke:var(--ther);stroke-dasharray:4 2.5}
.l-sym{stroke:var(--sym)}
.m-rup path{fill:var(--rup);stroke:#fff;stroke-width:.8}
.m-noshow path{stroke:#1d2939;stroke-width:1.8;fill:none}
.m-cancel path{stroke:#667085;stroke-width:1.3;fill:#fff}
#no-rows{padding:18px;text-align:center}
footer{color:var(--muted);font-size:12px;margin-top:14px}
@media (max-width:1100px){.cards,.notes{grid-template-columns:1fr}}
@media print{
body{background:#fff;font-size:11px}
.controls select,.controls fieldset{display:none}
.controls{position:static;box-shadow:none;border:0;padding:0}
header.top{background:#fff;color:var(--ink);border-bottom:2px solid var(--ink);padding:0 0 8px}
header.top p,header.top code{color:var(--ink)}
table.caseload thead{display:table-header-group}
table.caseload tr{break-inside:avoid}
table.caseload thead th{position:static}
.cards{grid-template-columns:1.35fr 1fr 1fr}
}
"""

# Filters run on load (from the URL fragment, e.g. #therapist=T2&tier=high,medium) and on change;
# the fragment is kept in step so an analyst can share a filtered link.
_JS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var select = document.getElementById("f-therapist");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name=tier]"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("#caseload tbody tr"));
  var count = document.getElementById("shown-count");
  var empty = document.getElementById("no-rows");

  function readFragment() {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var therapist = params.get("therapist");
    if (therapist !== null && data.therapists.indexOf(therapist) >= 0) {
      select.value = therapist;
    }
    var tiers = params.get("tier");
    if (tiers !== null) {
      var wanted = tiers.split(",");
      boxes.forEach(function (b) { b.checked = wanted.indexOf(b.value) >= 0; });
    }
  }

  function writeFragment() {
    var params = new URLSearchParams();
    if (select.value) { params.set("therapist", select.value); }
    var on = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    if (on.length !== boxes.length) { params.set("tier", on.join(",")); }
    var text = params.toString();
    try {
      history.replaceState(null, "", text ? "#" + text : window.location.pathname);
    } catch (e) { /* some file:// contexts refuse; filtering still works */ }
  }

  function apply() {
    var therapist = select.value;
    var tiers = {};
    boxes.forEach(function (b) { if (b.checked) { tiers[b.value] = true; } });
    var shown = 0;
    rows.forEach(function (row) {
      var show = (!therapist || row.getAttribute("data-therapist") === therapist) &&
        tiers[row.getAttribute("data-tier")] === true;
      row.hidden = !show;
      if (show) { shown += 1; }
    });
    count.textContent = "Showing " + shown + " of " + data.n_clients + " clients";
    count.setAttribute("data-shown", String(shown));
    empty.hidden = shown !== 0;
  }

  readFragment();
  apply();
  // Marks that the filters ran (the browser test and any automation wait on it).
  document.getElementById("caseload").setAttribute("data-filters-ready", "true");
  select.addEventListener("change", function () { apply(); writeFragment(); });
  boxes.forEach(function (b) {
    b.addEventListener("change", function () { apply(); writeFragment(); });
  });
  window.addEventListener("hashchange", function () { readFragment(); apply(); });
})();
"""


def _csp(script: str) -> str:
    """No network, no plugins; only this page's own script (by hash) may run."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def _filters(scored: pd.DataFrame, tiers: list[str], tier_counts: Mapping[str, int]) -> str:
    therapists = sorted(scored[THERAPIST_ID].astype(str).unique())
    options = "".join(
        f'<option value="{escape_text(t)}">{escape_text(t)}</option>' for t in therapists
    )
    boxes = "".join(
        f'<label><input type="checkbox" name="tier" value="{escape_text(t)}" checked> '
        f'<span class="badge t-{t if t in TIERS else "other"}">{escape_text(t)}</span> '
        f'<span class="muted">({int(tier_counts.get(t, 0)):,})</span></label>'
        for t in tiers
    )
    return (
        '<section class="controls" aria-label="Filters">'
        '<div><label for="f-therapist">Therapist</label>'
        f'<select id="f-therapist"><option value="">All therapists ({len(therapists)})</option>'
        f"{options}</select></div>"
        f"<fieldset><legend>Risk tier</legend>{boxes}</fieldset>"
        f'<div id="shown-count" role="status" aria-live="polite" data-shown="{len(scored)}">'
        f"Showing {len(scored):,} of {len(scored):,} clients</div>"
        "</section>"
    )


def render_caseload_report(scored: pd.DataFrame, histories: pd.DataFrame, meta: ReportMeta) -> str:
    """The complete, self-contained HTML caseload report (ranked order of ``scored`` kept)."""
    _check_columns(scored, SCORED_COLUMNS, "scored")
    _check_columns(histories, HISTORY_COLUMNS, "histories")
    n = len(scored)
    max_charts = max(int(meta.max_charts), 0)
    charted = scored[CLIENT_ID].astype(str).iloc[:max_charts]
    hist = histories.assign(**{CLIENT_ID: histories[CLIENT_ID].astype(str)})
    charts = trajectory_charts(
        hist, charted, meta.symptom_scale, meta.alliance_scale, max(int(meta.max_chart_sessions), 1)
    )
    tiers = _tier_order(scored["risk_tier"].astype("string").str.lower())
    tier_counts: dict[str, int] = (
        dict(meta.tier_counts)
        if meta.tier_counts is not None
        else {
            str(k): int(v)
            for k, v in scored["risk_tier"].astype("string").str.lower().value_counts().items()
        }
    )
    model_ids = sorted(scored["model_id"].dropna().astype(str).unique())
    therapists = sorted(scored[THERAPIST_ID].astype(str).unique())
    data_payload = {
        "n_clients": n,
        "therapists": therapists,
        "tiers": tiers,
        "model_ids": model_ids,
        "generated_at": _date_text(meta.generated_at, with_time=True),
    }
    e = escape_text

    model_id_note = ""
    if len(model_ids) == 1 and model_ids[0] not in (meta.model_uri, meta.model_version):
        model_id_note = f"<p>Model id in scores: <code>{e(model_ids[0])}</code></p>"
    elif len(model_ids) > 1:
        model_id_note = (
            f'<p class="warn"><strong>Warning:</strong> scores come from {len(model_ids)} '
            "different models; ranks are not comparable across them.</p>"
        )
    tier_chips = "".join(
        f'<div class="tiercount t-{t if t in TIERS else "other"}"><b>'
        f"{int(tier_counts.get(t, 0)):,}</b><span>{e(t)}</span></div>"
        for t in tiers
    )
    chart_note = f"Charts show up to the latest {meta.max_chart_sessions} sessions of each client."
    if n > max_charts:
        chart_note = (
            f"Trajectory charts are drawn for the top {max_charts:,} clients by risk; the other "
            f"{n - max_charts:,} are listed without a chart to keep this file small. " + chart_note
        )
    generated = _date_text(meta.generated_at, with_time=True)
    date_range = f"{_date_text(meta.data_start)} to {_date_text(meta.data_end)}"

    head = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(_csp(_JS))}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{e(meta.title)}</title><style>{_CSS}</style></head><body>"
    )
    header = (
        '<header class="top">'
        f"<h1>{e(meta.title)}</h1>"
        f"<p>Generated {e(generated)} · Sessions from {e(date_range)} · {n:,} clients scored · "
        f"Model <strong>{e(meta.model_name)}</strong> version {e(meta.model_version)} "
        f"<code>{e(meta.model_uri)}</code></p>"
        "</header>"
    )
    test_note = f'<p class="muted">{e(meta.test_set_note)}</p>' if meta.test_set_note else ""
    cards = (
        '<section class="cards">'
        '<div class="card"><h2>Model performance on the held-out test set</h2>'
        f"{metrics_table(meta.test_metrics)}{test_note}{model_id_note}</div>"
        '<div class="card"><h2>This caseload</h2>'
        f'<div class="tiers">{tier_chips}</div>'
        f"<p>{e(meta.tier_definition) if meta.tier_definition else ''}</p>"
        f"<p class=muted>{e(meta.symptom_scale.name)} {_num(meta.symptom_scale.min)}–"
        f"{_num(meta.symptom_scale.max)}; alliance {e(meta.alliance_scale.name)} "
        f"{_num(meta.alliance_scale.min)}–{_num(meta.alliance_scale.max)}.</p></div>"
        '<div class="card"><h2>Data validation</h2>'
        f"{validation_table(meta.validation_summary)}</div>"
        "</section>"
    )
    notes = (
        '<section class="notes">'
        f'<div class="note"><h2>How to read this</h2><p>{e(meta.how_to_read)}</p></div>'
        f'<div class="note warn"><h2>Not for use as</h2><p>{e(meta.not_for_use_as)}</p></div>'
        "</section>"
    )
    table = (
        '<table class="caseload" id="caseload"><caption hidden>Clients ranked by dropout risk'
        "</caption><thead><tr>"
        '<th scope="col">#</th><th scope="col">Client</th><th scope="col">Therapist</th>'
        '<th scope="col">As of</th><th scope="col">Dropout risk</th><th scope="col">Tier</th>'
        '<th scope="col">Reasons</th><th scope="col">Flags</th>'
        '<th scope="col">Alliance &amp; symptoms over sessions</th></tr></thead><tbody>\n'
        + caseload_rows(scored, charts, max_charts)
        + "\n</tbody></table>"
        f'<p id="no-rows" class="muted"{"" if n == 0 else " hidden"}>'
        "No clients match the current filters.</p>"
    )
    foot = (
        f"<footer>Report generated {e(generated)} from model {e(meta.model_name)} "
        f"{e(meta.model_version)}. Contains identifiers of clients in care: handle under the "
        "clinic's data-protection rules.</footer>"
    )
    return (
        head
        + chart_frame_symbol(meta.symptom_scale, meta.alliance_scale)
        + header
        + "<main>"
        + cards
        + notes
        + _filters(scored, tiers, tier_counts)
        + _legend(meta.symptom_scale, meta.alliance_scale)
        + f'<p class="chartnote">{e(chart_note)}</p>'
        + table
        + foot
        + "</main>"
        + '<script type="application/json" id="report-data">'
        + json_for_script(data_payload)
        + "</script>"
        + f"<script>{_JS}</script>"
        + "</body></html>\n"
    )
