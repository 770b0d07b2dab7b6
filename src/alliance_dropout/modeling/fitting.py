"""Landmark examples, client-grouped splits, early stopping and calibrated fitting."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from alliance_dropout import contract as c
from alliance_dropout.config.modeling import (
    CalibrationConfig,
    GroupBy,
    ModelConfig,
    ModelKind,
    SplitBy,
    SplitConfig,
)
from alliance_dropout.features.builder import FeatureSettings
from alliance_dropout.modeling.models import DropoutRiskModel, make_pipeline
from alliance_dropout.progress import progress

Folds = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class Examples:
    """Training examples: one row per (labeled client, landmark)."""

    X: pd.DataFrame  # landmark feature frame (ID columns + features)
    y: np.ndarray
    groups: np.ndarray  # split unit per row (client or the client's latest therapist)


def landmark_examples(
    sessions: pd.DataFrame,
    labels: pd.Series,
    settings: FeatureSettings,
    group_by: GroupBy,
) -> Examples:
    """Features at every configured landmark of every labeled client, with its label."""
    labeled = sessions[sessions[c.CLIENT_ID].isin(labels.index)]
    X = settings.build(labeled, list(settings.features.landmarks))
    X = X.reset_index(drop=True)
    y = X[c.CLIENT_ID].map(labels).to_numpy(dtype=int)
    return Examples(X=X, y=y, groups=split_groups(labeled, X, group_by))


def split_groups(sessions: pd.DataFrame, X: pd.DataFrame, group_by: GroupBy) -> np.ndarray:
    if group_by is GroupBy.client:
        return X[c.CLIENT_ID].to_numpy()
    # the therapist of the client's latest row counts (data contract)
    last = sessions.sort_values([c.CLIENT_ID, c.SESSION_NUMBER]).groupby(c.CLIENT_ID).tail(1)
    therapist = last.set_index(c.CLIENT_ID)[c.THERAPIST_ID]
    return X[c.CLIENT_ID].map(therapist).to_numpy()


def time_split_cutoff(starts: pd.Series, labeled: pd.Index, cfg: SplitConfig) -> pd.Timestamp:
    """The date from which episodes are test episodes: configured, or the start date of the
    latest-starting ``test_size`` share of labeled episodes."""
    if cfg.time_cutoff is not None:
        return pd.Timestamp(cfg.time_cutoff)
    return pd.Timestamp(starts.reindex(labeled).quantile(1 - cfg.test_size))


def train_test_split_groups(
    ex: Examples,
    cfg: SplitConfig,
    seed: int,
    starts: pd.Series | None = None,
    cutoff: pd.Timestamp | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of train and test sets; whole groups (clients or therapists) on one side.

    With ``split.by=time``, episodes whose first session (``starts``: client_id -> date) is on
    or after ``cutoff`` are the test set (clients then are the unit; therapists may be on both
    sides, as they are in a clinic over time).
    """
    if cfg.by is SplitBy.time:
        assert starts is not None and cutoff is not None
        later = ex.X[c.CLIENT_ID].map(starts).to_numpy() >= np.datetime64(cutoff)
        train_idx, test_idx = np.flatnonzero(~later), np.flatnonzero(later)
        if len(train_idx) == 0 or len(test_idx) == 0 or len(np.unique(ex.y[test_idx])) < 2:
            raise ValueError(
                f"split.by=time with cut-off {cutoff.date()} leaves no training episodes or "
                "a test set without both outcomes: choose another split.time_cutoff"
            )
        return train_idx, test_idx
    n_splits = max(2, round(1 / cfg.test_size))
    sgkf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train_idx, test_idx = next(sgkf.split(ex.X, ex.y, ex.groups))
    return train_idx, test_idx


def grouped_folds(ex: Examples, idx: np.ndarray, n_folds: int, seed: int) -> Folds:
    """Stratified, grouped CV folds over the rows ``idx`` (positions relative to ``idx``)."""
    sgkf = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(sgkf.split(np.zeros(len(idx)), ex.y[idx], ex.groups[idx]))


