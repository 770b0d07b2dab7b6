"""What a data scientist and a reviewer see of a run: a sweep as the CLI runs it (subprocess).

Two jobs of one Hydra multirun on a tiny clinic: named runs under one parent run, each job in
its own output folder, a job log that tells the run's story, descriptions a reviewer can read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import pytest
from mlflow import MlflowClient

from alliance_dropout import io
from alliance_dropout.config import REPO_ROOT
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.simulate import simulate


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    data = simulate(SimulateConfig(n_clients=500, n_therapists=20, seed=4))
    paths = {
        t: io.write_table(getattr(data, t), root / f"{t}.csv") for t in ("sessions", "outcomes")
    }
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    cmd = [
        sys.executable,
        str(REPO_ROOT / "pipelines" / "train.py"),
        "-m",
        "seed=1,2",
        "experiment=quick",
        f"data.sessions={paths['sessions']}",
        f"data.outcomes={paths['outcomes']}",
        "data.clients=null",
        "data.audit_attributes=[]",
        "data.client_features=[]",
        "evaluation.comparators=[]",
        "evaluation.n_bootstrap=20",
        "split.n_folds=3",
        f"paths.outputs_dir={root / 'outputs'}",
        f"paths.mlruns_dir={root / 'mlruns'}",
        f"tracking.uri={uri}",
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    mlflow.set_tracking_uri(uri)
    return {"root": root, "stdout": done.stdout, "uri": uri}


def _runs(uri: str):
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name("alliance-dropout")
    return experiment, MlflowClient().search_runs([experiment.experiment_id])


def test_sweep_jobs_are_named_children_of_one_parent(sweep) -> None:
    experiment, runs = _runs(sweep["uri"])
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    parents = [r for r in runs if r.data.tags.get("sweep_parent") == "true"]
    children = [r for r in runs if r.data.tags.get("sweep_parent") != "true"]
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.run_name.startswith("sweep-")
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["sweep"] == parent.data.tags["sweep"]
    names = sorted(r.info.run_name for r in children)
    assert names == ["quick-lightgbm-hazard-seed1-job0", "quick-lightgbm-hazard-seed2-job1"]


def test_each_job_writes_its_own_output_folder(sweep) -> None:
    summaries = sorted((sweep["root"] / "outputs" / "train").rglob("run_summary.json"))
    assert [p.parent.name for p in summaries] == ["job0", "job1"]
    ids = {json.loads(p.read_text())["run_id"] for p in summaries}
    assert len(ids) == 2


def test_job_logs_tell_the_runs_story(sweep) -> None:
    logs = sorted((sweep["root"] / "outputs" / "hydra").rglob("train.log"))
    assert len(logs) == 2
    for path in logs:
        text = path.read_text()
        for step in ("data:", "fit:", "evaluate:", "track:", "training: run"):
            assert step in text, (path, step)
    assert "fit:" in sweep["stdout"]  # the same lines on the console


def test_runs_have_descriptions_and_grouped_metrics(sweep) -> None:
    _, runs = _runs(sweep["uri"])
    for run in runs:
        if run.data.tags.get("sweep_parent") == "true":
            continue
        note = run.data.tags["mlflow.note.content"]
        assert "ROC AUC" in note and "95% CI" in note
        assert "a_headline/roc_auc_landmark_mean" in run.data.metrics
        assert "a_headline/roc_auc_pooled" in run.data.metrics
        assert any(k.startswith("test/") for k in run.data.metrics)
        assert any(k.startswith("data/") for k in run.data.metrics)
        assert not any(k.startswith("test_") for k in run.data.metrics)
        # parameters with the digits that matter, not 16 decimals
        assert all(len(v) < 20 for k, v in run.data.params.items() if k.startswith("fitted."))
