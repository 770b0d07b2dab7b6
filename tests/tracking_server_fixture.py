"""A real team tracking server for tests: PostgreSQL + MLflow basic-auth via the project's script.

``scripts/tracking_server.sh`` is the one way to start it (as ``make tracking-server`` does),
so the tests exercise the same code path. PostgreSQL is installed by that script when its
binaries are missing (root, Debian), never skipped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alliance_dropout.config import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "tracking_server.sh"
ADMIN = "admin"


@dataclass(frozen=True)
class TeamServer:
    uri: str
    directory: Path
    admin_password: str
    port: int
    pg_port: int
    tune_password: str

    def admin_env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": self.admin_password}

    def client_env(self, user: tuple[str, str] | None) -> dict[str, str]:
        """A client process's environment: ``tracking=server`` finds this server (its ports),
        the user's credentials and the studies' password, all from the environment."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
        }
        env.update(
            TRACKING_PORT=str(self.port),
            TRACKING_PG_PORT=str(self.pg_port),
            TUNE_STORAGE_PASSWORD=self.tune_password,
            MLFLOW_DISABLE_TELEMETRY="true",
        )
        if user is not None:
            env.update(MLFLOW_TRACKING_USERNAME=user[0], MLFLOW_TRACKING_PASSWORD=user[1])
        return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _script(action: str, directory: Path, env: dict[str, str], *extra: str, timeout: float):
    return subprocess.run(
        ["bash", str(SCRIPT), action, "--dir", str(directory), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop_server(directory: Path) -> None:
    env = {**os.environ, "PY": sys.executable}
    _script("stop", directory, env, timeout=120)


def team_server() -> Iterator[TeamServer]:
    """Start a server in a fresh directory on a free port; always stop it and remove the files.

    The directory is made world-traversable: the cluster inside is owned by ``postgres``.
    """
    directory = Path(tempfile.mkdtemp(prefix="alliance-tracking-"))
    directory.chmod(0o755)
    port = free_port()
    pg_port = free_port()
    while pg_port == port:
        pg_port = free_port()
    admin_password = "Adm-" + secrets.token_urlsafe(18)
    tune_password = "Tune-" + secrets.token_urlsafe(18)
    env = {
        **os.environ,
        "PY": sys.executable,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
        "TUNE_STORAGE_PASSWORD": tune_password,
    }
    ports = ("--port", str(port), "--pg-port", str(pg_port))
    try:
        # generous: the first call on a fresh machine installs PostgreSQL with apt-get
        done = _script("start", directory, env, *ports, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(
                f"tracking server did not start (exit {done.returncode}):\n"
                f"{done.stdout}\n{done.stderr}"
            )
        yield TeamServer(
            f"http://127.0.0.1:{port}", directory, admin_password, port, pg_port, tune_password
        )
    finally:
        stop_server(directory)
        shutil.rmtree(directory, ignore_errors=True)
