"""Benchmark: the whole training run on the built-in 6,000 episodes, landmark vs hazard framing.

    python benchmarks/bench_training.py [--framings landmark,hazard]

Runs the project's own command (`pipelines/run.py data=synthetic`, what `make run` runs after
generating the data) once per framing, each into a temporary MLflow store, and prints the wall
time of each and its ratio to the landmark framing (the target: the hazard framing within 2x).
The data set is generated first if missing. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed_run(framing: str, root: Path) -> float:
    cmd = [
        sys.executable,
        str(REPO / "pipelines" / "run.py"),
        "data=synthetic",
        f"model.framing={framing}",
        f"paths.outputs_dir={root / 'outputs'}",
        f"paths.mlruns_dir={root / 'mlruns'}",
        f"tracking.uri=sqlite:///{root / 'mlruns' / 'mlflow.db'}",
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{framing} run failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framings", default="landmark,hazard")
    args = parser.parse_args()
    if not (REPO / "data" / "synthetic" / "sessions.csv").is_file():
        subprocess.run([sys.executable, str(REPO / "pipelines" / "simulate.py")], check=True)
    times: dict[str, float] = {}
    for framing in args.framings.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            times[framing] = timed_run(framing, Path(tmp))
        print(f"{framing:>9}: {times[framing]:6.1f} s", flush=True)
    load = os.getloadavg()[0]
    if "landmark" in times:
        for framing, seconds in times.items():
            ratio = seconds / times["landmark"]
            verdict = (
                ""
                if framing == "landmark"
                else f" (target <= 2x: {'met' if ratio <= 2 else 'NOT met'})"
            )
            print(f"{framing:>9} / landmark: {ratio:.2f}x{verdict}")
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
