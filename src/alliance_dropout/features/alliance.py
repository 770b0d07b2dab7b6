"""Alliance level and course (client and therapist ratings), subscales and the dual perspective."""

from __future__ import annotations

import numpy as np

from alliance_dropout.config.features import AllianceConfig, DualPerspectiveConfig
from alliance_dropout.features import grouped as g
from alliance_dropout.features.spec import FeatureSpec

ALLIANCE = "alliance"
DUAL = "dual_perspective"
RATERS = ("client", "therapist")
SUBSCALES = ("goal", "task", "bond")
WAI_UNIT = "WAI-SR item mean (1-5)"
SLOPE_UNIT = "WAI-SR points per session"

_ALLIANCE_DROPOUT = (
    "Sharf, Primavera & Diener 2010, Psychotherapy 47:637-645 (alliance and dropout); "
    "Flückiger et al. 2018, Psychotherapy 55:316-340 (alliance and outcome)"
)
_WAI_SR = "Hatcher & Gillaspy 2006, Psychother Res 16:12-25 (WAI-SR)"
_COURSE = (
    "Stiles et al. 2004, J Couns Psychol 51:81-92 (alliance development patterns); "
    "Zilcha-Mano 2017, Am Psychol 72:311-325 (state-like alliance change)"
)
_INSTABILITY = "Jahng, Wood & Trull 2008, Psychol Methods 13:354-375 (successive differences)"
_DUAL = (
    "Tryon, Blackwell & Hammel 2007, Psychother Res 17:629-642 (client vs therapist alliance); "
    "Reis & Brown 1999, Psychotherapy 36:123-136 (perspective convergence and dropout)"
)


