"""The caseload table's ``<tbody>`` rows, built column-wise for all clients at once.

A template loop would cost tens of microseconds per client; at 100,000 clients that is
seconds. So the rows are concatenated with vectorised pandas string operations and handed to
the template as one ``Markup`` string. Every data-derived text in them (client and therapist
ids, tiers, reasons) is escaped here with ``escape_series``; the rest is numbers, dates,
constants and the charts, which escape their own text.
"""

from __future__ import annotations

import html
import re

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


def _reasons(top_reasons: pd.Series) -> list[str]:
    """The " | "-separated reasons as a list; a leading ↑ / ↓ marks the direction.

    Reasons in the scoring stage's format ("↑ words (raises risk by about 4 percentage
    points)") get a direction class (the stylesheet draws the arrow) and their effect set
    apart; others are shown as given. The markup is added to already escaped text. A caseload
    repeats its reasons, so each distinct reason is marked up once.
    """
    text = top_reasons.astype("string").fillna("").astype(str).str.strip().tolist()
    item: dict[str, str] = {}
    out = []
    for reasons in text:
        if not reasons:
            out.append('<span class="muted">No reason given</span>')
            continue
        items = []
        for reason in reasons.split(" | "):
            marked = item.get(reason)
            if marked is None:
                marked = item[reason] = _reason_item(reason)
            items.append(marked)
        out.append('<ul class="reasons">' + "".join(items) + "</ul>")
    return out


def _horizons(s: pd.DataFrame) -> list[str]:
    """'within 1 session 3% · within 4 sessions 11%' under the eventual risk, where present."""
    parts = []
    for col in s.columns:
        h = str(col).removeprefix(f"{DROPOUT_RISK}_within_")
        if h == str(col) or not h.isdigit():
            continue
        risk = pd.to_numeric(s[col], errors="coerce").astype(float)
        label = f"within {h} session{'s' if h != '1' else ''} "
        parts.append((label + risk_percent_label(risk)).where(risk.notna(), "").tolist())
    out = []
    for texts in zip(*parts, strict=True) if parts else ([] for _ in range(len(s))):
        text = " · ".join(t for t in texts if t)
        out.append(f'<span class="horizons">{text}</span>' if text else "")
    return out


# the effect at the end of a reason: "... (raises risk by about 4 percentage points)"
_EFFECT = re.compile(r" \(((?:raises|lowers) risk[^()<]*)\)\Z")


def _reason_item(reason: str) -> str:
    """One reason as a list item: escaped, its direction a class, its effect in small print."""
    text = html.escape(reason, quote=True)
    css = ""
    for arrow, name in ((UP, "up"), (DOWN, "down")):
        if text.startswith(f"{arrow} "):
            text, css = text[len(arrow) + 1 :], f' class="{name}"'
            break
    text = _EFFECT.sub(r" <small>(\1)</small>", text)
    return f"<li{css}>{text}</li>"


def _flags(s: pd.DataFrame) -> list[str]:
    """A labelled pill per raised flag (the 16 combinations of four flags written once)."""
    pills = [
        f'<span class="flag {css}" title="{label}"><span aria-hidden="true">{icon}</span> '
        f"{label}</span>"
        for label, icon, css in FLAGS.values()
    ]
    combination = np.zeros(len(s), dtype=np.int64)
    for bit, col in enumerate(FLAGS):
        on = s[col].astype("boolean").fillna(False).to_numpy(dtype=bool)
        combination |= on.astype(np.int64) << bit
    cells = [
        "".join(pill for bit, pill in enumerate(pills) if k >> bit & 1)
        or '<span class="muted">–</span>'
        for k in range(2 ** len(pills))
    ]
    return [cells[k] for k in combination.tolist()]


def _charts(s: pd.DataFrame, charts: pd.Series, max_charts: int, client: list[str]) -> list[str]:
    """Each client's chart as a button that opens it large (static/report.js), or why none."""
    chart_of = charts.to_dict()
    ids = s[CLIENT_ID].astype(str).tolist()
    omitted = f'<span class="muted">Chart omitted (rank &gt; {max_charts})</span>'
    cells = []
    for rank, (cid, name) in enumerate(zip(ids, client, strict=True)):
        chart = chart_of.get(cid) if rank < max_charts else None
        if rank >= max_charts:
            cells.append(omitted)
        elif chart is None or pd.isna(chart):
            cells.append('<span class="muted">No sessions on record</span>')
        else:
            cells.append(
                '<button type="button" class="chartbtn" title="Click to enlarge" aria-label='
                f'"Enlarge the chart of client {name}">{chart}<span class="zoom" '
                'aria-hidden="true">⤢</span></button>'
            )
    return cells


def caseload_rows(scored: pd.DataFrame, charts: pd.Series, max_charts: int) -> Markup:
    """The ``<tbody>`` rows, in the order given (the scoring stage's ranking), one per line.

    ``charts`` holds safe SVG markup per client id (see ``charts.trajectory_charts``). Each
    column is formatted for all clients at once; each row is then one f-string (adding columns
    to a pandas string column copies every longer prefix again: seconds at 100,000 clients).
    """
    s = scored.reset_index(drop=True)
    client = escape_series(s[CLIENT_ID]).tolist()
    therapist = escape_series(s[THERAPIST_ID]).tolist()
    tier_raw = s[RISK_TIER].astype("string").fillna("unknown").str.lower()
    tier = escape_series(tier_raw).tolist()
    tier_class = tier_raw.where(tier_raw.isin(TIERS), "other").astype(str).tolist()
    risk = pd.to_numeric(s[DROPOUT_RISK], errors="coerce").astype(float)
    bar_width = fmt((risk.clip(0, 1) * 100).round(1), 1, missing="0").tolist()
    as_of_date = pd.to_datetime(s[AS_OF_DATE], errors="coerce")
    date_text = as_of_date.dt.strftime("%Y-%m-%d").fillna("–").astype(str).tolist()
    as_of_session = fmt(s[AS_OF_SESSION], 0).tolist()
    columns = zip(
        client,
        therapist,
        tier,
        tier_class,
        as_of_session,
        date_text,
        risk_percent_label(risk).tolist(),
        bar_width,
        _reasons(s[TOP_REASONS]),
        _flags(s),
        _charts(s, charts, max_charts, client),
        _horizons(s),
        strict=True,
    )
    rows = [
        f'<tr data-rank="{rank}" data-therapist="{ther}" data-tier="{t}"><td class="rank">'
        f'{rank}</td><td class="client"><span class="cid">{cid}</span></td><td class="ther">'
        f'{ther}</td><td class="asof">Session {session}<br><span class="muted">{day}</span>'
        f'</td><td class="risk"><span class="pct">{pct}</span><span class="bar"><span '
        f'class="fill t-{css}" style="width:{width}%"></span></span><span class="badge '
        f't-{css}">{t}</span>{ahead}</td><td class="reasons">{reasons}</td><td class="flags">'
        f'{flags}</td><td class="chart">{chart}</td></tr>'
        for rank, (
            cid,
            ther,
            t,
            css,
            session,
            day,
            pct,
            width,
            reasons,
            flags,
            chart,
            ahead,
        ) in enumerate(columns, start=1)
    ]
    # every data-derived text above was escaped by escape_series: the rows are safe markup
    return Markup("\n".join(rows))
