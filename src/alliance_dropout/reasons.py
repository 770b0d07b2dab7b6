"""Plain-language reasons: the features pushing one client's risk up most, with their values.

A reason is written from the feature's own value so a clinician can check it against the
record ('client alliance fell 1.1 points over the last 3 sessions'), never from the model's
internals. Features without a phrase of their own fall back to their dictionary definition.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

Phrase = Callable[[float], str]

# Reasons are about the client's own course, something to raise in the next session. Therapist
# context still counts in the risk, but it is not a reason a clinician can act on with this
# client, and the tool must not read as an appraisal of the therapist (model card).
NOT_REASONS = frozenset(
    {"therapist_dropout_rate", "therapist_mean_alliance", "therapist_n_clients"}
)


def _pts(v: float) -> str:
    return f"{abs(v):.1f} point{'s' if abs(v) != 1 else ''}"


def _n(v: float, unit: str) -> str:
    k = round(v)
    return f"{k} {unit}{'s' if k != 1 else ''}"


def phrases(
    recent_alliance: int, recent_attendance: int, symptom: str, early_session: int = 4
) -> dict[str, Phrase]:
    """Phrase per feature name; values are the feature's value for the client."""
    return {
        "alliance_client_latest": lambda v: (
            f"client-rated alliance {v:.1f} of 5 at the last rating"
        ),
        "alliance_client_first": lambda v: f"client-rated alliance started at {v:.1f} of 5",
        "alliance_therapist_first": lambda v: f"therapist-rated alliance started at {v:.1f} of 5",
        "alliance_therapist_mean": lambda v: f"therapist-rated alliance averages {v:.1f} of 5",
        "alliance_client_rated_sessions": lambda v: f"{_n(v, 'alliance rating')} so far",
        "alliance_client_sd": lambda v: f"client alliance varies by {v:.2f} points (SD)",
        "alliance_weakest_subscale_gap": lambda v: (
            f"one alliance subscale (goals, tasks or bond) lags the others by {_pts(v)}"
        ),
        "alliance_rater_correlation": lambda v: (
            f"client and therapist alliance ratings move {'together' if v > 0 else 'apart'} "
            f"(r = {v:.2f})"
        ),
        "alliance_symptom_coupling": lambda v: (
            f"alliance and next-session symptom change are coupled (r = {v:.2f})"
        ),
        "symptom_first": lambda v: f"{symptom} {v:.0f} at the start",
        "symptom_recent_slope": lambda v: (
            f"{symptom} {'improving' if v < 0 else 'worsening' if v > 0 else 'flat'} "
            f"({v:+.2f} points per session recently)"
        ),
        "symptom_early_response": lambda v: (
            f"{'an early response' if v >= 0.5 else 'no early response'} in {symptom} "
            f"by session {early_session}"
        ),
        "symptom_reliable_improvement": lambda v: f"{symptom} reliably improved",
        "sudden_gain_count": lambda v: f"{_n(v, 'sudden gain')} in {symptom}",
        "attendance_attended": lambda v: f"{_n(v, 'session')} attended so far",
        "attendance_scheduled": lambda v: f"{_n(v, 'appointment')} scheduled so far",
        "attendance_mean_gap_days": lambda v: f"{v:.0f} days between sessions on average",
        "attendance_max_gap_days": lambda v: f"a gap of {v:.0f} days between sessions",
        "attendance_sessions_per_week": lambda v: f"{v:.1f} sessions per week",
        "alliance_client_mean": lambda v: f"client-rated alliance averages {v:.1f} of 5",
        "alliance_client_min": lambda v: f"client-rated alliance fell as low as {v:.1f} of 5",
        "alliance_client_change": lambda v: (
            f"client alliance {'fell' if v < 0 else 'rose'} {_pts(v)} since the first rating"
        ),
        "alliance_client_slope": lambda v: (
            f"client alliance {'falling' if v < 0 else 'rising'} {abs(v):.2f} points per session"
        ),
        "alliance_client_recent_slope": lambda v: (
            f"client alliance {'fell' if v < 0 else 'rose'} {_pts(v * (recent_alliance - 1))} "
            f"over the last {recent_alliance} ratings"
        ),
        "alliance_client_low_sessions": lambda v: (
            f"{_n(v, 'session')} with client alliance below the low-alliance cutoff"
        ),
        "alliance_therapist_latest": lambda v: f"therapist-rated alliance {v:.1f} of 5",
        "alliance_therapist_recent_slope": lambda v: (
            f"therapist alliance {'fell' if v < 0 else 'rose'} {_pts(v * (recent_alliance - 1))} "
            f"over the last {recent_alliance} ratings"
        ),
        "alliance_gap_latest": lambda v: (
            f"client rates the alliance {_pts(v)} {'lower' if v < 0 else 'higher'} "
            "than the therapist does"
        ),
        "alliance_gap_mean": lambda v: (
            f"client and therapist alliance ratings differ by {_pts(v)} on average"
        ),
        "rupture_open": lambda v: "an alliance rupture is open (not yet repaired)",
        "rupture_unrepaired_count": lambda v: f"{_n(v, 'unrepaired rupture')} in the alliance",
        "rupture_count": lambda v: f"{_n(v, 'alliance rupture')} so far",
        "rupture_max_drop": lambda v: f"largest alliance drop {_pts(v)} between sessions",
        "sessions_since_rupture": lambda v: f"last alliance rupture {_n(v, 'session')} ago",
        "symptom_latest": lambda v: f"{symptom} {v:.0f} at the last measurement",
        "symptom_change": lambda v: (
            f"{symptom} {'improved' if v < 0 else 'worsened' if v > 0 else 'unchanged'} "
            f"{_pts(v)} since the first session"
        ),
        "symptom_slope": lambda v: f"{symptom} changing {v:+.2f} points per session",
        "symptom_latest_vs_expected": lambda v: (
            f"{symptom} {_pts(v)} {'worse' if v > 0 else 'better'} than expected for "
            "clients starting at this severity"
        ),
        "alliance_client_latest_vs_expected": lambda v: (
            f"client alliance {_pts(v)} {'below' if v < 0 else 'above'} the expected course"
        ),
        "symptom_reliable_deterioration": lambda v: f"{symptom} reliably deteriorated",
        "sudden_loss_count": lambda v: f"{_n(v, 'sudden symptom worsening')}",
        "attendance_recent_missed_share": lambda v: (
            f"{round(v * recent_attendance)} of the last {recent_attendance} appointments missed"
        ),
        "attendance_consecutive_missed": lambda v: (
            f"{_n(v, 'appointment')} missed in a row at the latest session"
        ),
        "attendance_no_shows": lambda v: f"{_n(v, 'no-show')} so far",
        "attendance_cancelled": lambda v: f"{_n(v, 'cancellation')} so far",
        "attendance_days_since_attended": lambda v: f"{v:.0f} days since the last attended session",
    }


