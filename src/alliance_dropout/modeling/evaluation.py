"""Held-out evaluation: overall, per landmark, at alert budgets, decision curve, per subgroup.

All intervals come from one set of client-level bootstrap weights, so every comparison between
scores (model vs. baseline vs. reference rules) is paired.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve

from alliance_dropout import contract as c
from alliance_dropout.config.modeling import EvaluationConfig
from alliance_dropout.modeling import metrics as m
from alliance_dropout.modeling.reference_rules import PCOMS_ALERT

LANDMARK_MEAN = "roc_auc_landmark_mean"  # the headline: ROC AUC per landmark, averaged


@dataclass
class EvaluationResult:
    main: str
    overall: pd.DataFrame  # score, metric, value, ci_low, ci_high (+ paired differences)
    by_landmark: pd.DataFrame  # landmark, score, n, prevalence, roc_auc (+ CI), pr_auc, brier..
    alert_budgets: pd.DataFrame  # budget, score, sensitivity/ppv/nnr (+ CI)
    pcoms_operating_point: dict[str, float]
    decision_curve: pd.DataFrame  # threshold, <score>..., treat_all, treat_none
    subgroups: pd.DataFrame  # attribute, level, n, prevalence, roc_auc (+CI), brier, ...
    calibration_curve: pd.DataFrame  # score, bin_mean_predicted, bin_observed
    n_rows: int
    n_clients: int
    prevalence: float
    extras: dict[str, float] = field(default_factory=dict)

    def value(self, score: str, metric: str) -> float:
        row = self.overall[(self.overall.score == score) & (self.overall.metric == metric)]
        return float(row["value"].iloc[0]) if len(row) else float("nan")

    def flat_metrics(self) -> dict[str, float]:
        """Metric name -> value for MLflow: test_<score>_<metric>[_ci_low|_ci_high]."""
        out: dict[str, float] = {
            "test_n_rows": float(self.n_rows),
            "test_n_clients": float(self.n_clients),
            "test_prevalence": self.prevalence,
        }
        for r in self.overall.itertuples():
            key = f"test_{_slug(str(r.score))}_{r.metric}"
            out[key] = float(r.value)
            out[f"{key}_ci_low"] = float(r.ci_low)
            out[f"{key}_ci_high"] = float(r.ci_high)
        for r in self.alert_budgets.itertuples():
            for name in ("sensitivity", "ppv", "nnr"):
                key = f"test_{_slug(str(r.score))}_top{round(100 * r.budget)}_{name}"
                out[key] = float(getattr(r, name))
        horizon_prefix = f"{self.main} within "
        for r in self.by_landmark.itertuples():
            score = str(r.score)
            if score == self.main:
                tag = ""
            elif score.startswith(horizon_prefix):
                tag = f"within{score.removeprefix(horizon_prefix)}_"
            else:
                continue
            for name in LANDMARK_METRICS:
                value = getattr(r, name, float("nan"))
                out[f"test_landmark_{int(r.landmark):02d}_{tag}{name}"] = float(value)
        out.update(self.extras)
        return {k: v for k, v in out.items() if np.isfinite(v)}


def _slug(text: str) -> str:
    return text.replace(" - ", "_minus_").replace(" ", "_")


# per landmark, for the main model (eventual risk and each horizon), each with its bootstrap CI
LANDMARK_METRICS = ("roc_auc", "pr_auc", "brier", "calibration_slope", "calibration_intercept")


@dataclass
class HorizonTargets:
    """Dropout within the next h sessions, per test row: labels and each model's risks."""

    labels: dict[int, np.ndarray]  # h -> 1 where the episode ended in dropout within h sessions
    scores: dict[str, dict[int, np.ndarray]]  # model score name -> h -> risk


def horizon_score_name(score: str, h: int) -> str:
    return f"{score} within {h}"


