"""Sudden gains and losses (Tang & DeRubeis 1999), as the R package suddengains implements them.

The criteria follow ``identify_sg``/``identify_sl``/``check_interval`` of suddengains 0.7.x
(Wiedemann, Thew, Stott & Ehlers 2020, PLOS ONE 15(3): e0230276). For the interval between
occasions N and N+1 (scores x; for a symptom measure, lower is better):

1. ``x[N] - x[N+1] >= cutoff`` (default: the instrument's reliable-change value, Jacobson &
   Truax 1991, which is what ``define_crit1_cutoff`` returns);
2. ``x[N] - x[N+1] >= pct * x[N]`` (pct = 0.25);
3. ``mean(x[N-2..N]) - mean(x[N+1..N+3]) > t_crit * s_pooled``, with
   ``s_pooled = sqrt(((n_pre-1) s_pre^2 + (n_post-1) s_post^2) / (n_pre + n_post - 2))`` and
   t_crit = 2.776 / 3.182 / 4.303 when 0 / 1 / 2 of the six values are missing (Lutz et al. 2013);
   the package evaluates criterion 3 only with at least 2 values on each side.

Criteria 1 and 2 are missing (the interval is not evaluable) unless x[N] and x[N+1] are present;
positions before the first or after the last occasion count as missing, which reproduces how the
package treats the first and last intervals of its wide data. Losses are the mirror image. Where
the package's ``identify_sl`` states criterion 2 as ``x[N] - x[N+1] <= pct * x[N]`` (true for
every worsening, so it never binds), we apply the mirror image ``x[N+1] - x[N] >= pct * x[N]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from alliance_dropout.config.features import SuddenGainConfig
from alliance_dropout.contract import Scale
from alliance_dropout.features.grouped import events_known_by_row, first_valid_index
from alliance_dropout.features.spec import FeatureSpec

FAMILY = "sudden_gains"
# Tang & DeRubeis (1999): three sessions before and three after the gain.
_PRE = 3
_POST = 3
_REFERENCE = (
    "Tang & DeRubeis 1999, J Consult Clin Psychol 67:894-904; Lutz et al. 2013, Psychother Res "
    "23:14-24; R package suddengains 0.7 (Wiedemann et al. 2020, PLOS ONE 15:e0230276)"
)


def reliable_change_cutoff(sd: float, reliability: float) -> float:
    """Jacobson & Truax (1991) reliable-change value, as suddengains' ``define_crit1_cutoff``."""
    if not 0.0 <= reliability <= 1.0:
        raise ValueError("reliability must be within [0, 1]")
    standard_error_measurement = sd * np.sqrt(1.0 - reliability)
    return float(1.96 * np.sqrt(2.0) * standard_error_measurement)


@dataclass(frozen=True)
class _IntervalStats:
    """What criteria 1-3 need of each evaluable interval; shared by gains and losses."""

    evaluable: np.ndarray  # bool, shape (...)
    change: np.ndarray  # x[N] - x[N+1], evaluable intervals only
    x_n: np.ndarray
    mean_pre: np.ndarray
    mean_post: np.ndarray
    threshold: np.ndarray  # t_crit * pooled SD


