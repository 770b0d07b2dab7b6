"""Tracking store set-up: local default, explicit URIs, and parallel jobs on a fresh store."""

from __future__ import annotations

import multiprocessing as mp
import socket
from pathlib import Path

import mlflow
import pytest

from alliance_dropout.errors import TrackingStoreError
from alliance_dropout.tracking import (
    LOCAL_UI,
    flatten,
    resolve_uri,
    setup_tracking,
    training_runs_link,
)


def test_empty_uri_means_the_local_sqlite_store_under_mlruns(tmp_path: Path) -> None:
    uri = resolve_uri("", tmp_path / "mlruns")
    assert uri == f"sqlite:///{(tmp_path / 'mlruns' / 'mlflow.db').resolve()}"
    assert resolve_uri("http://tracking.example:5000", tmp_path) == "http://tracking.example:5000"


def _setup(args: tuple[str, str]) -> str:
    mlruns, experiment = args
    setup_tracking("", experiment, mlruns)
    return mlflow.get_experiment_by_name(experiment).experiment_id


def test_parallel_jobs_create_one_store_and_one_experiment(tmp_path: Path) -> None:
    """Hydra's parallel launchers start several jobs on a fresh store at once; MLflow's schema
    migration races unless creation is serialised (library notes: 3 of 3 runs failed)."""
    mlruns = str(tmp_path / "mlruns")
    with mp.get_context("spawn").Pool(3) as pool:
        ids = pool.map(_setup, [(mlruns, "race")] * 3)
    assert len(set(ids)) == 1
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()


def test_flatten_gives_dotted_param_names() -> None:
    assert flatten({"model": {"params": {"C": 1}}, "seed": 3}) == {"model.params.C": 1, "seed": 3}


def test_a_server_that_is_down_fails_fast_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    with pytest.raises(TrackingStoreError) as err:
        setup_tracking(uri, "x", tmp_path)
    message = str(err.value)
    assert uri in message and "unreachable" in message and "\n" not in message


def test_a_store_that_cannot_be_created_fails_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TrackingStoreError, match="tracking store"):
        setup_tracking("", "x", blocker / "mlruns")


def test_the_experiment_is_tagged_as_model_development(tmp_path: Path) -> None:
    """The tag records what the experiment is; the MLflow 3.17 UI does not pick its view from
    it (see the next test)."""
    setup_tracking("", "kind", tmp_path / "mlruns")
    experiment = mlflow.get_experiment_by_name("kind")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_printed_link_opens_the_training_runs(tmp_path: Path) -> None:
    """The UI opens an experiment in its GenAI view unless the address asks for the training
    runs, so the link a run prints carries ?workflowType=machine_learning."""
    uri = setup_tracking("", "linked", tmp_path / "mlruns")
    with mlflow.start_run() as run:
        pass
    experiment_id = run.info.experiment_id
    assert training_runs_link(uri, run.info.run_id) == (
        f"{LOCAL_UI}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    )
    assert training_runs_link("postgresql://db/mlflow", run.info.run_id) is None
