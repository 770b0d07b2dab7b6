"""Dropout as a time-to-event problem: discrete-time competing risks over scheduled sessions.

Person-period data: one row per client per scheduled session. At each session the episode
continues, ends in dropout (its last row, status ``dropout``) or ends as planned (last row,
``completed``); an ongoing episode (or one without an outcome) is censored after its last row and
contributes all its rows, so training never selects on the outcome (the landmark framing keeps
only ended episodes, and dropouts end sooner). Two binary hazards are fitted on the same rows
with the session number as an input (Singer & Willett 1993, J Educ Stat 18:155-195; Allison
1982; competing risks as in Fine & Gray's cumulative incidence, here from cause-specific
discrete hazards):

    h_d(t) = P(dropout at session t | still in treatment), h_c(t) likewise for completion,
    dropout_risk as of t = sum_{k>=0} S(k) h_d(t+k),   S(0) = 1, S(k+1) = S(k) (1 - h_d - h_c)

The covariates (every feature as of the landmark row) are held at their current values while
the session number advances: the risk says what happens if the course stays as it is now. The
projection stops at ``last_session``. Hazards are fitted without class re-weighting (they are
probabilities already), so no separate calibration step is needed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from alliance_dropout import contract as c
from alliance_dropout.config.modeling import ModelConfig, ModelKind
from alliance_dropout.features.builder import FeatureSettings
from alliance_dropout.modeling.fitting import Examples, early_stopped_rounds, grouped_folds
from alliance_dropout.modeling.models import DropoutRiskModel, make_pipeline

PERIOD = "period"  # the session number as a model input


def with_period(X: pd.DataFrame) -> pd.DataFrame:
    """The landmark frame with the session number as a feature column (the hazard's clock)."""
    if PERIOD in X.columns:
        return X
    return X.assign(**{PERIOD: X["landmark_session"].to_numpy(dtype=np.float32)})


@dataclass
class PersonPeriods:
    """Every scheduled session of the training clients, with its event."""

    X: pd.DataFrame  # feature rows as of each session (ID columns, features, period)
    dropout: np.ndarray  # 1 where the episode ended in dropout at this session
    completion: np.ndarray  # 1 where it ended as planned at this session


def person_periods(
    sessions: pd.DataFrame, status: pd.Series, settings: FeatureSettings
) -> PersonPeriods:
    """Feature rows at every session of ``sessions``' clients and their events.

    ``status`` maps client_id -> outcome status; clients without one are censored (ongoing).
    """
    numbers = sorted(sessions[c.SESSION_NUMBER].unique().tolist())
    X = with_period(settings.build(sessions, numbers)).reset_index(drop=True)
    last = sessions.groupby(c.CLIENT_ID, sort=False)[c.SESSION_NUMBER].max()
    is_last = X["landmark_session"].to_numpy() == X[c.CLIENT_ID].map(last).to_numpy()
    ended_as = X[c.CLIENT_ID].map(status).to_numpy()
    return PersonPeriods(
        X,
        (is_last & (ended_as == c.DROPOUT)).astype(int),
        (is_last & (ended_as == c.COMPLETED)).astype(int),
    )


@dataclass
class HazardRiskModel(DropoutRiskModel):
    """Cause-specific discrete hazards of dropout and completion, turned into risks.

    ``predict_proba`` is the eventual dropout risk (cumulative incidence up to
    ``last_session``); ``predict_within(X, h)`` the risk of dropout within the next ``h``
    scheduled sessions (this one included). Reasons and feature values come from the dropout
    hazard's pipeline.
    """

    dropout_hazard: Pipeline | None = None
    completion_hazard: Pipeline | None = None
    last_session: int = 40

    def _pipelines(self) -> list[Pipeline]:
        assert self.dropout_hazard is not None
        return [self.dropout_hazard]

    def landmark_frame(
        self, sessions: pd.DataFrame, landmarks: list[int] | None = None
    ) -> pd.DataFrame:
        return with_period(self.settings.build(sessions, landmarks))

    def transform_features(self, X: pd.DataFrame) -> pd.DataFrame:
        return super().transform_features(with_period(X))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        return super().contributions(with_period(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self._cumulative_incidence(X, None)

    def predict_within(self, X: pd.DataFrame, horizon: int) -> np.ndarray:
        return self._cumulative_incidence(X, horizon)

    def _cumulative_incidence(self, X: pd.DataFrame, horizon: int | None) -> np.ndarray:
        assert self.dropout_hazard is not None and self.completion_hazard is not None
        X = with_period(X)
        start = X["landmark_session"].to_numpy(dtype=np.float64)
        if len(X) == 0:
            return np.empty(0)
        steps = int(max(1, self.last_session - start.min() + 1))
        if horizon is not None:
            steps = min(steps, horizon)
        # the learned features once; then only the clock moves
        Xd = self.dropout_hazard[:-1].transform(X)
        Xc = self.completion_hazard[:-1].transform(X)
        survival = np.ones(len(X))
        risk = np.zeros(len(X))
        for k in range(steps):
            period = start + k
            open_ = period <= max(self.last_session, 1)
            Xd[PERIOD] = period.astype(np.float32)
            Xc[PERIOD] = period.astype(np.float32)
            h_d = np.where(open_, self.dropout_hazard[-1].predict_proba(Xd)[:, 1], 0.0)
            h_c = np.where(open_, self.completion_hazard[-1].predict_proba(Xc)[:, 1], 0.0)
            risk += survival * h_d
            survival = np.clip(survival * (1.0 - h_d - h_c), 0.0, 1.0)
        return np.clip(risk, 0.0, 1.0)


def fit_hazards(
    periods: PersonPeriods,
    *,
    model_cfg: ModelConfig,
    settings: FeatureSettings,
    n_folds: int,
    seed: int,
    last_session: int,
) -> HazardRiskModel:
    """Both hazards on the person-period rows (early stopping on client-grouped folds)."""
    # hazards are probabilities: no class re-weighting
    recipe = dataclasses.replace(model_cfg, class_weight=None)
    groups = periods.X[c.CLIENT_ID].to_numpy()

    def fit(y: np.ndarray) -> Pipeline:
        cfg = recipe
        if cfg.kind is ModelKind.lightgbm and cfg.early_stopping_rounds > 0:
            ex = Examples(periods.X, y, groups)
            folds = grouped_folds(ex, np.arange(len(y)), n_folds, seed)
            rounds = early_stopped_rounds(ex, folds, cfg, seed)
            cfg = dataclasses.replace(cfg, params={**cfg.params, "n_estimators": rounds})
        return make_pipeline(cfg, seed).fit(periods.X, y)

    dropout, completion = fit(periods.dropout), fit(periods.completion)
    model = HazardRiskModel(
        settings=settings,
        classifier=None,  # two hazards instead of one classifier
        model_kind=f"{model_cfg.kind.value}-hazard",
        dropout_hazard=dropout,
        completion_hazard=completion,
        last_session=last_session,
    )
    model.feature_names = list(model.transform_features(periods.X.head(1)).columns)
    return model
