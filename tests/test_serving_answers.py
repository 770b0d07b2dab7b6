"""Issue 10, item 6: the served model answers every client it was sent, or says why not.

``score_sessions`` is called directly with a small fitted model; one test runs MLflow's own
``invocations`` handler in process (no server) to see the HTTP status a caller gets.
"""

from __future__ import annotations

import json
from io import StringIO

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode
from mlflow.pyfunc import scoring_server

from alliance_dropout import contract as c
from alliance_dropout import schemas as s
from alliance_dropout import tracking
from alliance_dropout.config import to_object
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.features.builder import FeatureSettings
from alliance_dropout.modeling.fitting import fit_calibrated, grouped_folds, landmark_examples
from alliance_dropout.modeling.labels import episode_labels
from alliance_dropout.serving import (
    EXCLUDED_BECAUSE,
    OUTPUT_COLUMNS,
    DropoutPyfunc,
    model_signature,
    score_sessions,
    synthetic_input_example,
)
from alliance_dropout.simulate import simulate
from alliance_dropout.validation import RawTables, validate_tables
from tests.conftest import compose_config


@pytest.fixture(scope="module")
def model():
    """A calibrated logistic model fitted on 300 simulated clients (a few seconds)."""
    cfg = to_object(compose_config("train", ["model=logreg", "features.landmarks=[2,4,6]"]))
    data = simulate(SimulateConfig(n_clients=300, n_therapists=12, seed=5))
    raw = RawTables(data.sessions, data.outcomes, None, {"sessions": "-", "outcomes": "-"})
    validated = validate_tables(raw, cfg.data)
    assert validated.outcomes is not None
    labels = episode_labels(validated.outcomes, validated.sessions, cfg.label)
    settings = FeatureSettings(cfg.features, cfg.data.symptom.to_scale(), c.WAI_SR)
    ex = landmark_examples(validated.sessions, labels, settings, cfg.split.group_by)
    folds = grouped_folds(ex, np.arange(len(ex.y)), 3, 0)
    fitted, _ = fit_calibrated(
        ex,
        model_cfg=cfg.model,
        calibration=cfg.calibration,
        folds=folds,
        settings=settings,
        seed=0,
    )
    return fitted


def history(client: object, n: int = 3, **last: object) -> list[dict[str, object]]:
    """A client's rows as a JSON request carries them (dates as text)."""
    rows: list[dict[str, object]] = [
        {
            c.CLIENT_ID: client,
            c.THERAPIST_ID: "T1",
            c.SESSION_NUMBER: k,
            c.SESSION_DATE: f"2025-01-{7 * k:02d}",
            c.ATTENDANCE: c.ATTENDED,
            c.ALLIANCE_CLIENT: 4.2 - 0.3 * k,
            c.ALLIANCE_THERAPIST: 3.8,
            c.SYMPTOM_SCORE: 18.0 - k,
        }
        for k in range(1, n + 1)
    ]
    rows[-1].update(last)
    return rows


def request(*histories: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame([row for h in histories for row in h])


def test_a_clean_request_gets_a_risk_for_every_client(model):
    answer = score_sessions(model, request(history("B"), history("A", 4)))
    assert list(answer.columns) == list(OUTPUT_COLUMNS)
    assert answer[c.CLIENT_ID].tolist() == ["B", "A"]  # in the order they were sent
    assert answer[c.AS_OF_SESSION].tolist() == [3, 4]
    assert answer[EXCLUDED_BECAUSE].isna().all()
    risks = answer.set_index(c.CLIENT_ID)[c.DROPOUT_RISK].astype(float)
    assert risks.between(0, 1).all()
    alone = score_sessions(model, request(history("A", 4)))
    # other clients of the request change nothing (but the last bit of float sums)
    assert alone[c.DROPOUT_RISK].tolist() == [pytest.approx(risks["A"], rel=1e-12)]


@pytest.mark.parametrize(
    ("client", "bad", "check"),
    [
        ("bad-date", {c.SESSION_DATE: "2025-02-30"}, "unreadable_session_date"),
        ("alliance-7", {c.ALLIANCE_CLIENT: 7.0}, "out_of_range_alliance_client"),
        ("dup", {c.SESSION_NUMBER: 2}, s.DUPLICATE_SESSION_NUMBER),
        ("negative", {c.SESSION_NUMBER: -3}, s.INVALID_SESSION_NUMBER),
        ("infinite", {c.SYMPTOM_SCORE: float("inf")}, "out_of_range_symptom_score"),
    ],
)
def test_a_client_with_an_invalid_row_is_answered_with_the_checks_that_excluded_it(
    model, client, bad, check
):
    answer = score_sessions(model, request(history("ok"), history(client, **bad)))
    assert answer[c.CLIENT_ID].tolist() == ["ok", client]
    ok, excluded = answer.iloc[0], answer.iloc[1]
    assert ok[EXCLUDED_BECAUSE] is None and 0 < ok[c.DROPOUT_RISK] < 1
    assert excluded[c.DROPOUT_RISK] is None and excluded[c.AS_OF_SESSION] is None
    assert check in excluded[EXCLUDED_BECAUSE].split(", ")


def test_nothing_scorable_is_an_http_400_naming_the_checks(model):
    rows = request(
        history("A", **{c.SESSION_DATE: "not a date"}),
        history("B", **{c.ALLIANCE_CLIENT: 7.0}),
        history("C", **{c.ALLIANCE_THERAPIST: 9.0}),
    )
    with pytest.raises(MlflowException) as err:
        score_sessions(model, rows)
    assert err.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)
    assert err.value.get_http_status_code() == 400
    message = err.value.message
    assert "unreadable_session_date (1 client)" in message
    assert "out_of_range_alliance_client (1 client)" in message
    assert "out_of_range_alliance_therapist (1 client)" in message
    assert "A" not in message.split(":", 1)[0]