def evaluate(
    rows: pd.DataFrame,
    y: np.ndarray,
    *,
    model_scores: dict[str, np.ndarray],
    rule_scores: dict[str, np.ndarray],
    main: str,
    cfg: EvaluationConfig,
    seed: int,
    audit: pd.DataFrame | None = None,
    groups: np.ndarray | None = None,
    horizons: HorizonTargets | None = None,
) -> EvaluationResult:
    """Evaluate calibrated model risks and reference-rule scores on the same test rows.

    ``rows`` holds client_id and landmark_session per test row; ``audit`` (optional) holds
    client_id plus audit attributes, used only to report performance per subgroup. ``groups``
    is the resampling unit of the bootstrap (the split's unit: clients by default, therapists
    when the test set holds unseen therapists). ``horizons`` adds per-landmark metrics of the
    risks of dropout within h sessions.

    The headline is landmark-averaged: a metric per landmark, then their mean (with its CI
    from the same replicates). Pooled over all landmark rows, the session number alone already
    ranks clients (later landmarks hold fewer dropouts), so the pooled AUC flatters a model.
    """
    y = np.asarray(y, dtype=int)
    unit = rows[c.CLIENT_ID].to_numpy() if groups is None else np.asarray(groups)
    codes = pd.factorize(unit)[0]
    uniques = pd.unique(rows[c.CLIENT_ID])
    weights = m.client_bootstrap_weights(codes, cfg.n_bootstrap, seed)
    scores = {**model_scores, **rule_scores}
    applicable = {
        **{s: m.CORE_METRICS for s in model_scores},
        **{s: {k: m.CORE_METRICS[k] for k in m.RANKING_METRICS} for s in rule_scores},
    }
    overall = m.bootstrap_table(y, scores, applicable, weights, cfg.ci_level, reference=main)

    landmark = rows["landmark_session"].to_numpy()
    auc = {"roc_auc": m.CORE_METRICS["roc_auc"]}
    full = {k: m.CORE_METRICS[k] for k in LANDMARK_METRICS}
    targets = [(s, p, y, s == main) for s, p in scores.items()]
    if horizons is not None:
        for s, by_h in horizons.scores.items():
            for h, p in by_h.items():
                targets.append((horizon_score_name(s, h), p, horizons.labels[h], s == main))
    per_landmark = []
    replicates: dict[str, list[np.ndarray]] = {}
    estimates: dict[str, list[float]] = {}
    lms = np.unique(landmark)
    for lm in lms:
        mask = landmark == lm
        w = weights[:, mask]
        for name, p, target, is_main in targets:
            metrics = full if is_main else auc
            yt, pt = target[mask], p[mask]
            entry: dict[str, object] = {
                "landmark": int(lm),
                "score": name,
                "n": int(mask.sum()),
                "events": int(yt.sum()),
                "prevalence": float(yt.mean()),
                "mean_risk": float(pt.mean()) if name not in rule_scores else np.nan,
            }
            for metric, fn in metrics.items():
                boot = m.bootstrap(yt, pt, fn, w)
                iv = m.interval(boot.replicates, boot.estimate, cfg.ci_level)
                suffix = "" if metric == "roc_auc" else f"_{metric}"
                entry[metric] = iv.value
                entry[f"ci_low{suffix}"], entry[f"ci_high{suffix}"] = iv.low, iv.high
                if metric == "roc_auc":
                    replicates.setdefault(name, []).append(boot.replicates)
                    estimates.setdefault(name, []).append(boot.estimate)
            per_landmark.append(entry)
    overall = pd.concat(
        [overall, _landmark_means(replicates, estimates, main, cfg.ci_level)], ignore_index=True
    )

    budgets = []
    ranked = {s: p for s, p in scores.items() if s != PCOMS_ALERT}
    for share in cfg.alert_budgets:
        for s, p in ranked.items():
            point = m.alert_budget_metrics(y, p, share)
            reps = [m.alert_budget_metrics(y, p, share, w) for w in weights]
            row: dict[str, object] = {"budget": share, "score": s, **point}
            for name in ("sensitivity", "ppv", "nnr"):
                iv = m.interval(np.array([r[name] for r in reps]), point[name], cfg.ci_level)
                row[f"{name}_ci_low"], row[f"{name}_ci_high"] = iv.low, iv.high
            budgets.append(row)

    pcoms = {}
    if PCOMS_ALERT in rule_scores:
        flagged = rule_scores[PCOMS_ALERT] > 0.5
        tp = float((flagged & (y == 1)).sum())
        pcoms = {
            "flagged_share": float(flagged.mean()),
            "sensitivity": tp / max(1, int(y.sum())),
            "ppv": tp / flagged.sum() if flagged.any() else float("nan"),
        }

    thresholds = np.round(
        np.arange(cfg.threshold_min, cfg.threshold_max + 1e-9, cfg.threshold_step), 4
    )
    curves = None
    for s, p in model_scores.items():
        nb = m.net_benefit(y, p, thresholds)
        if curves is None:
            curves = nb.rename(columns={"model": s})
        else:
            curves[s] = nb["model"].to_numpy()
    decision = curves if curves is not None else pd.DataFrame()

    cal_rows = []
    for s, p in model_scores.items():
        obs, pred = calibration_curve(y, p, n_bins=cfg.ece_bins, strategy="quantile")
        cal_rows += [
            {"score": s, "mean_predicted": a, "observed": b} for a, b in zip(pred, obs, strict=True)
        ]

    subgroups = _subgroups(rows, y, model_scores[main], weights, audit, cfg)
    return EvaluationResult(
        main=main,
        overall=overall,
        by_landmark=pd.DataFrame(per_landmark),
        alert_budgets=pd.DataFrame(budgets),
        pcoms_operating_point=pcoms,
        decision_curve=decision,
        subgroups=subgroups,
        calibration_curve=pd.DataFrame(cal_rows),
        n_rows=len(y),
        n_clients=len(uniques),
        prevalence=float(y.mean()),
    )


