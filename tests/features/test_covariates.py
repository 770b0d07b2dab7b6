"""Baseline covariates: learned kinds and levels (aggregates only), columns, and a changed risk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout import io, training
from alliance_dropout.config import to_object
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.errors import ConfigError
from alliance_dropout.features.covariates import Covariates
from alliance_dropout.serving import model_signature, score_sessions, synthetic_input_example
from alliance_dropout.simulate import simulate
from tests.conftest import compose_config


def _clients(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame(
        {
            c.CLIENT_ID: [f"c{i}" for i in range(n)],
            "age": np.arange(n, dtype=float),
            "employment": ["employed"] * 40 + ["unemployed"] * 15 + ["rare"] * 3 + [None] * 2,
            "free_text": [f"note {i}" for i in range(n)],  # id-like: must not enter the model
        }
    )


def test_levels_are_aggregates_and_rare_or_unique_values_are_dropped() -> None:
    cov = Covariates.learn(_clients(), ["age", "employment", "free_text"], min_level_clients=10)
    assert cov.numeric == ("age",)
    assert cov.categorical["employment"] == ("employed", "unemployed")
    assert cov.categorical["free_text"] == ()


def test_feature_columns_come_from_the_clients_latest_row() -> None:
    cov = Covariates.learn(_clients(), ["age", "employment"], min_level_clients=10)
    sessions = pd.DataFrame({c.CLIENT_ID: ["c1", "c1", "c41", "c57"]})
    attached = cov.attach_to_sessions(sessions, _clients(), "s.csv")
    X = pd.DataFrame({c.CLIENT_ID: ["c1", "c41", "c57", "unknown"]})
    out = cov.features(X, attached)
    assert out["client_age"].tolist()[:3] == [1.0, 41.0, 57.0]
    assert np.isnan(out["client_age"].iloc[3])
    assert out["client_employment_0"].tolist() == [1.0, 0.0, 0.0, 0.0]  # employed
    assert out["client_employment_1"].tolist() == [0.0, 1.0, 0.0, 0.0]  # unemployed
    assert [s.name for s in cov.specs()] == cov.columns()


def test_a_model_with_covariates_needs_the_clients_table() -> None:
    cov = Covariates(numeric=("age",))
    with pytest.raises(ConfigError, match=r"data\.clients"):
        cov.attach_to_sessions(pd.DataFrame({c.CLIENT_ID: ["a"]}), None, "s.csv")


@pytest.fixture(scope="module")
def model_with_covariates(tmp_path_factory):
    root = tmp_path_factory.mktemp("covariates")
    data = simulate(SimulateConfig(n_clients=800, n_therapists=25, seed=12))
    paths = {
        t: io.write_table(getattr(data, t), root / f"{t}.csv")
        for t in ("sessions", "outcomes", "clients")
    }
    cfg = to_object(
        compose_config(
            "train",
            [
                f"data.sessions={paths['sessions']}",
                f"data.outcomes={paths['outcomes']}",
                f"data.clients={paths['clients']}",
                "data.client_features=[employment_status,referral_route]",
                "model=logreg",
                "experiment=quick",
                "evaluation.comparators=[]",
                f"output_dir={root / 'out'}",
                f"paths.mlruns_dir={root / 'mlruns'}",
            ],
        )
    )
    prepared, settings = training.prepare_data(cfg)
    fitted = training.fit_models(cfg, prepared, settings)
    return fitted.main


def test_a_covariate_changes_a_risk(model_with_covariates) -> None:
    model = model_with_covariates
    assert "employment_status" in model.settings.covariates.names
    assert any(n.startswith("client_employment_status") for n in model.feature_names)
    rows = synthetic_input_example()
    one = rows[rows[c.CLIENT_ID] == "example-A"]
    employed = one.assign(employment_status="employed", referral_route="gp")
    unemployed = one.assign(
        **{c.CLIENT_ID: "example-A2"}, employment_status="unemployed", referral_route="gp"
    )
    answer = score_sessions(model, pd.concat([employed, unemployed], ignore_index=True))
    risks = answer.set_index(c.CLIENT_ID)[c.DROPOUT_RISK].astype(float)
    assert risks["example-A"] != pytest.approx(risks["example-A2"], abs=1e-6)


def test_the_signature_declares_the_covariates(model_with_covariates) -> None:
    names = model_signature(model_with_covariates.settings.covariates).inputs.input_names()
    assert "employment_status" in names and "referral_route" in names
