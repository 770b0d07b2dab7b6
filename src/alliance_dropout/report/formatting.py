"""Escaping and number/date formatting for the parts of the page built outside the template.

The template escapes everything it is given (Jinja2 autoescape). What is built here instead,
for speed (one vectorised pass over all clients rather than a template loop per client), must
escape its data-derived text itself: ``escape_series`` for columns, ``escape_text`` for single
values, ``json_for_script`` for the JSON embedded in a ``<script>`` element.
"""

from __future__ import annotations

import html
import json
from datetime import date, datetime
from typing import Any

import pandas as pd


def escape_text(value: object) -> str:
    """HTML-escape any value for element text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def escape_series(s: pd.Series) -> pd.Series:
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


def fmt(values: pd.Series, decimals: int, missing: str = "–") -> pd.Series:
    """Numbers as fixed-decimal text, ``missing`` for NaN (vectorised)."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    spec = f"%.{decimals}f"  # printf-style, as np.char.mod formats (a Python loop is faster)
    text = pd.Series([spec % x for x in v.fillna(0).to_numpy().tolist()], index=v.index)
    return text.where(v.notna(), missing).astype(str)


def risk_percent_label(risk: pd.Series) -> pd.Series:
    """Probabilities as whole percentages; '<1%' rather than a misleading '0%'."""
    pct = (pd.to_numeric(risk, errors="coerce").astype(float) * 100).round()
    label = fmt(pct, 0) + "%"
    return label.where(~(pct < 1), "<1%").where(pct.notna(), "–").astype(str)


def num(x: float) -> str:
    """A scale value as short as it goes: 27, 7.5."""
    return f"{x:g}"


def date_text(d: date | datetime | pd.Timestamp | None, with_time: bool = False) -> str:
    if d is None or pd.isna(d):
        return "–"
    ts = pd.Timestamp(d)
    return ts.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