def _nan_mean_var(values: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nanmean`` and ``np.nanvar(ddof=1)`` along the last axis, ``count`` values >= 2 each.

    The very steps of numpy's own functions (the same sums over the same C-ordered layout, so
    bit-identical results), but with the NaN mask, the zero-filled copy and the mean computed
    once for both instead of twice.
    """
    missing = np.isnan(values)
    filled = np.where(missing, 0.0, values)
    count_ = count[..., None]
    mean = np.sum(filled, axis=-1, keepdims=True) / count_
    deviation = np.subtract(filled, mean, out=filled)
    np.copyto(deviation, 0.0, where=missing)
    squares = np.multiply(deviation, deviation, out=deviation)
    return mean[..., 0], np.sum(squares, axis=-1) / (count - 1)


def _interval_stats(windows: np.ndarray, critical_t: tuple[float, float, float]) -> _IntervalStats:
    """:class:`_IntervalStats` of intervals given their six values x[N-2..N+3] (shape (..., 6))."""
    pre, post = windows[..., :_PRE], windows[..., _PRE:]
    x_n, x_n1 = pre[..., -1], post[..., 0]
    # counts as sums of per-column flags: exact, and faster than a reduction over a short axis
    present = ~np.isnan(windows)
    n_pre = sum(present[..., k].astype(np.int64) for k in range(_PRE))
    n_post = sum(present[..., k].astype(np.int64) for k in range(_PRE, _PRE + _POST))
    evaluable = ~np.isnan(x_n) & ~np.isnan(x_n1) & (n_pre >= 2) & (n_post >= 2)

    # Work on evaluable intervals only, so that no all-NaN slice reaches nanmean/nanvar.
    pre_e, post_e = pre[evaluable], post[evaluable]
    np_e, nq_e = n_pre[evaluable], n_post[evaluable]
    change = x_n[evaluable] - x_n1[evaluable]  # positive = improvement on a lower-is-better scale
    mean_pre, var_pre = _nan_mean_var(pre_e, np_e)
    mean_post, var_post = _nan_mean_var(post_e, nq_e)
    pooled = np.sqrt(((np_e - 1) * var_pre + (nq_e - 1) * var_post) / (np_e + nq_e - 2))
    n_missing = (_PRE + _POST) - (np_e + nq_e)
    t_crit = np.asarray(critical_t)[n_missing]
    return _IntervalStats(evaluable, change, x_n[evaluable], mean_pre, mean_post, t_crit * pooled)


def _verdicts_from_stats(
    stats: _IntervalStats, cutoff: float, pct: float, losses: bool
) -> np.ndarray:
    """Gain (or loss) per interval, False where not evaluable."""
    change = stats.change
    if losses:
        change, mean_shift = -change, stats.mean_post - stats.mean_pre
    else:
        mean_shift = stats.mean_pre - stats.mean_post
    verdict = (change >= cutoff) & (change >= pct * stats.x_n) & (mean_shift > stats.threshold)
    gain = np.zeros(stats.evaluable.shape, dtype=bool)
    gain[stats.evaluable] = verdict
    return gain


def _interval_verdicts(
    windows: np.ndarray,
    cutoff: float,
    pct: float,
    losses: bool,
    critical_t: tuple[float, float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Gain (or loss) and evaluability of intervals given their six values x[N-2..N+3].

    ``windows`` has shape (..., 6); returns two bool arrays of shape (...).
    """
    stats = _interval_stats(windows, critical_t)
    return _verdicts_from_stats(stats, cutoff, pct, losses), stats.evaluable


def _padded_windows(scores: np.ndarray) -> np.ndarray:
    """(n_clients, n_occasions - 1, 6) windows x[N-2..N+3] for every interval N -> N+1."""
    scores = np.asarray(scores, dtype=np.float64)
    pad = np.full((scores.shape[0], 2), np.nan)
    padded = np.concatenate([pad, scores, pad], axis=1)
    return sliding_window_view(padded, _PRE + _POST, axis=1)[:, : scores.shape[1] - 1]


def identify_sudden_gains(
    scores: np.ndarray,
    cutoff: float,
    pct: float = 0.25,
    losses: bool = False,
    critical_t: tuple[float, float, float] = (2.776, 3.182, 4.303),
) -> np.ndarray:
    """Sudden gains (or losses) per interval of wide scores (n_clients, n_occasions), NaN = missing.

    Column k of the result is the interval from occasion k to k+1 (suddengains' ``sg_{k+1}to{k+2}``
    when the first column is the first treatment session). Intervals the package cannot
    evaluate (missing values) are False.
    """
    gain, _ = _interval_verdicts(_padded_windows(scores), cutoff, pct, losses, critical_t)
    return gain


def evaluable_intervals(scores: np.ndarray) -> np.ndarray:
    """Intervals with enough data for all three criteria (suddengains' ``count_intervals``)."""
    _, evaluable = _interval_verdicts(_padded_windows(scores), 1.0, 0.0, False, (1.0, 1.0, 1.0))
    return evaluable


def _occasions(symptom: np.ndarray, attended: np.ndarray | None) -> np.ndarray:
    """Row indices of the occasions: attended rows, or rows with a score without attendance."""
    mask = ~np.isnan(symptom) if attended is None else np.asarray(attended, dtype=bool)
    return np.flatnonzero(mask)


