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
import warnings
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from alliance_dropout import contract as c
from alliance_dropout.config.modeling import ModelConfig, ModelKind
from alliance_dropout.features.builder import FeatureSettings
from alliance_dropout.features.spec import FeatureSpec
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
    # the recalibration of each hazard's estimator (fitted on held-out clients); None: as is
    dropout_calibration: CalibratedClassifierCV | None = None
    completion_calibration: CalibratedClassifierCV | None = None
    last_session: int = 40
    # the clock is held at the edge of the training data beyond it (a linear hazard would
    # otherwise extrapolate its trend in the session number over every projected session)
    period_cap: float = np.inf
    ahead_cap: float = np.inf
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

    def feature_specs(self) -> list[FeatureSpec]:
        """The dictionary, plus the hazard's clock."""
        reference = "Singer & Willett 1993; van Houwelingen 2007 (landmarking)"
        return [
            *super().feature_specs(),
            FeatureSpec(
                PERIOD,
                "hazard_clock",
                "The session the hazard is about (the landmark session plus the sessions ahead).",
                "session number",
                reference,
            ),
            FeatureSpec(
                AHEAD,
                "hazard_clock",
                "How many sessions after the landmark (whose features are used) the hazard is "
                "about; 0 at the landmark itself.",
                "sessions",
                reference,
            ),
        ]

    @staticmethod
    def _hazard(
        pipe: Pipeline, calibration: CalibratedClassifierCV | None, Xt: pd.DataFrame
    ) -> np.ndarray:
        estimator = calibration if calibration is not None else pipe[-1]
        return np.asarray(estimator.predict_proba(Xt)[:, 1], dtype=float)

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
        # the landmark itself may lie past the cap too (a client beyond the training range)
        Xd[PERIOD] = np.minimum(Xd[PERIOD].to_numpy(), self.period_cap).astype(np.float32)
        Xc[PERIOD] = np.minimum(Xc[PERIOD].to_numpy(), self.period_cap).astype(np.float32)
        survival = np.ones(n)
        risk = np.zeros(n)
        within: dict[int, np.ndarray] = {}
        for k in range(steps):
            open_ = start + k <= max(self.last_session, 1)
            if not open_.any():
                break
            for frame in (Xd, Xc):
                frame[PERIOD] = np.minimum(start + k, self.period_cap).astype(np.float32)
                frame[AHEAD] = np.float32(min(k, self.ahead_cap))
            h_d = np.where(
                open_, self._hazard(self.dropout_hazard, self.dropout_calibration, Xd), 0.0
            )
            h_c = np.where(
                open_, self._hazard(self.completion_hazard, self.completion_calibration, Xc), 0.0
            )
            risk += survival * h_d
            survival = np.clip(survival * (1.0 - h_d - h_c), 0.0, 1.0)
            for h in horizons:
                if k + 1 == h:
                    within[h] = risk.copy()
        out = [np.clip(risk, 0.0, 1.0)]
        out += [np.clip(within.get(h, risk), 0.0, 1.0) for h in horizons]
        return out


@dataclass
class FittedHazard:
    pipeline: Pipeline
    calibration: CalibratedClassifierCV


