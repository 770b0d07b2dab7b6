"""Benchmark: score a large caseload end to end (read, validate, features, risk, reasons, write).

    python benchmarks/bench_scoring.py [--clients 100000]

Target (issue 5): 100,000 clients (about 1.4 million session rows) in under a minute with peak
memory under 4 GiB, on the project's 2-core machine. It trains a small model into a temporary
MLflow store first (not timed), then times `run_scoring` on a generated export in a child
process so peak memory is the scoring run's own. Prints figures; asserts nothing.
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

TARGET_SECONDS = 60.0
TARGET_GIB = 4.0


def _compose(name: str, overrides: list[str]):  # type: ignore[no-untyped-def]
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from alliance_dropout.config import REPO_ROOT, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def prepare(root: Path, n_clients: int) -> dict[str, str]:
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
    sessions = io.write_table(caseload.sessions, root / "caseload" / "sessions.csv")
    return {
        "sessions": str(sessions),
        "uri": uri,
        "mlruns": str(root / "mlruns"),
        "rows": str(len(caseload.sessions)),
    }


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
    started = time.perf_counter()
    summary = run_scoring(to_object(cfg), progress=False)
    seconds = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_gib": peak_gib,
                "scored": summary.n_scored,
                "stages": summary.stage_seconds,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
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
        prep = prepare(root, args.clients)
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
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rows = int(prep["rows"])
        ok_t = result["seconds"] < TARGET_SECONDS
        ok_m = result["peak_gib"] < TARGET_GIB
        print(f"caseload: {result['scored']:,} clients scored, {rows:,} session rows")
        print(
            f"{'end-to-end scoring time':28s} {result['seconds']:8.1f} s    target < "
            f"{TARGET_SECONDS:.0f} s   {'met' if ok_t else 'NOT met'}"
        )
        print(
            f"{'peak memory (scoring run)':28s} {result['peak_gib']:8.2f} GiB  target < "
            f"{TARGET_GIB:.0f} GiB  {'met' if ok_m else 'NOT met'}"
        )
        print(f"{'throughput':28s} {rows / result['seconds']:8.0f} rows/s")
        for stage, secs in result["stages"].items():
            print(f"  {stage:26s} {secs:8.1f} s")


if __name__ == "__main__":
    main()
