"""Symptom level and course, and the coupling of alliance with the next symptom change."""

from __future__ import annotations

import numpy as np

from alliance_dropout.config.features import (
    AllianceSymptomConfig,
    EarlyResponseCriterion,
    SymptomConfig,
)
from alliance_dropout.contract import Scale
from alliance_dropout.features import grouped as g
from alliance_dropout.features.spec import FeatureSpec

SYMPTOMS = "symptoms"
ALLIANCE_SYMPTOM = "alliance_symptom"
POINTS = "symptom scale points"

_JT = "Jacobson & Truax 1991, J Consult Clin Psychol 59:12-19 (reliable and clinical change)"
_NHS = "NHS Talking Therapies Manual (reliable improvement, recovery, reliable recovery)"
_COURSE = (
    "Lambert 2007, Psychother Res 17:1-14 (session-by-session outcome monitoring); "
    "Swift & Greenberg 2012, J Consult Clin Psychol 80:547-559 (dropout)"
)
_EARLY = "Beard & Delgadillo 2019, Depress Anxiety 36:866-878 (early response, a review)"
_COUPLING = (
    "Falkenström, Granström & Holmqvist 2013, J Couns Psychol 60:317-328 (alliance predicts "
    "next-session symptom change); Zilcha-Mano 2017, Am Psychol 72:311-325"
)