def sudden_gain_features(
    client_start: np.ndarray,
    symptom: np.ndarray,
    cfg: SuddenGainConfig,
    scale: Scale,
    attended: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-row sudden gain/loss features as of that row (leakage-free).

    Occasions are the client's attended rows (a missing questionnaire is a missing occasion;
    cancelled and no-show rows are not occasions). Without ``attended``, rows with a score are
    the occasions. The gain between occasions N and N+1 is counted from the row of occasion
    N+3 on, the last value criterion 3 needs; it is never revised afterwards.
    """
    client_start = np.asarray(client_start, dtype=np.int64)
    symptom = np.asarray(symptom, dtype=np.float64)
    n = symptom.shape[0]
    cutoff = cfg.cutoff if cfg.cutoff is not None else scale.reliable_change
    if cutoff is None:
        raise ValueError(f"scale {scale.name} has no reliable_change; set sudden_gains.cutoff")

    occ_rows = _occasions(symptom, attended)
    occ_values = symptom[occ_rows]
    # Window x[N-2..N+3] ending at occasion j (= N+3): offsets -5..0, missing across clients.
    # One sliding view over the occasions (NaN-padded in front), then the offsets that reach
    # back before the client's first occasion are blanked.
    width = _PRE + _POST
    m = occ_rows.shape[0]
    occ_index = np.arange(m, dtype=np.int64)
    new_client = np.ones(m, dtype=bool)
    new_client[1:] = client_start[occ_rows[1:]] != client_start[occ_rows[:-1]]
    # occasions of the same client before each occasion
    occ_position = occ_index - np.maximum.accumulate(np.where(new_client, occ_index, 0))
    # ``width`` NaNs in front (one more than needed) so that the view exists even without
    # occasions; its window k + 1 ends at occasion k
    padded = np.concatenate((np.full(width, np.nan), occ_values))
    lag = np.arange(width - 1, -1, -1)  # column k holds offset -(width - 1 - k)
    windows = np.where(lag > occ_position[:, None], np.nan, sliding_window_view(padded, width)[1:])

    # A gain improves the symptom: a drop when higher is worse, a rise otherwise.
    improving_is_drop = scale.higher_is_worse
    out: dict[str, np.ndarray] = {}
    kinds = [("gain", not improving_is_drop)]
    if cfg.detect_losses:
        kinds.append(("loss", improving_is_drop))
    # the window statistics do not depend on the direction: compute them once for both kinds
    stats = _interval_stats(windows, cfg.critical_t)
    # before the client's first score nothing could be detected: missing, not "no gain"
    scored = first_valid_index(~np.isnan(symptom), client_start) >= 0
    for kind, as_loss in kinds:
        verdict = _verdicts_from_stats(stats, cutoff, cfg.pct, as_loss)
        known_rows = occ_rows[verdict]
        count = events_known_by_row(client_start, known_rows)
        out[f"sudden_{kind}_count"] = np.where(scored, count, np.nan)
        if kind == "gain":
            out["sessions_since_sudden_gain"] = _occasions_since_gain(
                client_start, occ_rows, verdict, n
            )
    return out


def _occasions_since_gain(
    client_start: np.ndarray, occ_rows: np.ndarray, verdict: np.ndarray, n: int
) -> np.ndarray:
    """Attended sessions since the post-gain occasion N+1 of the latest known gain; NaN if none."""
    # Occasion count up to and including each row (within the whole array, then per client).
    occ_count = np.zeros(n, dtype=np.int64)
    occ_count[occ_rows] = 1
    occ_count = np.cumsum(occ_count)  # occasions at rows <= i, over all clients
    # Global occasion number of the post-gain occasion N+1 = (N+3) - 2, known at row of N+3.
    known_at = np.full(n, -1, dtype=np.int64)
    known_at[occ_rows[verdict]] = np.flatnonzero(verdict) - 2
    latest = np.maximum.accumulate(np.where(known_at >= 0, np.arange(n), -1))
    has_gain = (latest >= 0) & (latest >= client_start)
    post_gain_occasion = known_at[np.where(has_gain, latest, 0)]
    since = (occ_count - 1 - post_gain_occasion).astype(np.float64)
    return np.where(has_gain, since, np.nan)


def feature_specs(cfg: SuddenGainConfig) -> list[FeatureSpec]:
    """Dictionary entries of the sudden gain/loss features."""
    cutoff = "the symptom scale's reliable change" if cfg.cutoff is None else f"{cfg.cutoff} points"
    criteria = (
        f"Tang & DeRubeis criteria between attended sessions N and N+1: change >= {cutoff}, "
        f">= {cfg.pct:.0%} of the score at N, and pre (N-2..N) vs post (N+1..N+3) means differ by "
        "more than t x pooled SD (t 2.776/3.182/4.303 for 0/1/2 missing)"
    )
    specs = [
        FeatureSpec(
            "sudden_gain_count",
            FAMILY,
            f"Number of sudden gains known by this session. {criteria}; a gain counts from "
            "session N+3 on, when its post-gain values are complete. Missing before the first "
            "symptom score.",
            "count",
            _REFERENCE,
        ),
        FeatureSpec(
            "sessions_since_sudden_gain",
            FAMILY,
            "Attended sessions since the post-gain session N+1 of the latest known sudden gain; "
            "missing when there has been none.",
            "attended sessions",
            _REFERENCE,
        ),
    ]
    if cfg.detect_losses:
        specs.append(
            FeatureSpec(
                "sudden_loss_count",
                FAMILY,
                "Number of sudden losses (the mirror image of a sudden gain: a sudden worsening) "
                "known by this session, counted from session N+3 on. Missing before the first "
                "symptom score.",
                "count",
                _REFERENCE,
            )
        )
    return specs
