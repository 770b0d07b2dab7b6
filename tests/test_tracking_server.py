"""The team tracking server, for real: PostgreSQL + MLflow basic-auth started by the project's
script (as ``make tracking-server`` does), on free ports with the cluster in a temporary
directory, and always stopped by its recorded PIDs (fixture finalizer) even when a test fails.

Every entry point runs as a user runs it, a process with ``tracking=server`` and credentials in
its environment only: two tuning workers share one Optuna study in the server's PostgreSQL
(the default ``tune.storage``), one command trains and registers the best trial through the
gate, the caseload is scored by ``models:/alliance-dropout@champion`` and ``mlflow models serve``
serves it. A reviewer made by ``scripts/add_reviewer.py`` reads the run and the model over REST
and is refused every write; no, wrong or read-only credentials, and a wrong password of the
studies' database, stop a run in one line (exit 2) before it reads any data.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.server import get_app_client

from alliance_dropout import contract as c
from alliance_dropout import io, tracking
from alliance_dropout.config import REPO_ROOT
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.simulate import simulate
from tests.tracking_server_fixture import TeamServer, free_port, team_server

# importing MLflow's server app warns about a Starlette deprecation that is not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:starlette.middleware.wsgi is deprecated")

NAME = "alliance-dropout"
STUDY = "team-study"
TUNING = ["tune=lightgbm", f"tune.study_name={STUDY}", "tune.search_space.n_estimators.high=150"]
SCIENTIST = ("scientist", "Sci-entist-pass-1234")
REVIEWER = ("reviewer", "Rev-iewer-pass-5678")
TIMEOUT = 600


def _add_reviewer_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "add_reviewer", REPO_ROOT / "scripts" / "add_reviewer.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def server() -> Iterator[TeamServer]:
    yield from team_server()


def _http(
    server: TeamServer,
    path: str,
    user: tuple[str, str] | None,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Raw REST call with urllib: (status, JSON body)."""
    url = f"{server.uri}/api/2.0/mlflow/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if user is not None:
        token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            payload = json.loads(text or b"{}")
        except ValueError:
            payload = {"raw": text.decode(errors="replace")}
        return exc.code, payload


