"""The team tracking server, for real: PostgreSQL + MLflow basic-auth started by the project's
script (as ``make tracking-server`` does), on a free port with the cluster in a temporary
directory, and always stopped (fixture finalizer) even when a test fails.

A "scientist" trains against it; a reviewer made by ``scripts/add_reviewer.py`` reads the run
and the registered model back over REST, cannot register a model, and anonymous or wrong
credentials are refused.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.server import get_app_client

from alliance_dropout import io, tracking, training
from alliance_dropout.config import REPO_ROOT, to_object
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.errors import TrackingStoreError
from alliance_dropout.simulate import simulate
from tests.conftest import compose_config
from tests.tracking_server_fixture import TeamServer, team_server

# importing MLflow's server app warns about a Starlette deprecation that is not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:starlette.middleware.wsgi is deprecated")

NAME = "alliance-dropout"
SCIENTIST = ("scientist", "Sci-entist-pass-1234")
REVIEWER = ("reviewer", "Rev-iewer-pass-5678")


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


def _train_as_scientist(server: TeamServer, root: Path) -> Any:
    """The admin creates a "scientist", who trains on a small clinic against the server; then
    the admin adds the reviewer with scripts/add_reviewer.py. Credentials only via env."""
    data = simulate(SimulateConfig(n_clients=400, n_therapists=20, seed=11))
    paths = {
        t: io.write_table(getattr(data, t), root / f"{t}.csv")
        for t in ("sessions", "outcomes", "clients")
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in server.admin_env().items():
            mp.setenv(key, value)
        get_app_client("basic-auth", tracking_uri=server.uri).create_user(*SCIENTIST)
        mp.setenv("MLFLOW_TRACKING_USERNAME", SCIENTIST[0])
        mp.setenv("MLFLOW_TRACKING_PASSWORD", SCIENTIST[1])
        mp.setenv("TMPDIR", str(root))
        cfg = compose_config(
            "run",
            [
                f"data.sessions={paths['sessions']}",
                f"data.outcomes={paths['outcomes']}",
                f"data.clients={paths['clients']}",
                f"paths.mlruns_dir={root / 'mlruns'}",
                f"output_dir={root / 'out'}",
                f"tracking.uri={server.uri}",
                "experiment=quick",
                "evaluation.comparators=[]",
                "split.n_folds=3",
                "evaluation.n_bootstrap=20",
                "tracking.min_test_events=10",
            ],
        )
        summary = training.run(to_object(cfg))
        for key, value in server.admin_env().items():
            mp.setenv(key, value)
        assert _add_reviewer_module().add_reviewer(server.uri, *REVIEWER) == "created"
    return summary


def _check_run_on_server(server: TeamServer, summary: Any) -> None:
    """The run, its metrics and its model are on the server; artifacts went through the
    server's proxy into its directory; the backend and user store are PostgreSQL."""
    assert summary.tracking_uri == server.uri
    status, body = _http(server, "runs/get", SCIENTIST, params={"run_id": summary.run_id})
    assert status == 200, body
    assert body["run"]["info"]["artifact_uri"].startswith("mlflow-artifacts:")
    assert any("roc_auc" in m["key"] for m in body["run"]["data"]["metrics"])
    stored = [p for p in (server.directory / "artifacts").rglob("*") if p.is_file()]
    assert any(p.name == tracking.MODEL_FILE for p in stored)
    ini = (server.directory / "basic_auth.ini").read_text()
    assert "database_uri = postgresql+psycopg2://" in ini
    assert server.admin_password not in ini


def _check_reviewer_reads(server: TeamServer, run_id: str) -> None:
    status, body = _http(server, "runs/get", REVIEWER, params={"run_id": run_id})
    assert status == 200, body
    assert body["run"]["info"]["run_id"] == run_id
    status, body = _http(server, "registered-models/get", REVIEWER, params={"name": NAME})
    assert status == 200, body
    assert body["registered_model"]["name"] == NAME
    status, body = _http(
        server, "model-versions/search", REVIEWER, params={"filter": f"name='{NAME}'"}
    )
    assert status == 200, body
    assert any(v["run_id"] == run_id for v in body["model_versions"])


def _check_reviewer_cannot_write(server: TeamServer, run_id: str) -> None:
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


def _check_anonymous_refused(server: TeamServer) -> None:
    status, _ = _http(server, "experiments/search", None, params={"max_results": "1"})
    assert status == 401
    status, _ = _http(server, "registered-models/search", None)
    assert status == 401


def _check_wrong_password_fails_fast(server: TeamServer, mlruns: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        mp.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password-at-all")
        with pytest.raises(TrackingStoreError) as info:
            tracking.setup_tracking(server.uri, NAME, mlruns)
    message = str(info.value)
    assert "\n" not in message
    assert server.uri in message and "HTTP 401" in message


def test_team_tracking_server(server: TeamServer, subtests, tmp_path: Path) -> None:
    """One test (xdist would otherwise split the module and start a second server); each
    check is a subtest, reported on its own and run even when an earlier one fails."""
    with subtests.test("no credentials: 401"):
        _check_anonymous_refused(server)
    with subtests.test("wrong credentials: one-line TrackingStoreError naming the URI"):
        _check_wrong_password_fails_fast(server, tmp_path / "mlruns-wrong")
    summary = _train_as_scientist(server, tmp_path)
    with subtests.test("the scientist's run, metrics and model are on the server"):
        _check_run_on_server(server, summary)
    with subtests.test("a reviewer reads the run and the registered model over REST"):
        _check_reviewer_reads(server, summary.run_id)
    with subtests.test("a reviewer cannot register a model or write a run (403)"):
        _check_reviewer_cannot_write(server, summary.run_id)
