"""Attendance: appointments scheduled, kept and missed, and the rhythm of attended sessions."""

from __future__ import annotations

import numpy as np

from alliance_dropout.config.features import AttendanceConfig
from alliance_dropout.features import grouped as g
from alliance_dropout.features.spec import FeatureSpec

ATTENDANCE = "attendance"
_DROPOUT = "Swift & Greenberg 2012, J Consult Clin Psychol 80:547-559 (dropout)"
_NO_SHOW = "DeFife et al. 2010, Psychotherapy 47:413-417 (appointment no-shows)"
_FREQUENCY = (
    "Erekson, Lambert & Eggett 2015, J Consult Clin Psychol 83:1097-1107 (session frequency)"
)


def attendance_features(
    rows: g.SessionArrays, cfg: AttendanceConfig, at: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Attendance counts, recent misses and gaps between attended sessions, at rows ``at``."""
    cs, day, attended = rows.client_start, rows.day, rows.attended
    row = g.pick(np.arange(rows.n_rows), at)
    position = g.pick(g.position_in_client(cs), at)
    landmark_day = g.pick(day, at)
    last_attended = g.last_valid_index(attended, cs, at)
    window = np.minimum(position + 1, cfg.recent_window).astype(np.float64)
    missed = g.pick(g.window_count(~attended, cs, cfg.recent_window), at)
    # consecutive missed appointments ending at this row (the whole episode if none attended)
    run = np.where(last_attended >= 0, row - last_attended, position + 1)

    previous_attended = g.previous_valid_index(attended, cs)
    gap = np.where(attended, day - g.take(day, previous_attended), np.nan)
    n_attended = g.grouped_cumcount(attended, cs, at).astype(np.float64)
    first_attended_day = g.take(day, g.first_valid_index(attended, cs, at))
    span_weeks = (landmark_day - first_attended_day) / 7.0
    sessions_per_week = np.full(span_weeks.shape, np.nan)
    np.divide(n_attended - 1, span_weeks, out=sessions_per_week, where=span_weeks > 0)

    def count(mask: np.ndarray) -> np.ndarray:
        return g.grouped_cumcount(mask, cs, at).astype(np.float64)

    return {
        "attendance_scheduled": (position + 1).astype(np.float64),
        "attendance_attended": n_attended,
        "attendance_cancelled": count(rows.cancelled),
        "attendance_no_shows": count(rows.no_show),
        "attendance_recent_missed_share": missed / window,
        "attendance_consecutive_missed": run.astype(np.float64),
        "attendance_days_since_attended": landmark_day - g.take(day, last_attended),
        "attendance_mean_gap_days": g.expanding_mean(gap, cs, at),
        "attendance_max_gap_days": g.expanding_max(gap, cs, at),
        "attendance_sessions_per_week": sessions_per_week,
    }


def attendance_specs(cfg: AttendanceConfig) -> list[FeatureSpec]:
    """Dictionary entries of :func:`attendance_features`, in its column order."""
    w = cfg.recent_window
    return [
        FeatureSpec("attendance_scheduled", ATTENDANCE,
                    "Appointments scheduled so far (rows of the episode up to the landmark).",
                    "appointments", _DROPOUT),
        FeatureSpec("attendance_attended", ATTENDANCE, "Appointments attended so far.",
                    "appointments", _DROPOUT),
        FeatureSpec("attendance_cancelled", ATTENDANCE, "Appointments cancelled so far.",
                    "appointments", _NO_SHOW),
        FeatureSpec("attendance_no_shows", ATTENDANCE,
                    "Appointments missed without notice so far.", "appointments", _NO_SHOW),
        FeatureSpec("attendance_recent_missed_share", ATTENDANCE,
                    f"Share of the latest {w} scheduled appointments (fewer early on) that were "
                    "cancelled or missed.", "share (0-1)", _NO_SHOW),
        FeatureSpec("attendance_consecutive_missed", ATTENDANCE,
                    "Cancelled or missed appointments in a row ending at the landmark (0 when the "
                    "landmark appointment was attended).", "appointments", _NO_SHOW),
        FeatureSpec("attendance_days_since_attended", ATTENDANCE,
                    "Days from the latest attended session to the landmark date; missing before "
                    "the first attended session.", "days", _FREQUENCY),
        FeatureSpec("attendance_mean_gap_days", ATTENDANCE,
                    "Mean days between consecutive attended sessions; missing below 2 attended.",
                    "days", _FREQUENCY),
        FeatureSpec("attendance_max_gap_days", ATTENDANCE,
                    "Longest gap in days between consecutive attended sessions; missing below 2 "
                    "attended.", "days", _FREQUENCY),
        FeatureSpec("attendance_sessions_per_week", ATTENDANCE,
                    "Attended sessions after the first one per week, from the first attended "
                    "session to the landmark date; missing before any time has passed.",
                    "sessions per week", _FREQUENCY),
    ]  # fmt: skip
