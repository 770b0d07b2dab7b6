"""Inline-SVG trajectory charts, one per client, drawn with vectorised pandas string operations.

Alliance (client and therapist) and symptom score over sessions, ruptures and missed
appointments marked. No Python loop over clients: every client's ``<svg>`` comes out of a few
column-wise concatenations and group-wise joins. The fragments are built as strings, so the
only data-derived text in them (the chart's title) is escaped here, at build time; the rest is
numbers, dates and constants.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import Markup

from alliance_dropout.contract import (
    ALLIANCE_CLIENT,
    ALLIANCE_THERAPIST,
    ATTENDANCE,
    CANCELLED,
    CLIENT_ID,
    NO_SHOW,
    SESSION_DATE,
    SESSION_NUMBER,
    SYMPTOM_SCORE,
    Scale,
)
from alliance_dropout.report.formatting import escape_series, escape_text, fmt, num
from alliance_dropout.report.inputs import RUPTURE

CHART_W, CHART_H = 280, 116
PLOT_X0, PLOT_X1 = 24, 276
ALLIANCE_Y0, ALLIANCE_Y1 = 11, 49  # top and bottom of the alliance panel
SYMPTOM_Y0, SYMPTOM_Y1 = 63, 95  # top and bottom of the symptom panel
ATTENDANCE_Y = 102  # strip for missed appointments
SESSION_LABEL_Y = 114  # first and last session number

# Marker shapes (SVG path data), shared with the legend.
MARKER_SHAPES = {
    "rupture": "M0 4L-4.5-3.5H4.5Z",
    "no_show": "M-3-3L3 3M-3 3L3-3",
    "cancelled": "M-2.6 0a2.6 2.6 0 1 0 5.2 0a2.6 2.6 0 1 0-5.2 0",
}


def _coord(values: np.ndarray) -> np.ndarray:
    """SVG coordinates with one decimal and no trailing '.0' (keeps chart paths compact)."""
    text = np.char.mod("%.1f", np.round(values, 1))
    return np.char.replace(text, ".0", "") if text.size else text


def _y_on(values: pd.Series, scale: Scale, top: float, bottom: float) -> pd.Series:
    """Map scale values onto a panel (higher value = higher on screen), clipped to the panel."""
    frac = (values.astype(float) - scale.min) / (scale.max - scale.min)
    return bottom - frac.clip(0, 1) * (bottom - top)


def chart_frame_symbol(symptom: Scale, alliance: Scale) -> Markup:
    """The static axes shared by every chart, defined once and drawn with ``<use>``."""
    cutoff = ""
    if symptom.clinical_cutoff is not None:
        y = _y_on(pd.Series([symptom.clinical_cutoff]), symptom, SYMPTOM_Y0, SYMPTOM_Y1).iloc[0]
        cutoff = f'<line class="cut" x1="{PLOT_X0}" x2="{PLOT_X1}" y1="{y:.1f}" y2="{y:.1f}"/>'
        # Label the cutoff on the axis unless it would overprint the min/max labels.
        if SYMPTOM_Y0 + 9 < y < SYMPTOM_Y1 - 8:
            cutoff += (
                f'<text class="tick" x="{PLOT_X0 - 3}" y="{y + 3:.1f}" text-anchor="end">'
                f"{escape_text(num(symptom.clinical_cutoff))}</text>"
            )
    mid = (ALLIANCE_Y0 + ALLIANCE_Y1) / 2
    # every interpolated text is escaped above or here: the result is safe markup
    return Markup(
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
        f"{escape_text(num(alliance.max))}</text>"
        f'<text class="tick" x="{PLOT_X0 - 3}" y="{ALLIANCE_Y1}" text-anchor="end">'
        f"{escape_text(num(alliance.min))}</text>"
        f'<text class="tick" x="{PLOT_X0 - 3}" y="{SYMPTOM_Y0 + 6}" text-anchor="end">'
        f"{escape_text(num(symptom.max))}</text>"
        f'<text class="tick" x="{PLOT_X0 - 3}" y="{SYMPTOM_Y1}" text-anchor="end">'
        f"{escape_text(num(symptom.min))}</text>"
        "</symbol></svg>"
    )


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
        return fmt(g[col].first(), 1) + " → " + fmt(g[col].last(), 1)

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
    The values are safe markup: the only data-derived text, the title, is escaped.
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
        _markers(
            rup, rup["ya"].fillna(ALLIANCE_Y0 + 4), MARKER_SHAPES["rupture"], "m-rup", "rupture"
        )
    )
    noshow = h[h[ATTENDANCE] == NO_SHOW]
    parts.append(
        _markers(
            noshow,
            pd.Series(ATTENDANCE_Y, index=noshow.index, dtype=float),
            MARKER_SHAPES["no_show"],
            "m-noshow",
            "no-show",
        )
    )
    cancelled = h[h[ATTENDANCE] == CANCELLED]
    parts.append(
        _markers(
            cancelled,
            pd.Series(ATTENDANCE_Y, index=cancelled.index, dtype=float),
            MARKER_SHAPES["cancelled"],
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

    label = escape_series(_trajectory_label(h, symptom).reindex(ids))
    return (
        f'<svg class="spark" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" '
        # A first-child <title> is the chart's accessible name and its tooltip.
        f'height="{CHART_H}" role="img"><title>'
        + label
        + '</title><use href="#spark-frame"/>'
        + body
        + "</svg>"
    )
