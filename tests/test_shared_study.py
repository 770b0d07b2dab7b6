"""A hyperparameter search shared by several worker processes (one Optuna study in an RDB).

Two `pipelines/train.py` workers start at once with the same command; the study is created by
one and joined by the other, their trials are numbered once, and every trial is a child run of
one parent run per study. Then one command trains the study's best trial.
"""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import optuna
from mlflow import MlflowClient

from alliance_dropout import io
from alliance_dropout.config import REPO_ROOT
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.simulate import simulate

STUDY = "shared-study"


def _command(root, paths, storage, n_trials: int) -> list[str]:
    return [
        sys.executable,
        str(REPO_ROOT / "pipelines" / "train.py"),
        "tune=lightgbm",
        f"tune.storage={storage}",
        f"tune.study_name={STUDY}",
        f"tune.n_trials={n_trials}",
        "tune.search_space.n_estimators.high=150",
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
        f"tracking.uri=sqlite:///{root / 'mlruns' / 'mlflow.db'}",
    ]


def test_two_workers_share_one_study_and_one_parent_run(tmp_path) -> None:
    data = simulate(SimulateConfig(n_clients=400, n_therapists=15, seed=6))
    paths = {
        t: io.write_table(getattr(data, t), tmp_path / f"{t}.csv") for t in ("sessions", "outcomes")
    }
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    workers = [
        subprocess.Popen(
            _command(tmp_path, paths, storage, 2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]

    study = optuna.load_study(study_name=STUDY, storage=storage)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(4))  # both workers' trials, each numbered once

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name("alliance-dropout")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("study_parent") == "true"]
    assert len(parents) == 1 and parents[0].data.tags["study"] == STUDY
    trials = [r for r in runs if r.info.run_name.startswith("trial-")]
    assert len(trials) == 4
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parents[0].info.run_id}

    # one command trains (and here tracks) the study's best trial: no new trials
    best = subprocess.run(
        _command(tmp_path, paths, storage, 0), capture_output=True, text=True, env=env
    )
    assert best.returncode == 0, best.stderr[-3000:]
    assert len(optuna.load_study(study_name=STUDY, storage=storage).trials) == 4
    latest = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.run_name LIKE 'quick-%'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    for name, value in study.best_params.items():
        assert latest.data.params[f"best.{name}"] == (
            f"{value:.6g}" if isinstance(value, float) else str(value)
        )