def _fallback(definition: str, value: float) -> str:
    """A feature without a phrase of its own: its definition's first clause and the value."""
    text = definition.split(";")[0].split(". ")[0].rstrip(". ")
    return f"{text[:1].lower()}{text[1:]}: {value:.3g}"


def top_reasons(
    contributions: pd.DataFrame,
    values: pd.DataFrame,
    definitions: dict[str, str],
    phrase_for: dict[str, Phrase],
    n: int = 3,
) -> list[str]:
    """For each row, the ``n`` features with the largest positive contribution, in words.

    Features whose value is missing are skipped (a missing value is no reason to show), and so
    are the therapist-context features (:data:`NOT_REASONS`).
    """
    contributions = contributions.drop(columns=list(NOT_REASONS & set(contributions.columns)))
    contrib = contributions.to_numpy(dtype=float)
    vals = values.reindex(columns=contributions.columns).to_numpy(dtype=float)
    contrib = np.where(np.isfinite(vals) & (contrib > 0), contrib, -np.inf)
    k = min(n, contrib.shape[1])
    top = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    names = contributions.columns
    out = []
    for i, idx in enumerate(top):
        parts = []
        for j in idx:
            if not np.isfinite(contrib[i, j]):
                break
            name, v = names[j], vals[i, j]
            phrase = phrase_for.get(name)
            parts.append(phrase(v) if phrase else _fallback(definitions.get(name, name), v))
        out.append(" | ".join(parts))
    return out
