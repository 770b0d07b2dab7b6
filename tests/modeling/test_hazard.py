"""The hazard framing: person-period rows with censoring, and cumulative incidence arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from alliance_dropout import contract as c
from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.features.builder import FeatureSettings
from alliance_dropout.modeling.hazard import AHEAD, PERIOD, HazardRiskModel, person_periods
from tests.features.histories import random_sessions

SETTINGS = FeatureSettings(FeaturesConfig(), c.PHQ9, c.WAI_SR)


def test_every_later_session_of_every_landmark_is_a_period_with_events_on_the_last_row() -> None:
    sessions = random_sessions(6, seed=3)
    ids = sorted(sessions[c.CLIENT_ID].unique())
    status = pd.Series({ids[0]: c.DROPOUT, ids[1]: c.COMPLETED})  # the rest: ongoing/unlabeled
    periods = person_periods(sessions, status, SETTINGS, max_rows=10**6, seed=0)
    landmarks = set(SETTINGS.features.landmarks)
    expected = sum(
        int((rows[c.SESSION_NUMBER] >= s).sum())
        for _, rows in sessions.groupby(c.CLIENT_ID)
        for s in rows[c.SESSION_NUMBER]
        if s in landmarks
    )
    assert len(periods.X) == expected  # censored clients included, nothing subsampled
    assert (periods.weight == 1).all()
    X = periods.X
    assert (X[PERIOD] == X["landmark_session"] + X[AHEAD]).all() and (X[AHEAD] >= 0).all()
    last = sessions.groupby(c.CLIENT_ID)[c.SESSION_NUMBER].max()
    ended_rows = X[c.CLIENT_ID].isin(ids[:2]).to_numpy() & (
        X[PERIOD].to_numpy() == X[c.CLIENT_ID].map(last).to_numpy()
    )
    # one event per landmark of an ended episode, at its last session
    assert periods.dropout.sum() + periods.completion.sum() == ended_rows.sum()
    assert (periods.dropout + periods.completion)[ended_rows].all()
    assert (X.loc[periods.dropout == 1, c.CLIENT_ID] == ids[0]).all()
    censored = X[c.CLIENT_ID].isin(ids[2:]).to_numpy()
    assert censored.any()
    assert not periods.dropout[censored].any() and not periods.completion[censored].any()


def test_subsampling_keeps_every_event_and_weights_the_rest() -> None:
    sessions = random_sessions(40, seed=5)
    ids = sorted(sessions[c.CLIENT_ID].unique())
    status = pd.Series({i: (c.DROPOUT if k % 3 == 0 else c.COMPLETED) for k, i in enumerate(ids)})
    full = person_periods(sessions, status, SETTINGS, max_rows=10**6, seed=0)
    cap = len(full.X) // 3
    sub = person_periods(sessions, status, SETTINGS, max_rows=cap, seed=0)
    assert sub.dropout.sum() == full.dropout.sum()
    assert sub.completion.sum() == full.completion.sum()
    quiet = (sub.dropout + sub.completion) == 0
    # the weights restore the number of non-event rows in expectation
    n_quiet_full = int(((full.dropout + full.completion) == 0).sum())
    assert abs(sub.weight[quiet].sum() - n_quiet_full) < 0.25 * n_quiet_full
    assert len(sub.X) < 0.5 * len(full.X)


class _Constant(ClassifierMixin, BaseEstimator):
    """A hazard that is the same at every session (for the closed form)."""

    def __init__(self, p: float = 0.1) -> None:
        self.p = p

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.tile([1 - self.p, self.p], (len(X), 1))


def _model(h_d: float, h_c: float, last: int) -> HazardRiskModel:
    def hazard(p: float) -> Pipeline:
        return Pipeline([("identity", FunctionTransformer()), ("h", _Constant(p))])

    return HazardRiskModel(
        settings=SETTINGS,
        classifier=None,
        model_kind="constant-hazard",
        dropout_hazard=hazard(h_d),
        completion_hazard=hazard(h_c),
        last_session=last,
    )


def test_cumulative_incidence_matches_the_closed_form() -> None:
    h_d, h_c, last = 0.05, 0.1, 12
    X = pd.DataFrame({c.CLIENT_ID: ["a", "b"], "landmark_session": [1, 10]})
    model = _model(h_d, h_c, last)
    for start, risk in zip([1, 10], model.predict_proba(X), strict=True):
        steps = last - start + 1
        survive = 1 - h_d - h_c
        expected = h_d * (1 - survive**steps) / (1 - survive)
        assert risk == np.float64(risk) and abs(risk - expected) < 1e-12
    within = model.predict_within(X, 1)
    np.testing.assert_allclose(within, [h_d, h_d])
    # risks grow with the horizon and never pass the eventual risk
    assert (model.predict_within(X, 3) >= within).all()
    assert (model.predict_within(X, 3) <= model.predict_proba(X) + 1e-12).all()