def _flag(condition: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """A 0/1 feature, NaN where it is not defined."""
    return np.where(defined, condition.astype(np.float64), np.nan)


def _in_clinical_range(score: np.ndarray, scale: Scale) -> np.ndarray:
    """At or beyond the clinical cutoff on the scale's worse side (comparisons with NaN: False)."""
    assert scale.clinical_cutoff is not None
    if scale.higher_is_worse:
        return score >= scale.clinical_cutoff
    return score < scale.clinical_cutoff


def symptom_features(
    rows: g.SessionArrays, cfg: SymptomConfig, scale: Scale, at: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Symptom level, course, reliable and clinically significant change, at rows ``at``."""
    cs, score, session = rows.client_start, rows.symptom, rows.session_number
    rated = ~np.isnan(score)
    trend = g.expanding_trend(session, score, cs, at)
    first_row = g.first_valid_index(rated, cs, at)
    first = g.take(score, first_row)
    latest = g.carry_forward(score, cs, at)
    has = trend.count > 0
    # improvement is a fall on a higher-is-worse scale, a rise otherwise
    direction = -1.0 if scale.higher_is_worse else 1.0
    improvement = direction * (latest - first)
    recent = g.recent_index(rated, cs, cfg.recent_window, at)

    out = {
        "symptom_rated_sessions": trend.count,
        "symptom_first": first,
        "symptom_latest": latest,
        "symptom_change": latest - first,
        "symptom_slope": trend.slope,
        "symptom_recent_slope": g.window_slope(g.take(session, recent), g.take(score, recent)),
    }
    rc = scale.reliable_change
    rc_defined = has & (rc is not None)
    rc_value = np.inf if rc is None else rc
    reliable_improvement = g.at_least(improvement, rc_value)
    out["symptom_reliable_improvement"] = _flag(reliable_improvement, rc_defined)
    out["symptom_reliable_deterioration"] = _flag(g.at_least(-improvement, rc_value), rc_defined)

    if scale.clinical_cutoff is None:
        nan = np.full(first.shape, np.nan)
        out |= {"symptom_in_clinical_range": nan, "symptom_recovered": nan}
        out["symptom_reliable_recovery"] = nan
    else:
        # recovery is defined only for episodes that started in the clinical range
        case_at_start = _in_clinical_range(first, scale)
        recovered = ~_in_clinical_range(latest, scale)
        out["symptom_in_clinical_range"] = _flag(_in_clinical_range(latest, scale), has)
        out["symptom_recovered"] = _flag(recovered, case_at_start)
        out["symptom_reliable_recovery"] = _flag(
            recovered & reliable_improvement, case_at_start & rc_defined
        )
    out["symptom_early_response"] = _early_response(rows, cfg, scale, first_row, direction, at)
    return out


def _early_response(
    rows: g.SessionArrays,
    cfg: SymptomConfig,
    scale: Scale,
    first_row: np.ndarray,
    direction: float,
    at: np.ndarray | None,
) -> np.ndarray:
    """Early response, known from session ``early_response_session`` on; NaN before."""
    cs, score = rows.client_start, rows.symptom
    early = ~np.isnan(score) & (rows.session_number <= cfg.early_response_session)
    early_row = g.last_valid_index(early, cs, at)
    session = g.pick(rows.session_number, at)
    first = g.take(score, first_row)
    improvement = direction * (g.take(score, early_row) - first)
    known = (session >= cfg.early_response_session) & (early_row > first_row) & (first_row >= 0)
    if cfg.early_response_criterion is EarlyResponseCriterion.reliable_change:
        if scale.reliable_change is None:
            return np.full(session.shape, np.nan)
        return _flag(g.at_least(improvement, scale.reliable_change), known)
    # room to improve: the baseline's distance from the scale's best end
    room = np.abs(first - (scale.min if scale.higher_is_worse else scale.max))
    return _flag(g.at_least(improvement, cfg.early_response_share * room), known & (room > 0))


def alliance_symptom_features(
    rows: g.SessionArrays, cfg: AllianceSymptomConfig, at: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Within-client correlation of client alliance with the next symptom change."""
    cs, score = rows.client_start, rows.symptom
    previous = g.previous_valid_index(~np.isnan(score), cs)
    # pair on the row of each symptom score: alliance at the previous scored session, and the
    # symptom change from that session to this one
    next_change = score - g.take(score, previous)
    alliance_before = g.take(rows.alliance_client, previous)
    pairs = g.paired_count(alliance_before, next_change, cs, at)
    r = g.expanding_correlation(alliance_before, next_change, cs, at)
    return {"alliance_symptom_coupling": np.where(pairs >= cfg.min_pairs, r, np.nan)}


def symptom_specs(cfg: SymptomConfig) -> list[FeatureSpec]:
    """Dictionary entries of :func:`symptom_features`, in its column order."""
    if cfg.early_response_criterion is EarlyResponseCriterion.reliable_change:
        criterion = "at least the scale's reliable change"
        no_room = ""
    else:
        criterion = (
            f"at least {cfg.early_response_share:.0%} of the first score's distance from the "
            "scale's best end (for PHQ-9: a reduction by that share)"
        )
        no_room = ", or when the first score is already at the best end (no room to improve)"
    rc = "the scale's reliable change (PHQ-9: 6 points)"
    return [
        FeatureSpec("symptom_rated_sessions", SYMPTOMS, "Sessions so far with a symptom score.",
                    "sessions", _COURSE),
        FeatureSpec("symptom_first", SYMPTOMS, "First symptom score of the episode (intake).",
                    POINTS, _COURSE),
        FeatureSpec("symptom_latest", SYMPTOMS, "Most recent symptom score.", POINTS, _COURSE),
        FeatureSpec("symptom_change", SYMPTOMS,
                    "Latest minus first symptom score (negative = better on PHQ-9; 0 with one "
                    "score).", POINTS, _COURSE),
        FeatureSpec("symptom_slope", SYMPTOMS,
                    "Least-squares slope of the symptom score on session number over all scored "
                    "sessions; missing below 2 scores.", "points per session", _COURSE),
        FeatureSpec("symptom_recent_slope", SYMPTOMS,
                    f"Least-squares slope over the latest {cfg.recent_window} scored sessions "
                    "(symptoms that stop moving flatten it); missing below 2 scores.",
                    "points per session", _COURSE),
        FeatureSpec("symptom_reliable_improvement", SYMPTOMS,
                    f"1 if the improvement from the first to the latest score is at least {rc} "
                    "(Jacobson-Truax), else 0; missing without a score or a reliable-change "
                    "value.", "0/1", f"{_JT}; {_NHS}"),
        FeatureSpec("symptom_reliable_deterioration", SYMPTOMS,
                    f"1 if the worsening from the first to the latest score is at least {rc}, "
                    "else 0.", "0/1", f"{_JT}; {_NHS}"),
        FeatureSpec("symptom_in_clinical_range", SYMPTOMS,
                    "1 if the latest score is in the clinical range (PHQ-9 >= 10: at or above "
                    "the cutoff on a higher-is-worse scale), else 0.", "0/1",
                    "Kroenke, Spitzer & Williams 2001, J Gen Intern Med 16:606-613; " + _NHS),
        FeatureSpec("symptom_recovered", SYMPTOMS,
                    "Crossing the clinical cutoff: 1 if the latest score is out of the clinical "
                    "range, 0 if not; missing unless the first score was in the clinical range.",
                    "0/1", f"{_JT}; {_NHS}"),
        FeatureSpec("symptom_reliable_recovery", SYMPTOMS,
                    "1 if recovered and reliably improved, else 0; missing unless the first score "
                    "was in the clinical range.", "0/1", _NHS),
        FeatureSpec("symptom_early_response", SYMPTOMS,
                    "1 if the improvement from the first score to the latest score up to session "
                    f"{cfg.early_response_session} is {criterion}, else 0; missing before session "
                    f"{cfg.early_response_session}, without 2 scores by then{no_room}.",
                    "0/1", _EARLY),
    ]  # fmt: skip


def alliance_symptom_specs(cfg: AllianceSymptomConfig) -> list[FeatureSpec]:
    """Dictionary entries of :func:`alliance_symptom_features`."""
    return [
        FeatureSpec(
            "alliance_symptom_coupling",
            ALLIANCE_SYMPTOM,
            "Within-client Pearson correlation between the client-rated alliance at a scored "
            "session and the symptom change from that session to the next scored one (negative = "
            "a stronger alliance precedes symptom relief on PHQ-9); missing below "
            f"{cfg.min_pairs} pairs or while either is constant.",
            "correlation (-1 to 1)",
            _COUPLING,
        )
    ]
