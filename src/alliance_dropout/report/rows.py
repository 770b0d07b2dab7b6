"""The caseload table's ``<tbody>`` rows, built column-wise for all clients at once.

A template loop would cost tens of microseconds per client; at 100,000 clients that is
seconds. So the rows are concatenated with vectorised pandas string operations and handed to
the template as one ``Markup`` string. Every data-derived text in them (client and therapist
ids, tiers, reasons) is escaped here with ``escape_series``; the rest is numbers, dates,
constants and the charts, which escape their own text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import Markup

from alliance_dropout.contract import (
    AS_OF_DATE,
    AS_OF_SESSION,
    CLIENT_ID,
    DROPOUT_RISK,
    RISK_TIER,
    THERAPIST_ID,
    TOP_REASONS,
)
from alliance_dropout.report.formatting import escape_series, fmt, risk_percent_label
from alliance_dropout.report.inputs import FLAGS, TIERS

UP, DOWN = "↑", "↓"  # how the scoring stage marks a reason's direction


def _reasons(top_reasons: pd.Series) -> pd.Series:
    """The " | "-separated reasons as a list; a leading ↑ / ↓ marks the direction.

    Reasons in the scoring stage's format ("↑ words (raises risk by about 4 percentage
    points)") get a direction class (the stylesheet draws the arrow) and their effect set
    apart; others are shown as given. The markup is added to already escaped text.
    """
    reasons = escape_series(top_reasons).str.strip()
    items = "<li>" + reasons.str.replace(" | ", "</li><li>", regex=False) + "</li>"
    for arrow, css in ((UP, "up"), (DOWN, "down")):
        items = items.str.replace(f"<li>{arrow} ", f'<li class="{css}">', regex=False)
    items = items.str.replace(
        r" \(((?:raises|lowers) risk[^()<]*)\)</li>", r" <small>(\1)</small></li>", regex=True
    )
    return ('<ul class="reasons">' + items + "</ul>").where(
        reasons != "", '<span class="muted">No reason given</span>'
    )


def _horizons(s: pd.DataFrame) -> pd.Series:
    """'within 1 session 3% · within 4 sessions 11%' under the eventual risk, where present."""
    parts = []
    for col in s.columns:
        h = str(col).removeprefix(f"{DROPOUT_RISK}_within_")
        if h == str(col) or not h.isdigit():
            continue
        risk = pd.to_numeric(s[col], errors="coerce").astype(float)
        label = f"within {h} session{'s' if h != '1' else ''} "
        parts.append((label + risk_percent_label(risk)).where(risk.notna(), ""))
    if not parts:
        return pd.Series("", index=s.index, dtype=str)
    text = parts[0]
    for p in parts[1:]:
        text = text.str.cat(p, sep=" · ").str.strip(" ·")
    return ('<span class="horizons">' + text + "</span>").where(text != "", "")


def _flags(s: pd.DataFrame) -> pd.Series:
    """A labelled pill per raised flag."""
    flags = pd.Series("", index=s.index, dtype=str)
    for col, (label, icon, css) in FLAGS.items():
        on = s[col].astype("boolean").fillna(False).to_numpy(dtype=bool)
        pill = (
            f'<span class="flag {css}" title="{label}">'
            f'<span aria-hidden="true">{icon}</span> {label}</span>'
        )
        flags = flags + pd.Series(np.where(on, pill, ""), index=s.index, dtype=str)
    return flags.where(flags != "", '<span class="muted">–</span>')


def _charts(s: pd.DataFrame, charts: pd.Series, max_charts: int, client: pd.Series) -> pd.Series:
    """Each client's chart as a button that opens it large (static/report.js), or why none."""
    chart = charts.reindex(s[CLIENT_ID].astype(str))
    chart.index = s.index
    button = (
        '<button type="button" class="chartbtn" title="Click to enlarge" aria-label="Enlarge '
        "the chart of client "
        + client
        + '">'
        + chart.fillna("")
        + '<span class="zoom" aria-hidden="true">⤢</span></button>'
    )
    out = button.where(chart.notna(), '<span class="muted">No sessions on record</span>')
    beyond = pd.Series(np.arange(len(s)) >= max_charts, index=s.index)
    return out.where(~beyond, f'<span class="muted">Chart omitted (rank &gt; {max_charts})</span>')


def caseload_rows(scored: pd.DataFrame, charts: pd.Series, max_charts: int) -> Markup:
    """The ``<tbody>`` rows, in the order given (the scoring stage's ranking), one per line.

    ``charts`` holds safe SVG markup per client id (see ``charts.trajectory_charts``).
    """
    s = scored.reset_index(drop=True)
    n = len(s)
    rank = pd.Series(np.arange(1, n + 1), index=s.index).astype(str)
    client = escape_series(s[CLIENT_ID])
    therapist = escape_series(s[THERAPIST_ID])
    tier_raw = s[RISK_TIER].astype("string").fillna("unknown").str.lower()
    tier = escape_series(tier_raw)
    tier_class = tier_raw.where(tier_raw.isin(TIERS), "other").astype(str)
    risk = pd.to_numeric(s[DROPOUT_RISK], errors="coerce").astype(float)
    bar_width = fmt((risk.clip(0, 1) * 100).round(1), 1, missing="0")
    as_of_date = pd.to_datetime(s[AS_OF_DATE], errors="coerce")
    date_text = as_of_date.dt.strftime("%Y-%m-%d").fillna("–").astype(str)
    as_of_session = fmt(s[AS_OF_SESSION], 0)

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
        + '%"></span></span><span class="badge t-'
        + tier_class
        + '">'
        + tier
        + "</span>"
        + _horizons(s)
        + '</td><td class="reasons">'
        + _reasons(s[TOP_REASONS])
        + '</td><td class="flags">'
        + _flags(s)
        + '</td><td class="chart">'
        + _charts(s, charts, max_charts, client)
        + "</td></tr>"
    )
    # every data-derived text above was escaped by escape_series: the rows are safe markup
    return Markup("\n".join(rows.tolist()))
