"""Discrimination, calibration and clinical-utility metrics, with client-level bootstrap CIs.

Every metric accepts row weights so that one bootstrap replicate is just a re-weighting of the
test rows: resampling *clients* (each with all of its landmark rows) with replacement equals
weighting each row by how often its client was drawn. This keeps the cluster structure of
landmark data (several correlated rows per client) in the intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from alliance_dropout.progress import progress

EPS = 1e-6
MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]


def _safe(fn: MetricFn) -> MetricFn:
    """NaN instead of an exception where a replicate has a single class."""

    def wrapped(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
        if w is not None:
            mask = w > 0
            y, p, w = y[mask], p[mask], w[mask]
        if len(y) == 0 or np.unique(y).size < 2:
            return float("nan")
        return float(fn(y, p, w))

    wrapped.__name__ = fn.__name__
    return wrapped


def calibration_slope(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    """Slope of a logistic recalibration of y on logit(p); 1 is ideal, <1 means overfit."""
    lp = logit(np.clip(p, EPS, 1 - EPS)).reshape(-1, 1)
    # unpenalised MLE of two parameters: Newton steps converge in a few iterations
    model = LogisticRegression(C=np.inf, solver="newton-cholesky", max_iter=200)
    model.fit(lp, y, sample_weight=w)
    return float(model.coef_[0, 0])


def calibration_intercept(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    """Calibration-in-the-large: the shift a with slope fixed at 1 so mean risk equals the rate."""
    lp = logit(np.clip(p, EPS, 1 - EPS))
    w = np.ones_like(lp) if w is None else w
    observed = np.average(y, weights=w)

    def gap(a: float) -> float:
        return float(np.average(expit(a + lp), weights=w) - observed)

    return float(brentq(gap, -20.0, 20.0))


def expected_calibration_error(
    y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None, n_bins: int = 10
) -> float:
    """Weighted mean |observed - predicted| over equal-width probability bins."""
    w = np.ones_like(p) if w is None else w
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    wsum = np.bincount(bins, weights=w, minlength=n_bins)
    ysum = np.bincount(bins, weights=w * y, minlength=n_bins)
    psum = np.bincount(bins, weights=w * p, minlength=n_bins)
    filled = wsum > 0
    gaps = np.abs(ysum[filled] - psum[filled]) / wsum[filled]
    return float(np.sum(gaps * wsum[filled]) / wsum.sum())


CORE_METRICS: dict[str, MetricFn] = {
    "roc_auc": _safe(lambda y, p, w: roc_auc_score(y, p, sample_weight=w)),
    "pr_auc": _safe(lambda y, p, w: average_precision_score(y, p, sample_weight=w)),
    "brier": _safe(lambda y, p, w: brier_score_loss(y, p, sample_weight=w)),
    "log_loss": _safe(
        lambda y, p, w: log_loss(y, np.clip(p, EPS, 1 - EPS), sample_weight=w, labels=[0, 1])
    ),
    "calibration_slope": _safe(calibration_slope),
    "calibration_intercept": _safe(calibration_intercept),
    "ece": _safe(expected_calibration_error),
}
# Metrics that only make sense for probabilities (not for a rule's raw score).
PROBABILITY_METRICS = ("brier", "log_loss", "calibration_slope", "calibration_intercept", "ece")
RANKING_METRICS = ("roc_auc", "pr_auc")


def flag_top_share(p: np.ndarray, share: float, w: np.ndarray | None = None) -> np.ndarray:
    """Flag the riskiest ``share`` of (weighted) rows; ties broken by order, deterministically."""
    w = np.ones_like(p) if w is None else w
    order = np.argsort(-p, kind="stable")
    cum = np.cumsum(w[order])
    flagged_sorted = cum <= share * cum[-1] + 1e-9
    flagged = np.zeros(len(p), dtype=bool)
    flagged[order] = flagged_sorted
    return flagged


def alert_budget_metrics(
    y: np.ndarray, p: np.ndarray, share: float, w: np.ndarray | None = None
) -> dict[str, float]:
    """Sensitivity, PPV and number needed to review when the riskiest ``share`` is flagged."""
    w = np.ones_like(p) if w is None else w
    flagged = flag_top_share(p, share, w)
    tp = float(np.sum(w * flagged * y))
    positives = float(np.sum(w * y))
    n_flagged = float(np.sum(w * flagged))
    ppv = tp / n_flagged if n_flagged else float("nan")
    return {
        "sensitivity": tp / positives if positives else float("nan"),
        "ppv": ppv,
        "nnr": 1.0 / ppv if ppv and ppv > 0 else float("nan"),
    }


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> pd.DataFrame:
    """Decision-curve net benefit (Vickers & Elkin 2006) of the model, treat-all and treat-none."""
    n = len(y)
    prevalence = float(np.mean(y))
    odds = thresholds / (1 - thresholds)
    flagged = p[None, :] >= thresholds[:, None]
    tp = (flagged & (y[None, :] == 1)).sum(axis=1) / n
    fp = (flagged & (y[None, :] == 0)).sum(axis=1) / n
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "model": tp - fp * odds,
            "treat_all": prevalence - (1 - prevalence) * odds,
            "treat_none": 0.0,
        }
    )


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high}


def client_bootstrap_weights(client_codes: np.ndarray, n_replicates: int, seed: int) -> np.ndarray:
    """(n_replicates, n_rows) weights: how often each row's client was drawn in each replicate."""
    rng = np.random.default_rng(seed)
    n_clients = int(client_codes.max()) + 1 if len(client_codes) else 0
    draws = rng.integers(0, n_clients, size=(n_replicates, n_clients))
    counts = np.stack([np.bincount(d, minlength=n_clients) for d in draws])
    return counts[:, client_codes].astype(float)


