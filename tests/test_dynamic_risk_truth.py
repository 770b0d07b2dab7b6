"""Issue 11's acceptance against the simulator's uncensored truth (slow: two full fits).

One clinic of 12,000 episodes, every episode also run past the export date to its end. Half of
its clients, as the export has them (censored), train the model; the other half (same
therapists) are scored as caseloads cut at landmark sessions, and as the caseload still ongoing
at the export date, and judged against how their episodes really ended.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout.config import to_object
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.modeling import metrics as m
from alliance_dropout.simulate import simulate
from alliance_dropout.training import fit_models, prepare_data

pytestmark = pytest.mark.slow
LANDMARKS = (2, 3, 5)


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    root = tmp_path_factory.mktemp("truth")
    data = simulate(
        dataclasses.replace(SimulateConfig(), n_clients=12_000, n_therapists=300), truth=True
    )
    assert data.truth is not None
    ids = data.outcomes[c.CLIENT_ID].to_numpy()
    test_ids = set(np.random.default_rng(1).permutation(ids)[:6000])
    paths = {}
    for name in ("sessions", "outcomes", "clients"):
        table = getattr(data, name)
        paths[name] = io.write_table(
            table[~table[c.CLIENT_ID].isin(test_ids)], root / f"{name}.csv"
        )
    test_sessions = data.sessions[data.sessions[c.CLIENT_ID].isin(test_ids)].merge(
        data.clients, on=c.CLIENT_ID
    )
    outcomes = data.outcomes[data.outcomes[c.CLIENT_ID].isin(test_ids)]
    ongoing = outcomes.loc[outcomes[c.STATUS] == c.ONGOING, c.CLIENT_ID]
    return {
        "root": root,
        "paths": paths,
        "sessions": test_sessions,
        "ongoing": set(ongoing),
        "truth": data.truth.set_index(c.CLIENT_ID),
    }


def _fit(clinic, compose_cfg, framing: str):
    p = clinic["paths"]
    cfg = compose_cfg(
        "train",
        [
            f"model.framing={framing}",
            f"data.sessions={p['sessions']}",
            f"data.outcomes={p['outcomes']}",
            f"data.clients={p['clients']}",
            "evaluation.comparators=[]",
            f"output_dir={clinic['root'] / framing}",
        ],
    )
    run_cfg = to_object(cfg)
    data, settings = prepare_data(run_cfg)
    return fit_models(run_cfg, data, settings).main


@pytest.fixture(scope="module")
def hazard(clinic, compose_cfg):
    return _fit(clinic, compose_cfg, "hazard")


@pytest.fixture(scope="module")
def landmark(clinic, compose_cfg):
    return _fit(clinic, compose_cfg, "landmark")


def _cut(sessions: pd.DataFrame, s: int) -> pd.DataFrame:
    has = sessions.loc[sessions[c.SESSION_NUMBER] == s, c.CLIENT_ID]
    return sessions[sessions[c.CLIENT_ID].isin(has) & (sessions[c.SESSION_NUMBER] <= s)]


def _calibration(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    return m.calibration_slope(y, p), float(p.mean() - y.mean())


def test_eventual_risk_is_calibrated_at_each_landmark_and_on_the_ongoing_caseload(clinic, hazard):
    truth = clinic["truth"]
    for s in LANDMARKS:
        X = hazard.landmark_frame(_cut(clinic["sessions"], s), None)
        y = (truth.loc[X[c.CLIENT_ID], c.STATUS] == c.DROPOUT).to_numpy(int)
        slope, citl = _calibration(y, hazard.predict_proba(X))
        assert 0.85 <= slope <= 1.15, (s, slope)
        assert abs(citl) <= 0.02, (s, citl)
    ongoing = clinic["sessions"][clinic["sessions"][c.CLIENT_ID].isin(clinic["ongoing"])]
    X = hazard.landmark_frame(ongoing, None)
    y = (truth.loc[X[c.CLIENT_ID], c.STATUS] == c.DROPOUT).to_numpy(int)
    slope, citl = _calibration(y, hazard.predict_proba(X))
    assert abs(citl) <= 0.02, citl
    assert 0.75 <= slope <= 1.35, slope  # ~750 clients: the slope's 95% CI is about +-0.3


def test_horizon_risks_are_calibrated_per_landmark(clinic, hazard):
    truth = clinic["truth"]
    for s in LANDMARKS:
        X = hazard.landmark_frame(_cut(clinic["sessions"], s), None)
        t = truth.loc[X[c.CLIENT_ID]]
        risks = hazard.predict_horizons(X, [4])
        y4 = ((t[c.STATUS] == c.DROPOUT) & (t["last_session"] <= s + 3)).to_numpy(int)
        slope, citl = _calibration(y4, risks[1])
        assert abs(citl) <= 0.02, (s, citl)
        assert 0.7 <= slope <= 1.3, (s, slope)


def test_the_hazard_framing_ranks_at_least_as_well_as_the_landmark_classifier(
    clinic, hazard, landmark
):
    truth = clinic["truth"]
    gains = []
    for s in LANDMARKS:
        X = hazard.landmark_frame(_cut(clinic["sessions"], s), None)
        y = (truth.loc[X[c.CLIENT_ID], c.STATUS] == c.DROPOUT).to_numpy(int)
        gains.append(
            m.CORE_METRICS["roc_auc"](y, hazard.predict_proba(X), None)
            - m.CORE_METRICS["roc_auc"](y, landmark.predict_proba(X), None)
        )
    assert np.mean(gains) > -0.005, gains
