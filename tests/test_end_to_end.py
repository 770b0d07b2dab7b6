"""The whole pipeline on a small generated set, against a temporary MLflow store.

Trains once per module (validate -> features -> calibrated LightGBM + baseline -> evaluation ->
MLflow run -> registry), then checks what the run holds, loads the champion from the registry,
scores a caseload through the command-line stage and through `mlflow models serve`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from alliance_dropout import contract as c
from alliance_dropout import io, tracking, training
from alliance_dropout.config import REPO_ROOT, to_object
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.contract import RISK_LIST_COLUMNS
from alliance_dropout.scoring import run_scoring
from alliance_dropout.simulate import simulate
from tests.conftest import compose_config as compose_cfg


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = simulate(SimulateConfig(n_clients=900, n_therapists=30, seed=11))
    paths = {}
    for name in ("sessions", "outcomes", "clients"):
        paths[name] = io.write_table(getattr(data, name), root / "data" / f"{name}.csv")
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    common = [
        f"data.sessions={paths['sessions']}",
        f"data.outcomes={paths['outcomes']}",
        f"data.clients={paths['clients']}",
        "data.audit_attributes=[gender,age_band]",
        "data.client_features=[]",  # the same inputs whichever data config is composed
        f"paths.mlruns_dir={root / 'mlruns'}",
        f"paths.outputs_dir={root / 'outputs'}",
        f"tracking.uri={uri}",
    ]
    train_overrides = [
        *common,
        "features.landmarks=[2,4,6,8]",
        "evaluation.n_bootstrap=30",
        "split.n_folds=3",
        # a small clinic: its test set holds about 50 dropouts, the gate's default minimum
        "tracking.min_test_events=20",
        f"output_dir={root / 'run'}",
    ]
    cfg = compose_cfg("run", train_overrides)
    summary = training.run(to_object(cfg))
    return {
        "root": root,
        "data": data,
        "paths": paths,
        "uri": uri,
        "common": common,
        "summary": summary,
        "train_overrides": train_overrides,
    }


def test_run_holds_config_lineage_metrics_plots_card_and_model(workspace):
    mlflow.set_tracking_uri(workspace["uri"])
    client = MlflowClient()
    run = client.get_run(workspace["summary"].run_id)
    params, tags = run.data.params, run.data.tags
    # the store groups metric names (test/..., data/...); read them back by the flat key
    stored = run.data.metrics
    metrics = {k: stored[tracking.metric_name(k)] for k in workspace["summary"].metrics}
    assert stored["a_headline/roc_auc_pooled"] == metrics["test_model_roc_auc"]
    assert stored["a_headline/roc_auc_landmark_mean"] == metrics["test_model_roc_auc_landmark_mean"]
    assert run.data.tags["mlflow.note.content"].startswith("**Held-out test set**")
    assert params["model.kind"] == "lightgbm"
    assert tags["git_commit"]
    assert "dropout" in tags["label_definition"]
    assert tags["version.lightgbm"]
    assert len(tags["data.sessions.sha256"]) == 64
    for key in (
        "test_model_roc_auc",
        "test_model_roc_auc_ci_low",
        "test_model_brier",
        "test_model_calibration_slope",
        "test_logreg_roc_auc",
        "test_rule_latest_alliance_roc_auc",
        "test_model_minus_logreg_roc_auc",
    ):
        assert key in metrics, key
    assert metrics["test_model_roc_auc_ci_low"] <= metrics["test_model_roc_auc"]
    assert metrics["test_model_roc_auc"] <= metrics["test_model_roc_auc_ci_high"]
    assert 0.55 < metrics["test_model_roc_auc"] < 0.95
    inputs = run.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.name == "sessions_validated"

    artifacts = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, dst_path=str(workspace["root"] / "dl")
        )
    )
    for rel in (
        "config/resolved.yaml",
        "validation/validation_report.json",
        "features/feature_dictionary.md",
        "model_card.md",
        "evaluation/overall.csv",
        "evaluation/subgroups.csv",
        "plots/roc_pr.png",
        "plots/reliability.png",
        "plots/auc_by_landmark.png",
        "plots/decision_curve.png",
        "plots/feature_importance.png",
        "plots/contributions.png",
        "plots/subgroups.png",
    ):
        assert (artifacts / rel).is_file(), rel
    dictionary = (artifacts / "features" / "feature_dictionary.md").read_text()
    for family in ("## ruptures", "## expected_course", "## therapist_context"):
        assert family in dictionary
    card = (artifacts / "model_card.md").read_text()
    for section in (
        "Intended use",
        "Must not be used for",
        "Calibration",
        "Subgroups",
        "Limitations",
    ):
        assert section in card
    by_landmark = pd.read_csv(artifacts / "evaluation" / "by_landmark.csv")
    assert set(by_landmark["landmark"]) == {2, 4, 6, 8}
    model_rows = by_landmark[by_landmark["score"] == "model"]
    for col in ("roc_auc", "ci_low", "ci_high", "pr_auc", "brier", "calibration_intercept"):
        assert model_rows[col].notna().all(), col
    subgroups = pd.read_csv(artifacts / "evaluation" / "subgroups.csv")
    assert set(subgroups["attribute"]) == {"gender", "age_band"}

    # health data stays out of MLflow: no client id appears in any text artifact
    ids = set(workspace["data"].sessions[c.CLIENT_ID])
    for f in artifacts.rglob("*"):
        if f.suffix in {".json", ".md", ".csv", ".yaml", ".txt"}:
            text = f.read_text(errors="ignore")
            leaked = [i for i in list(ids)[:300] if i in text]
            assert not leaked, f"client ids in {f.name}"


def test_first_run_becomes_champion_and_loads_from_the_registry(workspace):
    mlflow.set_tracking_uri(workspace["uri"])
    promotion = workspace["summary"].promotion
    assert promotion is not None and promotion.promoted, promotion
    # a destination of its own: without one, MLflow downloads into a temporary folder it
    # never removes
    local = workspace["root"] / "champion"
    local.mkdir(exist_ok=True)
    model = mlflow.pyfunc.load_model("models:/alliance-dropout@champion", dst_path=str(local))
    sessions = workspace["data"].sessions
    some = sessions[sessions[c.CLIENT_ID].isin(sessions[c.CLIENT_ID].unique()[:5])].copy()
    some[c.SESSION_DATE] = pd.to_datetime(some[c.SESSION_DATE]).dt.strftime("%Y-%m-%d")
    out = model.predict(some)
    assert len(out) == 5
    assert out["dropout_risk"].between(0, 1).all()


def test_a_worse_model_is_registered_but_not_promoted(workspace):
    cfg = compose_cfg(
        "run",
        [
            *workspace["train_overrides"],
            "model=logreg",
            "evaluation.comparators=[]",
            "tracking.promotion_margin=0.3",
            f"output_dir={workspace['root'] / 'run2'}",
        ],
    )
    summary = training.run(to_object(cfg))
    assert summary.promotion is not None
    assert not summary.promotion.promoted
    # beaten by the champion or the rules, or (a logistic hazard on 900 episodes) not
    # calibrated: any of the gate's rules may stop it, each in plain words
    assert any(word in summary.promotion.reason for word in ("champion", "rule", "not calibrated"))
    assert summary.promotion.version == "2"  # registered all the same
    client = MlflowClient()
    champion = client.get_model_version_by_alias("alliance-dropout", "champion")
    assert str(champion.version) == workspace["summary"].promotion.version


def test_the_same_seed_gives_the_same_metrics_to_the_last_digit(workspace):
    cfg = compose_cfg(
        "train", [*workspace["train_overrides"], f"output_dir={workspace['root'] / 'again'}"]
    )
    again = training.run(to_object(cfg)).metrics
    first = workspace["summary"].metrics
    keys = [k for k in first if k.startswith("test_") and "champion" not in k]
    assert len(keys) > 50
    assert {k: again[k] for k in keys} == {k: first[k] for k in keys}


@pytest.fixture(scope="module")
def caseload(workspace):
    """Ongoing clients plus ended ones (skipped) and one client with a bad row (quarantined)."""
    data = workspace["data"]
    sessions = data.sessions.copy()
    # a clinic export carries a few decimals; JSON cannot carry more than 15 digits either
    scores = list(c.SESSION_SCORES)
    sessions[scores] = sessions[scores].round(4)
    bad_client = sessions[c.CLIENT_ID].iloc[0]
    idx = sessions.index[sessions[c.CLIENT_ID] == bad_client][0]
    sessions[c.SYMPTOM_SCORE] = sessions[c.SYMPTOM_SCORE].astype(object)
    sessions.loc[idx, c.SYMPTOM_SCORE] = "ninety"
    root = workspace["root"]
    path = io.write_table(sessions, root / "caseload" / "sessions.csv")
    out = root / "caseload" / "scores.csv"
    cfg = compose_cfg(
        "score",
        [*workspace["common"], f"data.sessions={path}", "data.outcomes=null", f"output={out}"],
    )
    summary = run_scoring(to_object(cfg), progress=False)
    return {
        "summary": summary,
        "out": out,
        "sessions": sessions,
        "bad_client": bad_client,
        "cfg": cfg,
    }


def test_scoring_writes_a_ranked_explained_list(workspace, caseload):
    summary, out = caseload["summary"], caseload["out"]
    scored = pd.read_csv(out, dtype={c.CLIENT_ID: str, c.THERAPIST_ID: str})
    assert list(scored.columns) == list(RISK_LIST_COLUMNS)
    outcomes = workspace["data"].outcomes
    ended = set(outcomes.loc[outcomes[c.STATUS] != c.ONGOING, c.CLIENT_ID])
    all_clients = set(caseload["sessions"][c.CLIENT_ID])
    expected = all_clients - ended - {caseload["bad_client"]}
    # outcomes not given: nothing skipped, every valid client scored
    assert summary.n_skipped_ended == 0
    assert set(scored[c.CLIENT_ID]) == all_clients - {caseload["bad_client"]}
    assert summary.n_quarantined_clients == 1
    assert scored["dropout_risk"].is_monotonic_decreasing
    assert scored["dropout_risk"].between(0, 1).all()
    n = len(scored)
    counts = scored["risk_tier"].value_counts()
    assert counts["high"] == round(0.10 * n)
    assert counts["high"] + counts["medium"] == round(0.30 * n)
    assert summary.tier_counts == {k: int(counts.get(k, 0)) for k in ("high", "medium", "low")}
    assert scored["top_reasons"].str.len().gt(0).mean() > 0.9
    assert scored["model_id"].eq("alliance-dropout v1").all()
    latest = caseload["sessions"].groupby(c.CLIENT_ID)[c.SESSION_NUMBER].max()
    assert (
        scored.set_index(c.CLIENT_ID)["as_of_session"]
        == latest.reindex(scored[c.CLIENT_ID]).to_numpy()
    ).all()
    for flag in (
        "flag_unrepaired_rupture",
        "flag_low_alliance",
        "flag_off_expected_course",
        "flag_recent_missed",
    ):
        assert scored[flag].isin([True, False]).all()
    quarantine = pd.read_csv(out.with_suffix(".quarantine.csv"), dtype=str)
    assert set(quarantine[c.CLIENT_ID]) == {caseload["bad_client"]}
    report = out.with_suffix(".html").read_text()
    assert "caseload" in report.lower()
    assert expected  # the caseload has active clients


def test_scoring_with_outcomes_skips_ended_clients(workspace, caseload):
    out = workspace["root"] / "caseload" / "active.parquet"
    cfg = compose_cfg(
        "score",
        [
            *workspace["common"],
            f"data.sessions={workspace['paths']['sessions']}",
            f"data.outcomes={workspace['paths']['outcomes']}",
            f"output={out}",
            "scoring.report=false",
        ],
    )
    summary = run_scoring(to_object(cfg), progress=False)
    outcomes = workspace["data"].outcomes
    n_ended = int((outcomes[c.STATUS] != c.ONGOING).sum())
    assert summary.n_skipped_ended == n_ended
    scored = pd.read_parquet(out)
    assert set(scored[c.CLIENT_ID]) == set(
        outcomes.loc[outcomes[c.STATUS] == c.ONGOING, c.CLIENT_ID]
    )
    assert not out.with_suffix(".html").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Kept in the fast suite on purpose: it is the one test that covers serving end to end (a real
# `mlflow models serve` process on 127.0.0.1), and it costs about 10 s of the suite's time.
def test_served_model_answers_the_same_risks_as_the_command_line(workspace, caseload):
    scored = pd.read_csv(caseload["out"], dtype={c.CLIENT_ID: str})
    sessions = caseload["sessions"]
    clients = scored[c.CLIENT_ID].head(8).tolist()
    rows = sessions[sessions[c.CLIENT_ID].isin(clients)].copy()
    rows[c.SESSION_DATE] = pd.to_datetime(rows[c.SESSION_DATE]).dt.strftime("%Y-%m-%d")
    cols = [col for col in c.SESSION_COLUMNS if col in rows]
    payload = json.loads(rows[cols].to_json(orient="split", index=False, double_precision=15))
    port = _free_port()
    # the server runs `uvicorn` from the environment's bin folder, as `make serve` does
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": workspace["uri"], "PATH": path}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/alliance-dropout@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("model server did not come up within 90 s")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_split": payload}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            served = pd.DataFrame(json.loads(resp.read())["predictions"])
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    served = served.set_index(c.CLIENT_ID)["dropout_risk"]
    expected = scored.set_index(c.CLIENT_ID).loc[clients, "dropout_risk"]
    np.testing.assert_allclose(served.loc[clients].to_numpy(), expected.to_numpy(), rtol=1e-6)


def test_scoring_a_parquet_export_with_its_own_column_names_and_codes(workspace, caseload):
    """An export named and coded differently, mapped by conf/data/example_clinic.yaml."""
    mapping = OmegaConf.load(REPO_ROOT / "conf" / "data" / "example_clinic.yaml")
    columns = {k: v for k, v in mapping.columns.items() if k != c.STATUS}
    codes = {v: k for k, v in mapping.attendance_codes.items()}  # canonical -> export code
    sessions = caseload["sessions"].copy()  # the CLI caseload, with its one bad row
    sessions[c.ATTENDANCE] = sessions[c.ATTENDANCE].map(codes)
    sessions[c.SYMPTOM_SCORE] = sessions[c.SYMPTOM_SCORE].astype(str)  # Parquet needs one type
    export = sessions.rename(columns=columns)
    path = workspace["root"] / "clinic" / "export.parquet"
    path.parent.mkdir(parents=True)
    export.to_parquet(path, index=False)
    out = workspace["root"] / "clinic" / "risk.csv"
    cfg = compose_cfg(
        "score",
        [
            *workspace["common"],
            "data=example_clinic",
            f"data.sessions={path}",
            "data.outcomes=null",
            "data.clients=null",
            f"output={out}",
        ],
    )
    summary = run_scoring(to_object(cfg), progress=False)
    assert summary.n_quarantined_clients == 1  # the same bad row, found through the mapping
    mapped = pd.read_csv(out, dtype={c.CLIENT_ID: str}).set_index(c.CLIENT_ID)
    reference = pd.read_csv(caseload["out"], dtype={c.CLIENT_ID: str}).set_index(c.CLIENT_ID)
    assert set(mapped.index) == set(reference.index)
    np.testing.assert_allclose(
        mapped.loc[reference.index, "dropout_risk"].to_numpy(),
        reference["dropout_risk"].to_numpy(),
        rtol=1e-9,
    )