def fit_hazard(
    periods: PersonPeriods, y: np.ndarray, cfg: ModelConfig, n_folds: int, seed: int
) -> FittedHazard:
    """One hazard: fitted on the clients of all folds but one, early-stopped (LightGBM) and
    recalibrated on the held-out fold's clients.

    A hazard is a probability: the weighted log loss is its proper score, so early stopping
    watches it; a logistic recalibration of the held-out log-odds (Platt; Steyerberg's
    recalibration) then corrects a hazard that is too cautious or too sure, which the
    cumulative incidence would otherwise compound over every session ahead. The person-period
    rows are many, so one held-out fold is enough, and the fold's model is the final one.
    """
    ex = Examples(periods.X, y, periods.groups)
    fit_idx, val_idx = grouped_folds(ex, np.arange(len(y)), n_folds, seed)[0]
    pipe = make_pipeline(cfg, seed, exposure_column=PERIOD, clock_columns=CLOCK_COLUMNS)
    features = pipe[:-1]
    X_fit = features.fit_transform(periods.X.iloc[fit_idx], y[fit_idx])
    X_val = features.transform(periods.X.iloc[val_idx])
    w_fit, w_val = periods.weight[fit_idx], periods.weight[val_idx]
    if cfg.kind is ModelKind.lightgbm and cfg.early_stopping_rounds > 0:
        pipe[-1].fit(
            X_fit,
            y[fit_idx],
            sample_weight=w_fit,
            eval_X=X_val,
            eval_y=y[val_idx],
            eval_sample_weight=[w_val],
            eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
        )
    elif cfg.kind is ModelKind.lightgbm:
        pipe[-1].fit(X_fit, y[fit_idx], sample_weight=w_fit)
    else:  # the logistic estimator is a pipeline of its own
        pipe[-1].fit(X_fit, y[fit_idx], logreg__sample_weight=w_fit)
    calibration = CalibratedClassifierCV(FrozenEstimator(pipe[-1]), method="sigmoid")
    with warnings.catch_warnings():
        # the weights are meant for the calibrator only: the frozen hazard is not refitted
        warnings.filterwarnings("ignore", message="Since FrozenEstimator does not appear")
        calibration.fit(X_val, y[val_idx], sample_weight=w_val)
    return FittedHazard(pipe, calibration)


def clock_caps(periods: PersonPeriods, share: float = 0.99) -> tuple[float, float]:
    """The session number and the sessions ahead below which ``share`` of the training events
    fall: the edge of the data the hazards were fitted on."""
    event = (periods.dropout + periods.completion) > 0
    if not event.any():
        return np.inf, np.inf
    rows = periods.X.loc[event]
    return (
        float(np.quantile(rows[PERIOD].to_numpy(), share)),
        float(np.quantile(rows[AHEAD].to_numpy(), share)),
    )


def fit_hazards(
    periods: PersonPeriods,
    *,
    model_cfg: ModelConfig,
    settings: FeatureSettings,
    n_folds: int,
    seed: int,
    last_session: int,
) -> HazardRiskModel:
    """Both hazards on the person-period rows (see :func:`fit_hazard`)."""
    # hazards are probabilities: no class re-weighting
    recipe = dataclasses.replace(model_cfg, class_weight=None)
    if recipe.kind is ModelKind.logreg and "C" in recipe.params:
        # the penalty is weighed against the summed loss of every row, and a (client,
        # landmark) pair stands in several near-identical rows (one per later session): keep
        # the penalty's strength per pair what it is per example in the landmark framing
        pairs = periods.X[[c.CLIENT_ID, "landmark_session"]].drop_duplicates().shape[0]
        rows_per_pair = float(periods.weight.sum()) / max(pairs, 1)
        params = {**recipe.params, "C": float(recipe.params["C"]) / max(rows_per_pair, 1.0)}
        recipe = dataclasses.replace(recipe, params=params)

    def fit(y: np.ndarray) -> FittedHazard:
        return fit_hazard(periods, y, recipe, n_folds, seed)

    dropout, completion = fit(periods.dropout), fit(periods.completion)
    model = HazardRiskModel(
        settings=settings,
        classifier=None,  # two hazards instead of one classifier
        model_kind=f"{model_cfg.kind.value}-hazard",
        dropout_hazard=dropout.pipeline,
        completion_hazard=completion.pipeline,
        dropout_calibration=dropout.calibration,
        completion_calibration=completion.calibration,
        last_session=last_session,
    )
    model.period_cap, model.ahead_cap = clock_caps(periods)
    model.feature_names = list(model.transform_features(periods.X.head(1)).columns)
    return model