def _landmark_means(
    replicates: dict[str, list[np.ndarray]],
    estimates: dict[str, list[float]],
    main: str,
    ci_level: float,
) -> pd.DataFrame:
    """ROC AUC averaged over landmarks per score, and paired differences from the main one."""
    rows = []
    mean_reps = {k: np.nanmean(np.stack(v), axis=0) for k, v in replicates.items()}
    mean_est = {k: float(np.nanmean(v)) for k, v in estimates.items()}
    for name, reps in mean_reps.items():
        iv = m.interval(reps, mean_est[name], ci_level)
        rows.append({"score": name, "metric": LANDMARK_MEAN, **iv.as_dict()})
    if main in mean_reps:
        for name, reps in mean_reps.items():
            if name == main or " within " in name:
                continue
            iv = m.interval(mean_reps[main] - reps, mean_est[main] - mean_est[name], ci_level)
            rows.append({"score": f"{main} - {name}", "metric": LANDMARK_MEAN, **iv.as_dict()})
    return pd.DataFrame(rows, columns=["score", "metric", "value", "ci_low", "ci_high"])


def _subgroups(
    rows: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    weights: np.ndarray,
    audit: pd.DataFrame | None,
    cfg: EvaluationConfig,
) -> pd.DataFrame:
    columns = ["attribute", "level", "n_clients", "n", "prevalence", "mean_risk"]
    if audit is None or audit.shape[1] <= 1:
        return pd.DataFrame(columns=columns)
    attrs = rows[[c.CLIENT_ID]].merge(audit, on=c.CLIENT_ID, how="left", validate="many_to_one")
    core = {k: m.CORE_METRICS[k] for k in ("roc_auc", "brier", "calibration_intercept")}
    out = []
    for attribute in [col for col in audit.columns if col != c.CLIENT_ID]:
        levels = attrs[attribute].astype("string").fillna("(missing)").to_numpy()
        for level in pd.unique(levels):
            mask = levels == level
            n_clients = rows.loc[mask, c.CLIENT_ID].nunique()
            row: dict[str, object] = {
                "attribute": attribute,
                "level": str(level),
                "n_clients": int(n_clients),
                "n": int(mask.sum()),
                "prevalence": float(y[mask].mean()),
                "mean_risk": float(p[mask].mean()),
            }
            if n_clients >= cfg.min_subgroup_size:
                for name, fn in core.items():
                    reps = m.bootstrap(y[mask], p[mask], fn, weights[:, mask])
                    iv = m.interval(reps.replicates, reps.estimate, cfg.ci_level)
                    row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = (
                        iv.value,
                        iv.low,
                        iv.high,
                    )
            out.append(row)
    return pd.DataFrame(out)
