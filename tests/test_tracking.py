"""Tracking store set-up: local default, explicit URIs, and parallel jobs on a fresh store."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import mlflow

from alliance_dropout.tracking import flatten, resolve_uri, setup_tracking


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
