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
from alliance_dropout.modeling.hazard import PERIOD, HazardRiskModel, person_periods
from tests.features.histories import random_sessions

SETTINGS = FeatureSettings(FeaturesConfig(), c.PHQ9, c.WAI_SR)


def test_every_session_is_a_period_and_events_sit_on_the_last_row_only() -> None:
    sessions = random_sessions(6, seed=3)
    ids = sorted(sessions[c.CLIENT_ID].unique())
    status = pd.Series({ids[0]: c.DROPOUT, ids[1]: c.COMPLETED})  # the rest: ongoing/unlabeled
    periods = person_periods(sessions, status, SETTINGS)
    assert len(periods.X) == len(sessions)  # every scheduled session, censored clients included
    assert periods.dropout.sum() == 1 and periods.completion.sum() == 1
    last = sessions.groupby(c.CLIENT_ID)[c.SESSION_NUMBER].max()
    row = periods.X[periods.dropout == 1].iloc[0]
    assert row[c.CLIENT_ID] == ids[0] and row["landmark_session"] == last[ids[0]]
    censored = periods.X[c.CLIENT_ID].isin(ids[2:]).to_numpy()
    assert censored.any()
    assert not periods.dropout[censored].any() and not periods.completion[censored].any()
    assert (periods.X[PERIOD] == periods.X["landmark_session"]).all()


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