def interval(values: np.ndarray, estimate: float, ci_level: float) -> Interval:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Interval(estimate, float("nan"), float("nan"))
    alpha = (1 - ci_level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return Interval(estimate, float(lo), float(hi))


@dataclass
class Replicates:
    """Point estimate and bootstrap replicates of one metric of one score."""

    estimate: float
    replicates: np.ndarray


def bootstrap(y: np.ndarray, p: np.ndarray, metric: MetricFn, weights: np.ndarray) -> Replicates:
    return Replicates(metric(y, p, None), np.array([metric(y, p, w) for w in weights]))


def bootstrap_table(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    metrics: Mapping[str, Mapping[str, MetricFn]],
    weights: np.ndarray,
    ci_level: float,
    reference: str | None = None,
) -> pd.DataFrame:
    """Estimates with percentile CIs per (score, metric), plus paired differences.

    ``metrics`` maps each score to the metrics that apply to it (rules get ranking metrics only).
    With ``reference``, rows ``<reference> - <score>`` hold the paired difference on the same
    replicates, whose interval answers "is the reference really better" far more tightly than
    two overlapping marginal intervals do.
    """
    pairs = [(s, m, fn) for s in scores for m, fn in metrics[s].items()]
    reps = {
        (s, m): bootstrap(y, scores[s], fn, weights)
        for s, m, fn in progress(pairs, f"bootstrap ({len(weights)} replicates)")
    }
    rows = [
        {"score": s, "metric": m, **interval(r.replicates, r.estimate, ci_level).as_dict()}
        for (s, m), r in reps.items()
    ]
    if reference is not None:
        for (s, m), r in reps.items():
            ref = reps.get((reference, m))
            if s == reference or ref is None:
                continue
            diff = ref.replicates - r.replicates
            est = ref.estimate - r.estimate
            label = f"{reference} - {s}"
            rows.append({"score": label, "metric": m, **interval(diff, est, ci_level).as_dict()})
    return pd.DataFrame(rows)
