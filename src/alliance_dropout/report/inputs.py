"""What the report is given: the two frames (their columns) and the run's metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

import pandas as pd

from alliance_dropout.contract import (
    ALLIANCE_CLIENT,
    ALLIANCE_THERAPIST,
    ATTENDANCE,
    CLIENT_ID,
    FLAG_BEYOND_TRAINING_RANGE,
    FLAG_LOW_ALLIANCE,
    FLAG_OFF_EXPECTED_COURSE,
    FLAG_RECENT_MISSED,
    FLAG_UNREPAIRED_RUPTURE,
    PHQ9,
    RISK_TIERS,
    SESSION_DATE,
    SESSION_NUMBER,
    SYMPTOM_SCORE,
    WAI_SR,
    Scale,
    risk_list_columns,
)

TIERS = RISK_TIERS
RUPTURE = "rupture"

# Flag column -> (label shown to the analyst, icon, css class).
FLAGS: dict[str, tuple[str, str, str]] = {
    FLAG_UNREPAIRED_RUPTURE: ("Unrepaired rupture", "▲", "f-rupture"),
    FLAG_LOW_ALLIANCE: ("Low alliance", "▼", "f-alliance"),
    FLAG_OFF_EXPECTED_COURSE: ("Off expected course", "↗", "f-course"),
    FLAG_RECENT_MISSED: ("Recent missed session", "✕", "f-missed"),
    FLAG_BEYOND_TRAINING_RANGE: ("Past the sessions the model learned from", "?", "f-range"),
}

# the scoring stage's output (the ranked risk list) is the report's input; the columns of the
# risk within each horizon (dropout_risk_within_<h>) are shown when present
SCORED_COLUMNS = risk_list_columns(())
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
    "their latest recorded session. Each reason says which way it moved the estimate (↑ raises "
    "the risk, ↓ lowers it) and roughly how far; the flags are simple rules on the session "
    "record. Use the list to decide whom to discuss first and what to raise in the next session: "
    "repair a rupture, revisit goals, follow up a missed appointment. Click a chart to enlarge "
    "it; the words used are explained under 'Words used in this report'."
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
    # "share" (tiers relative to this caseload) or "probability" (fixed risk cut-offs); when
    # empty, read from the wording of ``tier_definition`` (see ``tier_basis``).
    tier_mode: str = ""
    test_set_note: str = ""
    how_to_read: str = DEFAULT_HOW_TO_READ
    not_for_use_as: str = DEFAULT_NOT_FOR_USE_AS
    # Beyond these the page lists clients without charts, so a huge caseload stays a small file.
    max_charts: int = 2000
    # Only the latest sessions of a very long episode are drawn.
    max_chart_sessions: int = 40


def check_columns(df: pd.DataFrame, required: tuple[str, ...], name: str) -> None:
    """Fail early, naming the missing columns, rather than deep inside the drawing code."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{name} frame lacks column(s): {', '.join(missing)}")


def tier_css(tier: str) -> str:
    """The css class suffix of a tier: its own name if known, else "other"."""
    return tier if tier in TIERS else "other"


def tier_basis(meta: ReportMeta) -> str:
    """ "relative" (tiers are shares of this caseload), "absolute" (risk cut-offs) or ""."""
    mode = meta.tier_mode.strip().lower()
    if not mode:
        text = meta.tier_definition.lower()
        mode = "share" if "riskiest" in text else "probability" if "risk ≥" in text else ""
    return {"share": "relative", "probability": "absolute"}.get(mode, "")