def subset(ex: Examples, idx: np.ndarray) -> Examples:
    return Examples(X=ex.X.iloc[idx].reset_index(drop=True), y=ex.y[idx], groups=ex.groups[idx])


def early_stopped_rounds(ex: Examples, folds: Folds, cfg: ModelConfig, seed: int) -> int:
    """Median best iteration of LightGBM over grouped CV folds (validation = the held-out fold)."""
    best = []
    for fit_idx, val_idx in progress(folds, "early stopping on CV folds"):
        pipe = make_pipeline(cfg, seed)
        features = pipe[:-1]
        X_fit = features.fit_transform(ex.X.iloc[fit_idx], ex.y[fit_idx])
        X_val = features.transform(ex.X.iloc[val_idx])
        # watch AUC only: the default log loss of a class-weighted model worsens from the first
        # rounds on unweighted validation data and would stop training almost at once
        pipe[-1].set_params(metric="auc")
        pipe[-1].fit(
            X_fit,
            ex.y[fit_idx],
            eval_X=X_val,
            eval_y=ex.y[val_idx],
            eval_metric="auc",
            callbacks=[
                lgb.early_stopping(cfg.early_stopping_rounds, first_metric_only=True, verbose=False)
            ],
        )
        best.append(pipe[-1].best_iteration_ or pipe[-1].n_estimators)
    return int(np.median(best))


def cv_auc(
    ex: Examples,
    folds: Folds,
    cfg: ModelConfig,
    seed: int,
    after_fold: Callable[[int, float], None] | None = None,
) -> float:
    """Mean ROC AUC of the uncalibrated pipeline over grouped CV folds (a tuning objective).

    ``after_fold(k, mean AUC of folds 0..k)`` is called after each fold (a pruner hook; it may
    raise to stop early).
    """
    aucs = []
    for k, (fit_idx, val_idx) in enumerate(progress(folds, "CV folds")):
        pipe = make_pipeline(cfg, seed).fit(ex.X.iloc[fit_idx], ex.y[fit_idx])
        p = pipe.predict_proba(ex.X.iloc[val_idx])[:, 1]
        aucs.append(roc_auc_score(ex.y[val_idx], p))
        if after_fold is not None:
            after_fold(k, float(np.mean(aucs)))
    return float(np.mean(aucs))


def fit_calibrated(
    ex: Examples,
    *,
    model_cfg: ModelConfig,
    calibration: CalibrationConfig,
    folds: Folds,
    settings: FeatureSettings,
    seed: int,
) -> tuple[DropoutRiskModel, ModelConfig]:
    """Fit the pipeline and calibrate it on data it was not fitted on.

    ``CalibratedClassifierCV(ensemble=False)`` with grouped folds fits the calibrator on
    out-of-fold predictions (each from a pipeline that never saw those clients) and the final
    pipeline on all training data. Averaging the fold models instead (ensemble=True) compresses
    risks toward the mean and leaves them under-confident. For LightGBM, the number of trees is
    first chosen by early stopping on the same folds.
    """
    if model_cfg.kind is ModelKind.lightgbm and model_cfg.early_stopping_rounds > 0:
        rounds = early_stopped_rounds(ex, folds, model_cfg, seed)
        model_cfg = dataclasses.replace(
            model_cfg, params={**model_cfg.params, "n_estimators": rounds}
        )
    calibrated = CalibratedClassifierCV(
        make_pipeline(model_cfg, seed), method=calibration.method.value, cv=folds, ensemble=False
    )
    calibrated.fit(ex.X, ex.y)
    model = DropoutRiskModel(
        settings=settings, classifier=calibrated, model_kind=model_cfg.kind.value
    )
    model.feature_names = list(model.transform_features(ex.X.head(1)).columns)
    return model, model_cfg