class Clinic:
    """A small clinic's export on disk, and the project's commands against the server."""

    def __init__(self, server: TeamServer, root: Path) -> None:
        self.server, self.root = server, root
        data = simulate(SimulateConfig(n_clients=900, n_therapists=30, seed=11))
        # a clinic export carries a few decimals (JSON cannot carry more than 15 digits)
        sessions = data.sessions.copy()
        sessions[list(c.SESSION_SCORES)] = sessions[list(c.SESSION_SCORES)].round(4)
        self.sessions = sessions
        self.outcomes = data.outcomes
        self.paths = {
            "sessions": io.write_table(sessions, root / "data" / "sessions.csv"),
            "outcomes": io.write_table(data.outcomes, root / "data" / "outcomes.csv"),
        }

    def data(self) -> list[str]:
        return [
            f"data.sessions={self.paths['sessions']}",
            f"data.outcomes={self.paths['outcomes']}",
            "data.clients=null",
            "data.audit_attributes=[]",
            "data.client_features=[]",
        ]

    def command(self, script: str, *overrides: str, data: list[str] | None = None) -> list[str]:
        common = [
            "tracking=server",  # the server's URL and studies' database from TRACKING_*PORT
            f"paths.outputs_dir={self.root / 'outputs'}",
            f"paths.mlruns_dir={self.root / 'mlruns-unused'}",
        ]
        if script != "score.py":
            common += [
                "experiment=quick",
                # the server's mechanics on a small clinic: the landmark classifier passes the
                # gate's calibration check there, which a tuned hazard model does not always
                "model.framing=landmark",
                "evaluation.comparators=[]",
                "evaluation.n_bootstrap=20",
                "split.n_folds=3",
                # a small clinic's test set holds about 50 dropouts, the gate's default minimum
                "tracking.min_test_events=20",
            ]
        data = self.data() if data is None else data
        return [sys.executable, str(REPO_ROOT / "pipelines" / script), *common, *data, *overrides]

    def start(
        self, name: str, cmd: list[str], user: tuple[str, str] | None, **env: str
    ) -> subprocess.Popen[str]:
        """A process with its own empty TMPDIR, so that what it leaves there can be checked."""
        tmp = self.tmpdir(name)
        tmp.mkdir(parents=True)
        return subprocess.Popen(
            cmd,
            env={**self.server.client_env(user), "TMPDIR": str(tmp), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def tmpdir(self, name: str) -> Path:
        return self.root / "tmp" / name


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Exit code and stderr; a process still running at the timeout is killed."""
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _check_anonymous_refused(server: TeamServer) -> None:
    status, _ = _http(server, "experiments/search", None, params={"max_results": "1"})
    assert status == 401
    status, _ = _http(server, "registered-models/search", None)
    assert status == 401


def _check_refused_before_any_work(clinic: Clinic) -> None:
    """No, wrong credentials and a wrong password of the studies' database: exit 2 with one
    line naming the URI and the problem, before the data (which does not exist) is read."""
    server = clinic.server
    missing = ["data.sessions=/nonexistent/sessions.csv", "data.outcomes=/nonexistent/o.csv"]
    tuning = [*TUNING, "tune.n_trials=1"]
    cases = {
        "anonymous": (None, {}, "HTTP 401"),
        "wrong-password": (("scientist", "not-the-password"), {}, "HTTP 401"),
        "wrong-tune-password": (SCIENTIST, {"TUNE_STORAGE_PASSWORD": "wrong"}, "password"),
    }
    procs = {
        name: clinic.start(name, clinic.command("train.py", *tuning, data=missing), user, **env)
        for name, (user, env, _) in cases.items()
    }
    storage = f"tune.storage postgresql+psycopg2://optuna@127.0.0.1:{server.pg_port}/optuna: "
    for name, proc in procs.items():
        code, err = _finish(proc)
        assert code == 2, (name, err[-2000:])
        errors = _error_lines(err)
        assert len(errors) == 1, (name, err[-2000:])
        named = storage if name == "wrong-tune-password" else f"tracking store {server.uri}: "
        assert errors[0].startswith(f"error: {named}") and cases[name][2] in errors[0], errors
        assert "nonexistent" not in err


def _study(server: TeamServer) -> optuna.Study:
    storage = optuna.storages.RDBStorage(
        f"postgresql+psycopg2://optuna@127.0.0.1:{server.pg_port}/optuna",
        engine_kwargs={"connect_args": {"password": server.tune_password}},
    )
    return optuna.load_study(study_name=STUDY, storage=storage)


def _check_two_workers_share_one_study(clinic: Clinic, client: MlflowClient) -> None:
    """Two workers start at once with the same command on a fresh server: one study in
    PostgreSQL holds the trials of both, numbered once, and one parent run holds every trial."""
    cmd = clinic.command("train.py", *TUNING, "tune.n_trials=2")
    workers = [clinic.start(f"worker{i}", cmd, SCIENTIST) for i in range(2)]
    for worker in workers:
        code, err = _finish(worker)
        assert code == 0, err[-3000:]

    study = _study(clinic.server)
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    by_worker = pd.Series([t.user_attrs["worker"] for t in study.trials]).value_counts()
    assert sorted(by_worker.tolist()) == [2, 2]  # each worker ran its own 2 trials

    experiment = client.get_experiment_by_name(NAME)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("study_parent") == "true"]
    assert len(parents) == 1 and parents[0].data.tags["study"] == STUDY
    trials = [r for r in runs if r.info.run_name.startswith("trial-")]
    assert sorted(r.data.tags["trial"] for r in trials) == ["0", "1", "2", "3"]
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parents[0].info.run_id}


def _check_best_trial_registered(clinic: Clinic, client: MlflowClient) -> str:
    """One command trains the study's best trial and registers it through the gate; the first
    model on the server is compared with the reference rules and becomes the champion."""
    cmd = clinic.command("run.py", *TUNING, "tune.n_trials=0")
    code, err = _finish(clinic.start("best", cmd, SCIENTIST))
    assert code == 0, err[-3000:]
    assert list(clinic.tmpdir("best").iterdir()) == []  # the gate's model download cleaned up
    study = _study(clinic.server)
    assert len(study.trials) == 4  # no new trial
    (version,) = client.search_model_versions(f"name='{NAME}'")
    assert version.tags["promotion.promoted"] == "True", version.tags["promotion.reason"]
    assert client.get_model_version_by_alias(NAME, "champion").version == version.version
    run = client.get_run(version.run_id)
    for name, value in study.best_params.items():
        assert run.data.params[f"best.{name}"] == (
            f"{value:.6g}" if isinstance(value, float) else str(value)
        )
    # the studies' URL is logged as it was given: without a password
    storage = f"postgresql+psycopg2://optuna@127.0.0.1:{clinic.server.pg_port}/optuna"
    assert run.data.params["tune.storage"] == storage
    return str(version.run_id)


def _check_reviewer_reads(server: TeamServer, run_id: str) -> None:
    status, body = _http(server, "runs/get", REVIEWER, params={"run_id": run_id})
    assert status == 200, body
    assert body["run"]["info"]["run_id"] == run_id
    assert body["run"]["info"]["artifact_uri"].startswith("mlflow-artifacts:")
    status, body = _http(server, "registered-models/get", REVIEWER, params={"name": NAME})
    assert status == 200, body
    assert body["registered_model"]["name"] == NAME
    status, body = _http(
        server, "model-versions/search", REVIEWER, params={"filter": f"name='{NAME}'"}
    )
    assert status == 200, body
    assert any(v["run_id"] == run_id for v in body["model_versions"])
    # artifacts went through the server's proxy into its directory; users live in PostgreSQL
    stored = [p for p in (server.directory / "artifacts").rglob("*") if p.is_file()]
    assert any(p.name == tracking.MODEL_FILE for p in stored)
    ini = (server.directory / "basic_auth.ini").read_text()
    assert "database_uri = postgresql+psycopg2://" in ini
    assert server.admin_password not in ini and server.tune_password not in ini


def _check_reviewer_cannot_write(clinic: Clinic, run_id: str) -> None:
    server = clinic.server
    source = {"name": NAME, "source": f"runs:/{run_id}/model", "run_id": run_id}
    status, body = _http(server, "model-versions/create", REVIEWER, body=source)
    assert status == 403, body
    status, body = _http(
        server, "experiments/get-by-name", REVIEWER, params={"experiment_name": NAME}
    )
    assert status == 200, body
    experiment_id = body["experiment"]["experiment_id"]
    status, body = _http(server, "runs/create", REVIEWER, body={"experiment_id": experiment_id})
    assert status == 403, body
    # and a reviewer who starts a training is stopped before it reads any data
    missing = ["data.sessions=/nonexistent/sessions.csv", "data.outcomes=/nonexistent/o.csv"]
    code, err = _finish(
        clinic.start("reviewer", clinic.command("train.py", data=missing), REVIEWER)
    )
    assert code == 2, err[-2000:]
    assert _error_lines(err) == [
        f"error: tracking store {server.uri}: HTTP 403, permission denied to "
        "MLFLOW_TRACKING_USERNAME (training needs EDIT on the experiment, scoring READ; ask the "
        "server's admin)"
    ]


def _check_scoring_by_champion(clinic: Clinic) -> pd.DataFrame:
    """Scoring only reads the registry: the reviewer's read-only account may score."""
    out = clinic.root / "scores" / "risk.csv"
    cmd = clinic.command("score.py", f"output={out}", "scoring.report=false")
    code, err = _finish(clinic.start("score", cmd, REVIEWER))
    assert code == 0, err[-3000:]
    assert list(clinic.tmpdir("score").iterdir()) == []  # the model download cleaned up
    scored = pd.read_csv(out, dtype={c.CLIENT_ID: str})
    ongoing = clinic.outcomes.loc[clinic.outcomes[c.STATUS] == c.ONGOING, c.CLIENT_ID]
    assert set(scored[c.CLIENT_ID]) == set(ongoing)
    assert scored["model_id"].eq(f"{NAME} v1").all()
    return scored


def _check_served_from_the_server(clinic: Clinic, scored: pd.DataFrame) -> None:
    """`mlflow models serve -m models:/alliance-dropout@champion` with the reviewer's read-only
    account answers the risks the command line gave; stopped by its PID (process group)."""
    clients = scored[c.CLIENT_ID].head(6).tolist()
    rows = clinic.sessions[clinic.sessions[c.CLIENT_ID].isin(clients)].copy()
    rows[c.SESSION_DATE] = pd.to_datetime(rows[c.SESSION_DATE]).dt.strftime("%Y-%m-%d")
    cols = [col for col in c.SESSION_COLUMNS if col in rows]
    payload = json.loads(rows[cols].to_json(orient="split", index=False, double_precision=15))
    port = free_port()
    tmp = clinic.tmpdir("serve")
    tmp.mkdir(parents=True)
    env = {
        **clinic.server.client_env(REVIEWER),
        "MLFLOW_TRACKING_URI": clinic.server.uri,
        # set_registry_uri of another test in this worker leaves MLFLOW_REGISTRY_URI in the
        # environment: the served model must resolve @champion on the server, whatever ran before
        "MLFLOW_REGISTRY_URI": clinic.server.uri,
        # the model server runs `uvicorn` from the environment's bin folder, as `make serve` does
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TMPDIR": str(tmp),
    }
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion"]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"model server did not come up: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
                time.sleep(1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_split": payload}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            served = pd.DataFrame(json.loads(response.read())["predictions"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    risks = served.set_index(c.CLIENT_ID).loc[clients, "dropout_risk"].to_numpy()
    expected = scored.set_index(c.CLIENT_ID).loc[clients, "dropout_risk"].to_numpy()
    np.testing.assert_allclose(risks, expected, rtol=1e-6)


def test_team_tracking_server(server: TeamServer, subtests, tmp_path: Path) -> None:
    """One test (xdist would otherwise split the module and start a second server); each
    check is a subtest, reported on its own and run even when an earlier one fails."""
    with subtests.test("no credentials: 401 over REST"):
        _check_anonymous_refused(server)
    clinic = Clinic(server, tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in server.admin_env().items():
            mp.setenv(key, value)
        get_app_client("basic-auth", tracking_uri=server.uri).create_user(*SCIENTIST)
    client = MlflowClient(tracking_uri=server.uri, registry_uri=server.uri)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in server.admin_env().items():
            mp.setenv(key, value)
        # first on the fresh server: the two workers also race to create the experiment
        with subtests.test("two workers share one study in PostgreSQL and one parent run"):
            _check_two_workers_share_one_study(clinic, client)
        with subtests.test("no, wrong or wrong studies' credentials: one line, exit 2, no work"):
            _check_refused_before_any_work(clinic)
        with subtests.test("one command trains the best trial and registers it via the gate"):
            run_id = _check_best_trial_registered(clinic, client)
        assert _add_reviewer_module().add_reviewer(server.uri, *REVIEWER) == "created"
    with subtests.test("a reviewer reads the run and the registered model over REST"):
        _check_reviewer_reads(server, run_id)
    with subtests.test("a reviewer cannot write: 403 over REST, exit 2 from the CLI"):
        _check_reviewer_cannot_write(clinic, run_id)
    with subtests.test("a reviewer scores the caseload by models:/alliance-dropout@champion"):
        scored = _check_scoring_by_champion(clinic)
    with subtests.test("mlflow models serve from the server answers the same risks"):
        _check_served_from_the_server(clinic, scored)
