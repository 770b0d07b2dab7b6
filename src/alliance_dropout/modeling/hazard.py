"""Dropout as a time-to-event problem: discrete-time competing risks over scheduled sessions.

Person-period data: at each scheduled session the episode continues, ends in dropout (its last
row, status ``dropout``) or ends as planned (last row, ``completed``); an ongoing episode (or
one without an outcome) is censored after its last row and contributes all its rows, so
training never selects on the outcome (the landmark classifier keeps only ended episodes, and
dropouts end sooner). Two cause-specific discrete hazards are fitted (Singer & Willett 1993,
J Educ Stat 18:155-195; Allison 1982, Sociol Methodol 13:61-98); the dropout risk is their
cumulative incidence (competing risks: Fine & Gray 1999; Putter, Fiocco & Geskus 2007):

    h_d(t | x_s) = P(dropout at session t | in treatment at t, history up to session s <= t)
    dropout_risk as of s = sum_{k>=0} S(k) h_d(s+k | x_s),  S(0) = 1,
                           S(k+1) = S(k) (1 - h_d(s+k | x_s) - h_c(s+k | x_s))

The hazards are *landmark-conditional* (dynamic prediction by landmarking, van Houwelingen
2007, Scand J Stat 34:70-85; van Houwelingen & Putter 2011): every training row is a
(landmark s, later session t) pair of one client, with the features as of s, the landmark s and
the sessions ahead t - s as inputs. The projection therefore never pretends that a client's
trajectory features stay what they are while the clock moves on (a hazard fitted on the
features as of t and fed the features as of s at later t projects far too extreme risks: a
client at session 3 "seen" at session 10 with 3 sessions attended looks like one who missed
seven). What is held fixed is only the information: the risk is P(dropout | history up to s).

Non-event (client, s, t) rows are many and near-duplicates, so above ``max_rows`` they are
subsampled at a rate p and weighted 1/p (negative subsampling with inverse-probability
weights keeps the hazard's likelihood unbiased: King & Zeng 2001, Polit Anal 9:137-163);
every event row is kept. The hazards are probabilities already: no class re-weighting and no
calibration step. The projection stops at ``last_session``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from alliance_dropout import contract as c
from alliance_dropout.config.modeling import ModelConfig, ModelKind
from alliance_dropout.features.builder import FeatureSettings
from alliance_dropout.modeling.fitting import Examples, grouped_folds
from alliance_dropout.modeling.models import DropoutRiskModel, make_pipeline

PERIOD = "period"  # the session t the hazard is about
AHEAD = "sessions_ahead"  # t - s: how far beyond the landmark s (whose features are used)
CLOCK_COLUMNS = (PERIOD, AHEAD)


def with_clock(X: pd.DataFrame, ahead: int | np.ndarray = 0) -> pd.DataFrame:
    """The landmark frame with the hazard's clock: the session ``ahead`` sessions after the
    landmark, and that distance."""
    s = X["landmark_session"].to_numpy(dtype=np.float32)
    k = np.broadcast_to(np.asarray(ahead, dtype=np.float32), s.shape)
    return X.assign(**{PERIOD: s + k, AHEAD: k.copy()})


@dataclass
class PersonPeriods:
    """(client, landmark, later session) rows of the training clients, with their events."""

    X: pd.DataFrame  # features as of the landmark, ID columns, and the clock columns
    dropout: np.ndarray  # 1 where the episode ended in dropout at this session
    completion: np.ndarray  # 1 where it ended as planned at this session
    weight: np.ndarray  # 1 / sampling rate of the row

    @property
    def groups(self) -> np.ndarray:
        return self.X[c.CLIENT_ID].to_numpy()


def person_periods(
    sessions: pd.DataFrame,
    status: pd.Series,
    settings: FeatureSettings,
    *,
    max_rows: int,
    seed: int,
) -> PersonPeriods:
    """Every (landmark, later session) pair of ``sessions``' clients, with its events.

    Landmarks are the configured ones; the later sessions are the client's own rows from the
    landmark on (the landmark's own row included: ending there is an event at 0 ahead).
    ``status`` maps client_id -> outcome status; clients without an ended one are censored.
    """
    landmarks = list(settings.features.landmarks)
    L = settings.build(sessions, landmarks).reset_index(drop=True)
    rows = pd.DataFrame(
        {
            "client": sessions[c.CLIENT_ID].to_numpy(),
            "t": sessions[c.SESSION_NUMBER].to_numpy(dtype=np.int64),
        }
    )
    last = rows.groupby("client", sort=False)["t"].max()
    pairs = pd.DataFrame(
        {"client": L[c.CLIENT_ID].to_numpy(), "s": L["landmark_session"].to_numpy(), "i": L.index}
    ).merge(rows, on="client", how="inner")
    pairs = pairs[pairs["t"].to_numpy() >= pairs["s"].to_numpy()]
    ended_as = pairs["client"].map(status).to_numpy()
    is_last = pairs["t"].to_numpy() == pairs["client"].map(last).to_numpy()
    dropout = (is_last & (ended_as == c.DROPOUT)).astype(np.int8)
    completion = (is_last & (ended_as == c.COMPLETED)).astype(np.int8)

    event = (dropout + completion) > 0
    n_quiet = int((~event).sum())
    rate = min(1.0, max(max_rows - int(event.sum()), 1) / max(n_quiet, 1))
    rng = np.random.default_rng(seed)
    keep = event | (rng.random(len(pairs)) < rate)
    pairs = pairs[keep]
    ahead = (pairs["t"] - pairs["s"]).to_numpy()
    X = with_clock(L.iloc[pairs["i"].to_numpy()].reset_index(drop=True), ahead)
    return PersonPeriods(
        X,
        dropout[keep].astype(int),
        completion[keep].astype(int),
        np.where(event[keep], 1.0, 1.0 / rate),
    )


@dataclass
class HazardRiskModel(DropoutRiskModel):
    """Cause-specific landmark-conditional hazards of dropout and completion, as risks.

    ``predict_proba`` is the eventual dropout risk (cumulative incidence up to
    ``last_session``); ``predict_within(X, h)`` the risk of dropout within the next ``h``
    scheduled sessions (this one included). Reasons and feature values come from the dropout
    hazard's pipeline, at the landmark itself (0 sessions ahead).
    """

    dropout_hazard: Pipeline | None = None
    completion_hazard: Pipeline | None = None
    last_session: int = 40
    # the horizons it was evaluated at, which the served model answers
    horizons: list[int] = dataclasses.field(default_factory=lambda: [1, 4])
    has_horizons = True

    @property
    def served_horizons(self) -> list[int]:
        return list(self.horizons)

    def _pipelines(self) -> list[Pipeline]:
        assert self.dropout_hazard is not None
        return [self.dropout_hazard]

    def transform_features(self, X: pd.DataFrame) -> pd.DataFrame:
        return super().transform_features(with_clock(X))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        return super().contributions(with_clock(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_horizons(X, [])[0]

    def predict_within(self, X: pd.DataFrame, horizon: int) -> np.ndarray:
        return self.predict_horizons(X, [horizon])[1]

    def predict_horizons(self, X: pd.DataFrame, horizons: list[int]) -> list[np.ndarray]:
        """[eventual risk, risk within each horizon]: one pass over the sessions ahead."""
        assert self.dropout_hazard is not None and self.completion_hazard is not None
        n = len(X)
        if n == 0:
            return [np.empty(0) for _ in range(len(horizons) + 1)]
        start = X["landmark_session"].to_numpy(dtype=np.int64)
        steps = int(max(1, self.last_session - start.min() + 1))
        # the learned features once; then only the clock moves
        Xd = self.dropout_hazard[:-1].transform(with_clock(X))
        Xc = self.completion_hazard[:-1].transform(with_clock(X))
        survival = np.ones(n)
        risk = np.zeros(n)
        within: dict[int, np.ndarray] = {}
        for k in range(steps):
            open_ = start + k <= max(self.last_session, 1)
            if not open_.any():
                break
            for frame in (Xd, Xc):
                frame[PERIOD] = (start + k).astype(np.float32)
                frame[AHEAD] = np.float32(k)
            h_d = np.where(open_, self.dropout_hazard[-1].predict_proba(Xd)[:, 1], 0.0)
            h_c = np.where(open_, self.completion_hazard[-1].predict_proba(Xc)[:, 1], 0.0)
            risk += survival * h_d
            survival = np.clip(survival * (1.0 - h_d - h_c), 0.0, 1.0)
            for h in horizons:
                if k + 1 == h:
                    within[h] = risk.copy()
        out = [np.clip(risk, 0.0, 1.0)]
        out += [np.clip(within.get(h, risk), 0.0, 1.0) for h in horizons]
        return out


def hazard_rounds(
    periods: PersonPeriods, y: np.ndarray, cfg: ModelConfig, n_folds: int, seed: int
) -> int:
    """Trees of one hazard, by early stopping on the weighted log loss of one held-out fold of
    clients (a hazard is a probability: log loss is its proper score; the person-period rows
    are many, so one fold is enough and five would cost five fits)."""
    ex = Examples(periods.X, y, periods.groups)
    fit_idx, val_idx = grouped_folds(ex, np.arange(len(y)), n_folds, seed)[0]
    pipe = make_pipeline(cfg, seed, exposure_column=PERIOD)
    features = pipe[:-1]
    X_fit = features.fit_transform(periods.X.iloc[fit_idx], y[fit_idx])
    X_val = features.transform(periods.X.iloc[val_idx])
    pipe[-1].fit(
        X_fit,
        y[fit_idx],
        sample_weight=periods.weight[fit_idx],
        eval_X=X_val,
        eval_y=y[val_idx],
        eval_sample_weight=[periods.weight[val_idx]],
        eval_metric="binary_logloss",
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    return int(pipe[-1].best_iteration_ or pipe[-1].n_estimators)


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
    if recipe.kind is ModelKind.lightgbm and "min_child_samples" in recipe.params:
        # a (client, landmark) pair stands in several rows (one per later session) with the
        # same features: a leaf must span as many pairs as a landmark classifier's leaf spans
        # rows, or trees learn single clients' futures (risks far too extreme at early
        # landmarks, whose futures are long)
        pairs = periods.X[[c.CLIENT_ID, "landmark_session"]].drop_duplicates().shape[0]
        per_pair = max(1.0, len(periods.X) / max(pairs, 1))
        recipe = dataclasses.replace(
            recipe,
            params={
                **recipe.params,
                "min_child_samples": int(recipe.params["min_child_samples"] * per_pair),
            },
        )

    def fit(y: np.ndarray) -> Pipeline:
        cfg = recipe
        if cfg.kind is ModelKind.lightgbm and cfg.early_stopping_rounds > 0:
            rounds = hazard_rounds(periods, y, cfg, n_folds, seed)
            cfg = dataclasses.replace(cfg, params={**cfg.params, "n_estimators": rounds})
        # the final step's sample weights (the logistic estimator is a pipeline of its own)
        key = (
            "model__sample_weight"
            if cfg.kind is ModelKind.lightgbm
            else "model__logreg__sample_weight"
        )
        return make_pipeline(cfg, seed, exposure_column=PERIOD).fit(
            periods.X, y, **{key: periods.weight}
        )

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
