"""Benchmark: score a large caseload end to end (read, validate, features, risk, reasons, write).

    python benchmarks/bench_scoring.py [--clients 100000] [--format parquet|csv]

Targets (issues 5 and 16): 100,000 clients (about 1.4 million session rows), from a Parquet
file as pyarrow writes it (``date32`` dates) to the risk list, report, quarantine and
validation JSON, in under 15 s with peak memory under 4 GiB, on the project's 2-core machine.
It trains a small model into a temporary MLflow store first (not timed), writes the simulated
caseload as an export looks (~10% of episodes change therapist; gaps in session numbers,
missing ratings, no-shows and cancellations come from the simulator), then times
`run_scoring` in a child process so peak memory is the scoring run's own. Prints the seconds
of every stage and the load average (the machine is shared); asserts nothing.

Profile before issue 16's changes (py-spy, 200 Hz, 100,000 clients from Parquet, 24 s under a
load average of 5; share of the run's samples, inclusive):
    LightGBM pred_contrib (SHAP, modeling.contributions) 20%; validate_tables 18% (pandera's
    str_matches on every id 5%, run twice: checks and the final guard; date order by a string
    sort 2%); render_caseload_report 12.5% (caseload_rows: 30 pandas string concatenations
    9%); top_reasons 6%; build_features 6%; CSV writing 3.4%; MLflow store set-up 3.6%.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TARGET_SECONDS = 15.0
TARGET_GIB = 4.0


def _compose(name: str, overrides: list[str]):  # type: ignore[no-untyped-def]
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from alliance_dropout.config import REPO_ROOT, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def prepare(root: Path, n_clients: int, fmt: str = "parquet") -> dict[str, str]:
    """Train a model on a small set and write the caseload export to score."""
    from alliance_dropout import io, training
    from alliance_dropout.config import to_object
    from alliance_dropout.config.simulate import SimulateConfig
    from alliance_dropout.simulate import simulate

    train = simulate(SimulateConfig(n_clients=1500, n_therapists=40, seed=1))
    paths = {
        t: str(io.write_table(getattr(train, t), root / "train" / f"{t}.csv"))
        for t in ("sessions", "outcomes")
    }
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    common = [
        f"paths.mlruns_dir={root / 'mlruns'}",
        f"paths.outputs_dir={root / 'out'}",
        f"tracking.uri={uri}",
    ]
    cfg = _compose(
        "run",
        [
            *common,
            f"data.sessions={paths['sessions']}",
            f"data.outcomes={paths['outcomes']}",
            "evaluation.n_bootstrap=10",
            "evaluation.comparators=[]",
            "features.landmarks=[2,4,6,8]",
            f"output_dir={root / 'run'}",
        ],
    )
    training.run(to_object(cfg))
    # longer courses and no data cut-off give ~14 rows per client, the 1.4M per 100k
    caseload = simulate(
        SimulateConfig(
            n_clients=n_clients,
            n_therapists=max(50, n_clients // 40),
            seed=2,
            planned_sessions_median=14.5,
            cutoff_date="2030-01-01",
        )
    )
    sessions = write_caseload(caseload.sessions, root / "caseload", fmt)
    return {
        "sessions": str(sessions),
        "uri": uri,
        "mlruns": str(root / "mlruns"),
        "rows": str(len(caseload.sessions)),
    }


def write_caseload(sessions: pd.DataFrame, folder: Path, fmt: str, seed: int = 3) -> Path:
    """The caseload as an export: ~10% of episodes move to another therapist part-way; Parquet
    as pyarrow writes it (``date32`` dates) or CSV (ISO dates)."""
    from alliance_dropout import contract as c
    from alliance_dropout import io

    rng = np.random.default_rng(seed)
    s = sessions.sort_values([c.CLIENT_ID, c.SESSION_NUMBER], ignore_index=True)
    codes = pd.factorize(s[c.CLIENT_ID])[0]
    position = s.groupby(codes).cumcount().to_numpy()
    n_clients = int(codes.max()) + 1
    moves = rng.random(n_clients) < 0.10
    move_at = rng.integers(2, 8, n_clients)
    moved = moves[codes] & (position >= move_at[codes])
    therapists = np.sort(s[c.THERAPIST_ID].unique())
    other = therapists[rng.integers(0, len(therapists), n_clients)][codes]
    s[c.THERAPIST_ID] = np.where(moved, other, s[c.THERAPIST_ID].to_numpy(dtype=object))
    s[c.THERAPIST_ID] = s[c.THERAPIST_ID].astype("str")
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        return io.write_table(s, folder / "sessions.csv")
    table = pa.Table.from_pandas(s, preserve_index=False)
    dates = pa.array(s[c.SESSION_DATE].dt.date.to_numpy(), pa.date32())
    table = table.set_column(table.schema.get_field_index(c.SESSION_DATE), c.SESSION_DATE, dates)
    path = folder / "sessions.parquet"
    pq.write_table(table, path)
    return path


def score_child(args: argparse.Namespace) -> None:
    from alliance_dropout.config import to_object
    from alliance_dropout.scoring import run_scoring

    cfg = _compose(
        "score",
        [
            f"data.sessions={args.sessions}",
            f"output={args.output}",
            f"tracking.uri={args.uri}",
            f"paths.mlruns_dir={args.mlruns}",
        ],
    )
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    summary = run_scoring(to_object(cfg), progress=False)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    peak_gib = usage.ru_maxrss / 1024**2
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "peak_gib": peak_gib,
                "scored": summary.n_scored,
                "stages": summary.stage_seconds,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sessions")
    parser.add_argument("--output")
    parser.add_argument("--uri")
    parser.add_argument("--mlruns")
    args = parser.parse_args()
    if args.child:
        score_child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(
            f"preparing: training a model and generating {args.clients:,} clients ...", flush=True
        )
        prep = prepare(root, args.clients, args.format)
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--sessions",
            prep["sessions"],
            "--output",
            str(root / "scores" / "risk.csv"),
            "--uri",
            prep["uri"],
            "--mlruns",
            prep["mlruns"],
        ]
        load_before = os.getloadavg()[0]
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rows = int(prep["rows"])
        ok_t = result["seconds"] < TARGET_SECONDS
        ok_m = result["peak_gib"] < TARGET_GIB
        print(
            f"caseload: {result['scored']:,} clients scored, {rows:,} session rows, from "
            f"{Path(prep['sessions']).name}; load average {load_before:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after (2 cores, shared)"
        )
        print(
            f"{'end-to-end scoring time':28s} {result['seconds']:8.1f} s    target < "
            f"{TARGET_SECONDS:.0f} s   {'met' if ok_t else 'NOT met'}"
        )
        print(
            f"{'peak memory (scoring run)':28s} {result['peak_gib']:8.2f} GiB  target < "
            f"{TARGET_GIB:.0f} GiB  {'met' if ok_m else 'NOT met'}"
        )
        print(f"{'CPU seconds (all threads)':28s} {result['cpu']:8.1f} s")
        print(f"{'throughput':28s} {rows / result['seconds']:8.0f} rows/s")
        print("seconds per stage:")
        for stage, secs in result["stages"].items():
            print(f"  {stage:26s} {secs:8.1f} s")


if __name__ == "__main__":
    main()
