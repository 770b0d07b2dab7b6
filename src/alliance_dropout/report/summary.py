"""The header cards' tables as plain rows of text: test-set metrics and validation counts.

Only the wording and number formatting are decided here; the template lays the rows out and
escapes them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from alliance_dropout.report.inputs import MetricEstimate


class MetricRow(NamedTuple):
    name: str
    value: str
    ci: str
    hint: str


class ValidationRow(NamedTuple):
    """One count, or (``counts`` not None) a group of counts, e.g. failures per check."""

    label: str
    value: str = ""
    counts: list[tuple[str, str]] | None = None


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


def metric_hint(name: str) -> str:
    return _METRIC_HINTS.get(re.sub(r"[^a-z]", "", name.lower()), "")


def metric_value(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def metric_rows(metrics: Mapping[str, tuple[float, float | None, float | None]]) -> list[MetricRow]:
    rows = []
    for name, estimate in metrics.items():
        m = MetricEstimate(*estimate)
        ci = (
            f"{metric_value(m.ci_low)} – {metric_value(m.ci_high)}"
            if m.ci_low is not None and m.ci_high is not None
            else "–"
        )
        rows.append(MetricRow(str(name), metric_value(m.value), ci, metric_hint(name)))
    return rows


def humanise(key: str) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def count_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):,.4g}"
    return str(value)


def validation_rows(summary: Mapping[str, Any]) -> list[ValidationRow]:
    """Aggregate counts only; nested mappings (e.g. failures per check) as groups."""
    return [
        ValidationRow(
            humanise(key),
            counts=[(str(sub), count_text(count)) for sub, count in value.items()],
        )
        if isinstance(value, Mapping)
        else ValidationRow(humanise(key), count_text(value))
        for key, value in summary.items()
    ]
