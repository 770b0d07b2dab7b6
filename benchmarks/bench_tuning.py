"""Benchmark: one shared Optuna study searched by 1, 2 and 4 worker processes at once.

    python benchmarks/bench_tuning.py [--trials 16] [--clients 1500] [--workers 1 2 4]

It starts a team tracking server of its own (scripts/tracking_server.sh, as `make
tracking-server` does: PostgreSQL and MLflow with basic-auth, on free ports, in a temporary
folder) and runs the project's own command in every worker, as a team would:

    python pipelines/train.py tracking=server tune=lightgbm tune.study_name=NAME tune.n_trials=N/W

so the study lives in the server's PostgreSQL (the default tune.storage) and every trial is a
child run on the server. Pruning is off, so every trial costs about the same. For each number of
workers it prints the wall time of the whole commands (start-up, validation, features, the
search, and each worker's final fit and logging of the best trial), the search alone (first
trial's start to last trial's end, from the study), trials per minute of the search, the
speed-up over one worker, peak memory of a worker and the load average. On 2 cores the ceiling
is about 2x: more workers than cores only share them, and a worker's LightGBM already uses 2
threads. Asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "tracking_server.sh"
USER = ("bench", "Bench-user-pass-1234")


def free_port(taken: int = 0) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != taken:
            return port


@dataclass
class Server:
    directory: Path
    port: int
    pg_port: int
    admin_password: str
    tune_password: str

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        ports = ["--port", str(self.port), "--pg-port", str(self.pg_port)]
        return subprocess.run(
            ["bash", str(SCRIPT), action, "--dir", str(self.directory), *ports],
            env={**os.environ, "PY": sys.executable, **env},
            capture_output=True,
            text=True,
            check=False,
        )


def start_server(root: Path) -> Server:
    directory = root / "tracking"
    directory.mkdir()
    root.chmod(0o755)  # the cluster inside belongs to the postgres user
    port = free_port()
    server = Server(
        directory, port, free_port(port), secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    )
    done = server.script(
        "start",
        {
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
            "MLFLOW_AUTH_ADMIN_PASSWORD": server.admin_password,
            "TUNE_STORAGE_PASSWORD": server.tune_password,
        },
    )
    if done.returncode != 0:
        server.script("stop", {})
        raise SystemExit(f"tracking server did not start:\n{done.stdout}\n{done.stderr}")
    os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = server.admin_password
    from mlflow.server import get_app_client

    get_app_client("basic-auth", tracking_uri=server.uri).create_user(*USER)
    return server


def search_span(server: Server, study_name: str) -> tuple[float, int]:
    """Seconds from the first trial's start to the last trial's end, and the trials."""
    import optuna

    storage = optuna.storages.RDBStorage(
        f"postgresql+psycopg2://optuna@127.0.0.1:{server.pg_port}/optuna",
        engine_kwargs={"connect_args": {"password": server.tune_password}},
    )
    trials = optuna.load_study(study_name=study_name, storage=storage).trials
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    return (max(ends) - min(starts)).total_seconds(), len(ends)


def workers_run(
    root: Path, server: Server, paths: dict[str, str], n_workers: int, trials: int
) -> tuple[float, str]:
    study = f"bench-{n_workers}-{secrets.token_hex(3)}"
    cmd = [
        sys.executable,
        str(REPO / "pipelines" / "train.py"),
        "tracking=server",
        "tune=lightgbm",
        f"tune.study_name={study}",
        f"tune.n_trials={math.ceil(trials / n_workers)}",
        "tune.prune_after_trials=1000",  # no pruning: every trial costs about the same
        f"data.sessions={paths['sessions']}",
        f"data.outcomes={paths['outcomes']}",
        "data.clients=null",
        "data.audit_attributes=[]",
        "data.client_features=[]",
        "experiment=quick",
        "evaluation.comparators=[]",
        "evaluation.n_bootstrap=20",
        f"paths.outputs_dir={root / 'outputs'}",
        f"paths.mlruns_dir={root / 'mlruns-unused'}",
    ]
    env = {
        **os.environ,
        "MLFLOW_TRACKING_USERNAME": USER[0],
        "MLFLOW_TRACKING_PASSWORD": USER[1],
        "TRACKING_PORT": str(server.port),
        "TRACKING_PG_PORT": str(server.pg_port),
        "TUNE_STORAGE_PASSWORD": server.tune_password,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    started = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(n_workers)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"worker failed:\n{err[-2000:]}")
    return time.perf_counter() - started, study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--clients", type=int, default=1500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()

    from alliance_dropout import io
    from alliance_dropout.config.simulate import SimulateConfig
    from alliance_dropout.simulate import simulate

    root = Path(tempfile.mkdtemp(prefix="bench-tuning-"))
    server = start_server(root)
    try:
        data = simulate(SimulateConfig(n_clients=args.clients, n_therapists=40, seed=3))
        paths = {
            t: str(io.write_table(getattr(data, t), root / f"{t}.csv"))
            for t in ("sessions", "outcomes")
        }
        print(
            f"{args.trials} trials in one shared study (PostgreSQL), {args.clients:,} clients, "
            f"{os.cpu_count()} cores; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
        )
        base_wall = base_search = None
        for n in args.workers:
            load_before = os.getloadavg()[0]
            wall, study = workers_run(root, server, paths, n, args.trials)
            search, done = search_span(server, study)
            base_wall, base_search = base_wall or wall, base_search or search
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
            print(
                f"  {n} worker(s): wall {wall:6.1f} s (speed-up {base_wall / wall:4.2f}x)   "
                f"search {search:6.1f} s, {60 * done / search:5.1f} trials/min "
                f"(speed-up {base_search / search:4.2f}x)   peak worker {peak:4.2f} GiB   "
                f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
            )
        print("ceiling on this machine: about 2x (2 cores); each worker also pays its start-up")
    finally:
        server.script("stop", {})
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