@pytest.mark.parametrize("missing_id", [None, "", "  ", "NA"])
def test_rows_without_a_client_id_never_silently_change_a_risk(model, missing_id):
    unattributed = {**history("A", 4)[3], c.CLIENT_ID: missing_id}
    rows = request(history("A", 3), [unattributed], history("B"))
    with pytest.raises(MlflowException) as err:
        score_sessions(model, rows)
    assert err.value.get_http_status_code() == 400
    assert "1 row(s) without a client_id" in err.value.message
    assert "2 client(s)" in err.value.message


def test_the_answer_is_strict_json_with_nulls(model):
    from mlflow.pyfunc.scoring_server import predictions_to_json

    answer = score_sessions(model, request(history("ok"), history("x", alliance_client=7.0)))
    out = StringIO()
    predictions_to_json(answer, out)

    def no_constants(name: str) -> None:
        raise AssertionError(f"not JSON: {name}")

    body = json.loads(out.getvalue(), parse_constant=no_constants)
    assert body["predictions"][1] == {
        c.CLIENT_ID: "x",
        c.AS_OF_SESSION: None,
        c.DROPOUT_RISK: None,
        c.FLAG_BEYOND_TRAINING_RANGE: None,
        EXCLUDED_BECAUSE: "out_of_range_alliance_client",
    }
    assert body["predictions"][0][EXCLUDED_BECAUSE] is None


def test_signature_declares_every_answer_column():
    outputs = model_signature().outputs
    assert outputs is not None
    assert outputs.input_names() == list(OUTPUT_COLUMNS)
    assert EXCLUDED_BECAUSE in OUTPUT_COLUMNS


def test_mlflow_scoring_server_answers_400_or_200_in_process(model, tmp_path):
    """MLflow's own /invocations handler (no server): 400 naming the checks, else 200."""
    joblib.dump(model, tmp_path / "risk_model.joblib")
    digest = tracking.file_sha256(tmp_path / "risk_model.joblib")
    mlflow.pyfunc.save_model(
        tmp_path / "model",
        python_model=DropoutPyfunc(),
        artifacts={"risk_model": str(tmp_path / "risk_model.joblib")},
        model_config={tracking.MODEL_DIGEST_TAG: digest},  # as tracking.log_model records it
        signature=model_signature(),
        input_example=synthetic_input_example(),
        pip_requirements=["pandas"],  # not inferred: that would import-trace the model
    )
    served = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    schema = served.metadata.get_input_schema()

    def post(rows: pd.DataFrame):
        payload = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        try:
            response = scoring_server.invocations(
                json.dumps(payload), "application/json", served, schema
            )
        except MlflowException as exc:
            return exc.get_http_status_code(), exc.message
        return response.status, json.loads(response.response)

    status, body = post(request(history("A"), history("B", **{c.SESSION_DATE: "2025-13-01"})))
    assert status == 200
    assert [p[EXCLUDED_BECAUSE] for p in body["predictions"]] == [None, "unreadable_session_date"]
    status, message = post(request(history("B", **{c.ALLIANCE_CLIENT: 7.0})))
    assert status == 400
    assert "out_of_range_alliance_client" in message