def rater_features(
    prefix: str,
    rows: g.SessionArrays,
    rating: np.ndarray,
    cfg: AllianceConfig,
    at: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Level, course and variability of one rater's alliance ratings, at rows ``at`` (or all)."""
    cs = rows.client_start
    rated = ~np.isnan(rating)
    trend = g.expanding_trend(rows.session_number, rating, cs, at)
    first = g.first_value(rating, cs, at)
    latest = g.carry_forward(rating, cs, at)
    recent = g.recent_index(rated, cs, cfg.recent_window, at)
    change = g.successive_difference(rating, cs)
    low = g.grouped_cumcount(rated & (rating < cfg.low_cutoff), cs, at)
    return {
        f"{prefix}_rated_sessions": trend.count,
        f"{prefix}_latest": latest,
        f"{prefix}_mean": trend.mean,
        f"{prefix}_min": g.expanding_min(rating, cs, at),
        f"{prefix}_first": first,
        f"{prefix}_change": latest - first,
        f"{prefix}_slope": trend.slope,
        f"{prefix}_recent_slope": g.window_slope(
            g.take(rows.session_number, recent), g.take(rating, recent)
        ),
        f"{prefix}_sd": trend.sd,
        f"{prefix}_masd": g.expanding_mean(np.abs(change), cs, at),
        f"{prefix}_low_sessions": np.where(trend.count > 0, low.astype(np.float64), np.nan),
    }


def subscale_features(rows: g.SessionArrays, at: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Latest goal/task/bond subscale and the weakest of them, at rows ``at`` (or all)."""
    cs = rows.client_start
    latest = np.column_stack(
        [
            g.carry_forward(rows.alliance_goal, cs, at),
            g.carry_forward(rows.alliance_task, cs, at),
            g.carry_forward(rows.alliance_bond, cs, at),
        ]
    )
    available = ~np.isnan(latest)
    enough = available.sum(axis=1) >= 2
    weakest = np.where(enough, np.min(np.where(available, latest, np.inf), axis=1), np.nan)
    total = np.where(available, latest, 0.0).sum(axis=1)
    mean = np.divide(total, available.sum(axis=1), out=np.full(total.shape, np.nan), where=enough)
    out = {f"alliance_{name}_latest": latest[:, k] for k, name in enumerate(SUBSCALES)}
    out["alliance_weakest_subscale"] = weakest
    out["alliance_weakest_subscale_gap"] = mean - weakest
    return out


def alliance_features(
    rows: g.SessionArrays, cfg: AllianceConfig, at: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Every alliance level-and-course feature, at rows ``at`` (or all)."""
    out = rater_features("alliance_client", rows, rows.alliance_client, cfg, at)
    out |= rater_features("alliance_therapist", rows, rows.alliance_therapist, cfg, at)
    out |= subscale_features(rows, at)
    return out


def dual_perspective_features(
    rows: g.SessionArrays, cfg: DualPerspectiveConfig, at: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Client minus therapist alliance, and whether the two ratings move together."""
    cs = rows.client_start
    client, therapist = rows.alliance_client, rows.alliance_therapist
    gap = client - therapist  # NaN unless both rated the session
    gap_trend = g.expanding_trend(rows.session_number, gap, cs, at)
    paired = ~np.isnan(gap)
    enough = gap_trend.count >= cfg.min_paired_sessions
    # successive changes between consecutive sessions that both raters rated
    previous = g.previous_valid_index(paired, cs)
    stepped = paired & (previous >= 0)
    same_direction = stepped & (
        np.sign(client - g.take(client, previous))
        == np.sign(therapist - g.take(therapist, previous))
    )
    steps = g.grouped_cumcount(stepped, cs, at).astype(np.float64)
    agreed = g.grouped_cumcount(same_direction, cs, at)
    agreement = agreed / np.where(steps > 0, steps, 1.0)
    return {
        "alliance_gap_latest": g.carry_forward(gap, cs, at),
        "alliance_gap_mean": gap_trend.mean,
        "alliance_gap_slope": gap_trend.slope,
        "alliance_rater_correlation": np.where(
            enough, g.expanding_correlation(client, therapist, cs, at), np.nan
        ),
        "alliance_rater_change_agreement": np.where(enough, agreement, np.nan),
    }


def _rater_specs(rater: str, cfg: AllianceConfig) -> list[FeatureSpec]:
    p = f"alliance_{rater}"
    who = f"{rater}-rated alliance ({'WAI-SR' if rater == 'client' else 'WAI-SR-T'} item mean)"
    ref = f"{_ALLIANCE_DROPOUT}; {_WAI_SR}"
    return [
        FeatureSpec(f"{p}_rated_sessions", ALLIANCE, f"Sessions so far with a {who}.", "sessions",
                    _WAI_SR),
        FeatureSpec(f"{p}_latest", ALLIANCE, f"Most recent {who}.", WAI_UNIT, ref),
        FeatureSpec(f"{p}_mean", ALLIANCE, f"Mean {who} over the rated sessions so far.", WAI_UNIT,
                    ref),
        FeatureSpec(f"{p}_min", ALLIANCE, f"Lowest {who} so far.", WAI_UNIT, ref),
        FeatureSpec(f"{p}_first", ALLIANCE, f"First {who} of the episode.", WAI_UNIT, ref),
        FeatureSpec(f"{p}_change", ALLIANCE, f"Latest minus first {who} (0 with one rating).",
                    WAI_UNIT, _COURSE),
        FeatureSpec(f"{p}_slope", ALLIANCE,
                    f"Least-squares slope of the {who} on session number over all rated sessions "
                    "so far; missing below 2 ratings.", SLOPE_UNIT, _COURSE),
        FeatureSpec(f"{p}_recent_slope", ALLIANCE,
                    f"Least-squares slope of the {who} on session number over the latest "
                    f"{cfg.recent_window} rated sessions; missing below 2 ratings.", SLOPE_UNIT,
                    _COURSE),
        FeatureSpec(f"{p}_sd", ALLIANCE,
                    f"Sample SD of the {who} so far; missing below 2 ratings.", WAI_UNIT,
                    _INSTABILITY),
        FeatureSpec(f"{p}_masd", ALLIANCE,
                    f"Mean absolute successive difference of the {who} (between consecutive "
                    "rated sessions); missing below 2 ratings.", WAI_UNIT, _INSTABILITY),
        FeatureSpec(f"{p}_low_sessions", ALLIANCE,
                    f"Rated sessions so far with a {who} below {cfg.low_cutoff:g} (the configured "
                    "low-alliance cutoff; 3 = 'fairly often' on the WAI-SR anchors, no validated "
                    "clinical cutoff exists); missing before the first rating.", "sessions",
                    _WAI_SR),
    ]  # fmt: skip


def alliance_specs(cfg: AllianceConfig) -> list[FeatureSpec]:
    """Dictionary entries of :func:`alliance_features`, in its column order."""
    bordin = "Bordin 1979, Psychotherapy 16:252-260 (goal, task, bond); " + _WAI_SR
    specs = _rater_specs("client", cfg) + _rater_specs("therapist", cfg)
    specs += [
        FeatureSpec(f"alliance_{name}_latest", ALLIANCE,
                    f"Most recent client-rated WAI-SR {name} subscale mean; missing where the "
                    "export has no subscales.", WAI_UNIT, bordin)
        for name in SUBSCALES
    ]  # fmt: skip
    specs += [
        FeatureSpec("alliance_weakest_subscale", ALLIANCE,
                    "Lowest of the latest goal, task and bond subscale means; missing with fewer "
                    "than 2 subscales.", WAI_UNIT, bordin),
        FeatureSpec("alliance_weakest_subscale_gap", ALLIANCE,
                    "Mean of the latest subscale means minus the weakest one (how far one "
                    "component lags); missing with fewer than 2 subscales.", WAI_UNIT, bordin),
    ]  # fmt: skip
    return specs


def dual_perspective_specs(cfg: DualPerspectiveConfig) -> list[FeatureSpec]:
    """Dictionary entries of :func:`dual_perspective_features`, in its column order."""
    k = cfg.min_paired_sessions
    return [
        FeatureSpec("alliance_gap_latest", DUAL,
                    "Client minus therapist alliance at the latest session both rated.",
                    WAI_UNIT, _DUAL),
        FeatureSpec("alliance_gap_mean", DUAL,
                    "Mean client minus therapist alliance over sessions both rated.", WAI_UNIT,
                    _DUAL),
        FeatureSpec("alliance_gap_slope", DUAL,
                    "Least-squares slope of the client minus therapist alliance on session "
                    "number (drifting apart or converging); missing below 2 paired sessions.",
                    SLOPE_UNIT, _DUAL),
        FeatureSpec("alliance_rater_correlation", DUAL,
                    "Pearson correlation of client and therapist alliance over sessions both "
                    f"rated; missing below {k} paired sessions or while either is constant.",
                    "correlation (-1 to 1)", _DUAL),
        FeatureSpec("alliance_rater_change_agreement", DUAL,
                    "Share of steps between consecutive paired sessions in which client and "
                    "therapist alliance moved in the same direction (both up, both down or both "
                    f"unchanged); missing below {k} paired sessions.", "share (0-1)", _DUAL),
    ]  # fmt: skip
