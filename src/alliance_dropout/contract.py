"""The input data contract (see ``shared/data-contract.md``): canonical names, categories, scales.

Everything here is plain data so that every stage (simulation, validation, features, scoring)
speaks the same vocabulary. The pandera schemas that enforce the contract live in
``alliance_dropout.schemas``.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- sessions table: one row per scheduled appointment of a treatment episode -----------------
CLIENT_ID = "client_id"
THERAPIST_ID = "therapist_id"
SESSION_NUMBER = "session_number"
SESSION_DATE = "session_date"
ATTENDANCE = "attendance"
ALLIANCE_CLIENT = "alliance_client"
ALLIANCE_THERAPIST = "alliance_therapist"
ALLIANCE_GOAL = "alliance_goal"
ALLIANCE_TASK = "alliance_task"
ALLIANCE_BOND = "alliance_bond"
SYMPTOM_SCORE = "symptom_score"

SESSION_REQUIRED = (CLIENT_ID, THERAPIST_ID, SESSION_NUMBER, SESSION_DATE, ATTENDANCE)
SESSION_NULLABLE = (ALLIANCE_CLIENT, ALLIANCE_THERAPIST, SYMPTOM_SCORE)
ALLIANCE_SUBSCALES = (ALLIANCE_GOAL, ALLIANCE_TASK, ALLIANCE_BOND)
SESSION_COLUMNS = SESSION_REQUIRED + SESSION_NULLABLE + ALLIANCE_SUBSCALES
# Columns that must be present in every sessions file (nullable ones may be all empty).
SESSION_MANDATORY = SESSION_REQUIRED + SESSION_NULLABLE
# Scores recorded only on attended rows.
SESSION_SCORES = (ALLIANCE_CLIENT, ALLIANCE_THERAPIST, *ALLIANCE_SUBSCALES, SYMPTOM_SCORE)

ATTENDED = "attended"
CANCELLED = "cancelled"
NO_SHOW = "no_show"
ATTENDANCE_VALUES = (ATTENDED, CANCELLED, NO_SHOW)

# --- outcomes table: one row per episode ------------------------------------------------------
STATUS = "status"
COMPLETED = "completed"
DROPOUT = "dropout"
ONGOING = "ongoing"
STATUS_VALUES = (COMPLETED, DROPOUT, ONGOING)
OUTCOME_COLUMNS = (CLIENT_ID, STATUS)

# --- scoring outputs: the ranked risk list (and the report built from it) -------------------
AS_OF_SESSION = "as_of_session"
AS_OF_DATE = "as_of_date"
DROPOUT_RISK = "dropout_risk"
RISK_TIER = "risk_tier"
TOP_REASONS = "top_reasons"
MODEL_ID = "model_id"
RISK_TIERS = ("high", "medium", "low")

FLAG_UNREPAIRED_RUPTURE = "flag_unrepaired_rupture"
FLAG_LOW_ALLIANCE = "flag_low_alliance"
FLAG_OFF_EXPECTED_COURSE = "flag_off_expected_course"
FLAG_RECENT_MISSED = "flag_recent_missed"
# the client is past the last session the model was trained at: its risk is not extrapolated
# further (trees hold it at the edge), but it deserves less trust
FLAG_BEYOND_TRAINING_RANGE = "flag_beyond_training_range"
FLAG_COLUMNS = (
    FLAG_UNREPAIRED_RUPTURE,
    FLAG_LOW_ALLIANCE,
    FLAG_OFF_EXPECTED_COURSE,
    FLAG_RECENT_MISSED,
    FLAG_BEYOND_TRAINING_RANGE,
)
# the risk of dropout within the next h scheduled sessions (this one included)
DEFAULT_HORIZONS = (1, 4)


def dropout_risk_within(h: int) -> str:
    return f"{DROPOUT_RISK}_within_{h}"


def risk_columns(horizons: tuple[int, ...] | list[int] = DEFAULT_HORIZONS) -> tuple[str, ...]:
    """The eventual risk and one column per horizon."""
    return (DROPOUT_RISK, *(dropout_risk_within(h) for h in horizons))


def risk_list_columns(horizons: tuple[int, ...] | list[int] = DEFAULT_HORIZONS) -> tuple[str, ...]:
    """The columns of the ranked risk list (scoring's output, the report's input)."""
    return (
        CLIENT_ID,
        THERAPIST_ID,
        AS_OF_SESSION,
        AS_OF_DATE,
        *risk_columns(horizons),
        RISK_TIER,
        TOP_REASONS,
        *FLAG_COLUMNS,
        MODEL_ID,
    )


RISK_LIST_COLUMNS = risk_list_columns()
# what the served model answers per client (plus one column per horizon of the model)
SERVED_COLUMNS = (CLIENT_ID, AS_OF_SESSION, DROPOUT_RISK)

# Missing-value spellings the contract names; ``inf`` is deliberately *not* one of them.
NA_VALUES = ("", "NA", "NaN", "nan", "null")

# Characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Scale:
    """Facts of one rating instrument. ``reliable_change`` is the Jacobson-Truax RCI in points."""

    name: str
    min: float
    max: float
    clinical_cutoff: float | None = None
    reliable_change: float | None = None
    higher_is_worse: bool = True


# Kroenke, Spitzer & Williams 2001 (cutoff 10); reliable change 6 points as used by
# NHS Talking Therapies (IAPT) and the data contract.
PHQ9 = Scale("PHQ-9", 0, 27, clinical_cutoff=10, reliable_change=6, higher_is_worse=True)
# Spitzer et al. 2006; NHS Talking Therapies caseness >= 8, reliable change 4 points.
GAD7 = Scale("GAD-7", 0, 21, clinical_cutoff=8, reliable_change=4, higher_is_worse=True)
# Barkham et al. 2013: CORE-10 total 0-40, clinical cutoff 11, reliable change 6 points.
CORE10 = Scale("CORE-10", 0, 40, clinical_cutoff=11, reliable_change=6, higher_is_worse=True)
# Hatcher & Gillaspy 2006 (WAI-SR), item mean 1-5; higher is a stronger alliance.
WAI_SR = Scale("WAI-SR", 1, 5, higher_is_worse=False)
