"""A shared study's storage: where it comes from, what the config refuses, and how a storage that
cannot be used fails (one line naming the URL, before any training). The real PostgreSQL cases
(wrong password, two workers on one study) are in tests/test_tracking_server.py."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest

from alliance_dropout import tracking
from alliance_dropout.config import REPO_ROOT, to_object
from alliance_dropout.config.modeling import TuneConfig
from alliance_dropout.errors import ConfigError, StudyStorageError
from alliance_dropout.modeling.tuning import open_study, study_parent_run, study_storage

REQUIRED = ["data.sessions=s.csv", "data.outcomes=o.csv"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tracking_server_gives_the_studies_database_by_default(compose_cfg, monkeypatch) -> None:
    monkeypatch.setenv("TRACKING_PORT", "6050")
    monkeypatch.setenv("TRACKING_PG_PORT", "6051")
    cfg = to_object(compose_cfg("train", [*REQUIRED, "tracking=server", "tune=lightgbm"]))
    assert cfg.tracking.uri == "http://127.0.0.1:6050"
    assert cfg.tune.storage == "postgresql+psycopg2://optuna@127.0.0.1:6051/optuna"
    assert to_object(compose_cfg("run", [*REQUIRED, "tracking=server"])).tune.storage == (
        "postgresql+psycopg2://optuna@127.0.0.1:6051/optuna"
    )


def test_the_local_store_has_no_default_study_storage(compose_cfg) -> None:
    cfg = to_object(compose_cfg("train", ["tune=lightgbm"]))
    assert cfg.tune.storage is None
    assert study_storage(cfg.tune) is None  # a search within the process: nothing to open
    with pytest.raises(ConfigError, match=r"tune\.study_name needs tune\.storage"):
        to_object(compose_cfg("train", ["tune=lightgbm", "tune.study_name=s"]))


@pytest.mark.parametrize(
    "overrides",
    [
        ["tune.storage=postgresql+psycopg2://optuna:s3cret-pw@127.0.0.1:5051/optuna"],
        ["tracking.optuna_storage=postgresql+psycopg2://optuna:s3cret-pw@127.0.0.1/optuna"],
        ["tracking.uri=http://admin:s3cret-pw@127.0.0.1:5050"],
    ],
)
def test_a_password_in_a_url_is_refused_without_repeating_it(compose_cfg, overrides) -> None:
    """The resolved config is logged as MLflow params and in Hydra's files: a URL in it must
    not carry a password, so the config refuses one (the password goes in the environment)."""
    with pytest.raises(ConfigError) as info:
        to_object(compose_cfg("train", overrides))
    message = str(info.value)
    assert "holds a password" in message and "s3cret-pw" not in message


def test_a_storage_that_is_down_fails_in_one_line_naming_it() -> None:
    url = f"postgresql+psycopg2://optuna@127.0.0.1:{_free_port()}/optuna"
    with pytest.raises(StudyStorageError) as info:
        study_storage(TuneConfig(n_trials=2, storage=url, study_name="s"))
    message = str(info.value)
    assert message.startswith(f"tune.storage {url}: ") and "\n" not in message
    assert "Connection refused" in message


def test_training_the_best_trial_of_a_missing_study_creates_nothing(tmp_path: Path) -> None:
    from alliance_dropout.modeling.tuning import tune

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    cfg = TuneConfig(n_trials=0, storage=url, study_name="never-run")
    with pytest.raises(StudyStorageError, match="no study named 'never-run'"):
        tune(None, [], None, cfg, seed=1)  # type: ignore[arg-type]  # fails before any use
    assert optuna.get_all_study_names(storage=url) == []


def test_the_cli_stops_with_exit_2_before_any_work_when_the_server_is_down(tmp_path) -> None:
    uri = f"http://127.0.0.1:{_free_port()}"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "pipelines" / "train.py"),
            f"tracking.uri={uri}",
            f"paths.outputs_dir={tmp_path / 'outputs'}",
            f"paths.mlruns_dir={tmp_path / 'mlruns'}",
            "data.sessions=/nonexistent/sessions.csv",  # never read: the store is checked first
            "data.outcomes=/nonexistent/outcomes.csv",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: tracking store {uri}: unreachable ([Errno 111] Connection refused)"]
    assert "nonexistent" not in done.stderr + done.stdout


def test_the_study_creator_makes_the_one_parent_run_and_joiners_wait_for_it(tmp_path) -> None:
    """Workers that start together each find no parent run by tag and would make their own:
    the one whose create_study made the study makes it and records it there, the others wait
    for that record. A parent run left by an earlier study of the same name is not reused."""
    tracking.setup_tracking("", "studies", tmp_path / "mlruns")
    stale = tracking.parent_run("studies", "study", "s", "study-s")  # an earlier study "s"
    cfg = TuneConfig(n_trials=1, storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="s")
    creator, created = open_study(cfg, seed=1)
    joiner, joined_created = open_study(cfg, seed=1)
    assert (created, joined_created) == (True, False)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(study_parent_run, joiner, False, "studies")
        time.sleep(1.0)
        assert not waiting.done()  # the joiner waits for the creator's record
        parent = study_parent_run(creator, True, "studies")
        assert waiting.result(timeout=60) == parent != stale
