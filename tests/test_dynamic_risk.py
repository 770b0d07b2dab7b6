"""The hazard framing end to end: trained and tracked, then the caseload's eventual and
horizon risks in the list, the report and the served answer; out-of-range sessions flagged."""

from __future__ import annotations

import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout import io, training
from alliance_dropout import tracking as trk
from alliance_dropout.config import to_object
from alliance_dropout.config.scoring import ScoringConfig, TierConfig
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.errors import ConfigError
from alliance_dropout.modeling.hazard import HazardRiskModel
from alliance_dropout.modeling.models import DropoutRiskModel
from alliance_dropout.scoring import run_scoring, score_caseload
from alliance_dropout.serving import output_columns, score_sessions
from alliance_dropout.simulate import simulate


@pytest.fixture(scope="module")
def hazard_run(tmp_path_factory, compose_cfg):
    root = tmp_path_factory.mktemp("hazard")
    data = simulate(SimulateConfig(n_clients=700, n_therapists=25, seed=21), truth=True)
    paths = {
        name: io.write_table(getattr(data, name), root / "data" / f"{name}.csv")
        for name in ("sessions", "outcomes", "clients")
    }
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    common = [
        f"data.sessions={paths['sessions']}",
        f"data.outcomes={paths['outcomes']}",
        f"data.clients={paths['clients']}",
        "data.client_features=[employment_status,referral_route]",
        f"paths.mlruns_dir={root / 'mlruns'}",
        f"paths.outputs_dir={root / 'outputs'}",
        f"tracking.uri={uri}",
    ]
    cfg = compose_cfg(
        "run",
        [
            *common,
            "model.framing=hazard",
            "features.landmarks=[1,2,3,4,6,8]",
            "model.max_person_periods=20000",
            "evaluation.n_bootstrap=20",
            "evaluation.comparators=[]",
            "split.n_folds=3",
            "tracking.min_test_events=10",
            f"output_dir={root / 'run'}",
        ],
    )
    summary = training.run(to_object(cfg))
    assert summary.promotion is not None
    # the version, promoted or not (a small clinic's model may not pass the gate)
    model_uri = f"models:/alliance-dropout/{summary.promotion.version}"
    model = trk.load_risk_model(model_uri)
    return {
        "root": root,
        "data": data,
        "paths": paths,
        "common": common,
        "summary": summary,
        "model": model,
        "model_uri": model_uri,
    }


def test_the_run_reports_each_horizon_per_landmark_and_the_landmark_average(hazard_run):
    m = hazard_run["summary"].metrics
    for h in (1, 4):
        assert f"test_landmark_02_within{h}_roc_auc" in m
        assert f"test_landmark_02_within{h}_calibration_slope" in m
    assert "test_model_roc_auc_landmark_mean" in m
    assert "test_model_roc_auc_landmark_mean_ci_low" in m
    model = hazard_run["model"]
    assert isinstance(model, HazardRiskModel)
    assert model.served_horizons == [1, 4]


def test_the_caseload_gets_eventual_and_horizon_risks_in_order(hazard_run, compose_cfg):
    out = hazard_run["root"] / "scores" / "risk.csv"
    run_cfg = compose_cfg(
        "score",
        [
            *hazard_run["common"],
            "data.outcomes=null",
            f"output={out}",
            f"model_uri={hazard_run['model_uri']}",
        ],
    )
    run_scoring(to_object(run_cfg), progress=False)
    scored = pd.read_csv(out, dtype={c.CLIENT_ID: str, c.THERAPIST_ID: str})
    assert list(scored.columns) == list(c.risk_list_columns((1, 4)))
    r1, r4, eventual = (
        scored[c.dropout_risk_within(1)],
        scored[c.dropout_risk_within(4)],
        scored[c.DROPOUT_RISK],
    )
    assert r1.notna().all() and (r1 <= r4 + 1e-12).all() and (r4 <= eventual + 1e-12).all()
    # a client past the last training landmark (8) is flagged, one within it never is
    beyond = scored[c.AS_OF_SESSION] > 8
    assert beyond.any() and (~beyond).any()
    assert (scored[c.FLAG_BEYOND_TRAINING_RANGE] == beyond).all()
    html = out.with_suffix(".html").read_text()
    assert "within 4 sessions" in html and "Past the sessions the model learned from" in html


def test_tiers_can_follow_a_horizon_and_rank_by_it(hazard_run):
    model = hazard_run["model"]
    sessions = hazard_run["data"].sessions.merge(hazard_run["data"].clients, on=c.CLIENT_ID)
    cfg = ScoringConfig(tiers=TierConfig(risk=c.dropout_risk_within(1)), report=False)
    scored = score_caseload(sessions, None, model=model, model_id="m", cfg=cfg).scored
    assert scored[c.dropout_risk_within(1)].is_monotonic_decreasing
    top = scored.loc[scored.risk_tier == "high", c.dropout_risk_within(1)].min()
    assert (scored.loc[scored.risk_tier != "high", c.dropout_risk_within(1)] <= top).all()


def test_a_landmark_classifier_cannot_tier_on_a_horizon(hazard_run):
    landmark = DropoutRiskModel(
        settings=hazard_run["model"].settings, classifier=None, model_kind="lightgbm"
    )
    cfg = ScoringConfig(tiers=TierConfig(risk=c.dropout_risk_within(4)))
    with pytest.raises(ConfigError, match="answers the eventual risk only"):
        score_caseload(pd.DataFrame(), None, model=landmark, model_id="m", cfg=cfg)
    with pytest.raises(ValueError, match=r"needs its horizon in scoring\.horizons"):
        ScoringConfig(tiers=TierConfig(risk=c.dropout_risk_within(6)))


def test_the_served_answer_holds_every_horizon(hazard_run):
    model = hazard_run["model"]
    sessions = hazard_run["data"].sessions
    some = sessions[sessions[c.CLIENT_ID].isin(sessions[c.CLIENT_ID].unique()[:5])].copy()
    some[c.SESSION_DATE] = some[c.SESSION_DATE].dt.strftime("%Y-%m-%d")
    answer = score_sessions(model, some)
    assert list(answer.columns) == list(output_columns((1, 4)))
    assert answer[c.dropout_risk_within(4)].notna().all()
    assert (
        answer[c.dropout_risk_within(4)].astype(float) <= answer[c.DROPOUT_RISK].astype(float)
    ).all()
