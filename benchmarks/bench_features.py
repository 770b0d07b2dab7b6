"""Benchmark of the trajectory-feature builder (``make bench``): prints figures, asserts nothing.

Generates ``--clients`` synthetic episodes of 8-20 sessions each, writes them to a Parquet file
in a temporary directory and times, each in its own subprocess (so that peak memory is that
measurement's own):

- reference: a minimal Polars group-by (read + 20 simple per-client aggregates);
- (a) our features as of each client's latest row (read + build);
- (b) our features at every configured landmark (read + build);
- per-client ``groupby().apply`` of the same builder on ``--apply-clients`` clients,
  extrapolated to the full size.

Usage: python benchmarks/bench_features.py [--clients N] [--apply-clients M]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ATTENDANCE = np.array(["attended", "cancelled", "no_show"])
TARGET_A_VS_REFERENCE = 3.0
TARGET_APPLY_VS_A = 100.0
TARGET_B_VS_A = 3.0
TARGET_PEAK_GIB = 8.0


def generate(n_clients: int, seed: int = 0) -> pa.Table:
    """Contract-shaped sessions: 8-20 rows per client, random-walk scores, misses, gaps."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 21, n_clients)
    client = np.repeat(np.arange(n_clients, dtype=np.int64), lengths)
    n = client.shape[0]
    start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = np.arange(n) - start
    attendance = rng.choice(3, size=n, p=[0.85, 0.1, 0.05])
    attended = attendance == 0
    # dates: weekly-ish with jitter; non-decreasing within each client
    elapsed = np.cumsum(rng.integers(3, 15, n))
    day = elapsed - elapsed[start] + rng.integers(0, 3 * 365, n_clients)[client]

    def walk(level: np.ndarray, sd: float, low: float, high: float, step: float) -> np.ndarray:
        noise = np.cumsum(rng.normal(0.0, sd, n))
        path = level[client] + noise - noise[start]
        values = np.clip(np.round(path / step) * step, low, high)
        return np.where(attended & (rng.random(n) < 0.9), values, np.nan)

    alliance = walk(rng.normal(3.9, 0.5, n_clients), 0.25, 1, 5, 1 / 12)
    ids = pa.array([f"c{k:07d}" for k in range(n_clients)])
    therapists = pa.array([f"t{k:04d}" for k in range(5000)])
    table = {
        "client_id": pa.DictionaryArray.from_arrays(pa.array(client.astype(np.int32)), ids),
        "therapist_id": pa.DictionaryArray.from_arrays(
            pa.array((client % 5000).astype(np.int32)), therapists
        ),
        "session_number": pa.array(position + 1),
        "session_date": pa.array((np.datetime64("2020-01-01") + day).astype("datetime64[ms]")),
        "attendance": pa.array(ATTENDANCE[attendance]),
        "alliance_client": pa.array(alliance),
        "alliance_therapist": pa.array(walk(rng.normal(4.0, 0.4, n_clients), 0.2, 1, 5, 1 / 12)),
        "alliance_goal": pa.array(np.clip(alliance + rng.normal(0, 0.3, n), 1, 5)),
        "alliance_task": pa.array(np.clip(alliance + rng.normal(0, 0.3, n), 1, 5)),
        "alliance_bond": pa.array(np.clip(alliance + rng.normal(0, 0.3, n), 1, 5)),
        "symptom_score": pa.array(walk(rng.uniform(5, 25, n_clients), 1.5, 0, 27, 1)),
    }
    return pa.table({k: v.cast(pa.string()) if k.endswith("_id") else v for k, v in table.items()})


# --- measurements (each runs in a fresh subprocess) ------------------------------------------


def _reference(path: str) -> int:
    """Minimal Polars group-by: read + 20 simple per-client aggregates."""
    import polars as pl

    a, t, s = pl.col("alliance_client"), pl.col("alliance_therapist"), pl.col("symptom_score")
    x = pl.col("session_number").cast(pl.Float64)
    frame = pl.read_parquet(path)
    out = frame.group_by("client_id").agg(
        pl.len().alias("n"),
        a.count().alias("a_n"),
        a.mean().alias("a_mean"),
        a.std().alias("a_sd"),
        a.min().alias("a_min"),
        a.first().alias("a_first"),
        a.last().alias("a_last"),
        (pl.cov(x, a) / x.var()).alias("a_slope"),
        t.mean().alias("t_mean"),
        t.std().alias("t_sd"),
        t.min().alias("t_min"),
        t.last().alias("t_last"),
        s.count().alias("s_n"),
        s.mean().alias("s_mean"),
        s.first().alias("s_first"),
        s.last().alias("s_last"),
        (pl.cov(x, s) / x.var()).alias("s_slope"),
        (pl.col("attendance") == "attended").sum().alias("attended"),
        (pl.col("attendance") == "no_show").sum().alias("no_shows"),
        pl.col("session_date").max().alias("last_date"),
    )
    return out.height


def _ours(path: str, landmarks: bool) -> int:
    from alliance_dropout import contract
    from alliance_dropout.config.features import FeaturesConfig
    from alliance_dropout.features.builder import build_features
    from alliance_dropout.io import read_table

    cfg = FeaturesConfig()
    sessions = read_table(path)
    chosen = cfg.landmarks if landmarks else None
    out = build_features(sessions, cfg, contract.PHQ9, contract.WAI_SR, landmarks=chosen)
    return len(out)


def _apply(path: str, n_clients: int) -> int:
    """The same builder called once per client through ``groupby().apply``."""
    import pandas as pd

    from alliance_dropout import contract
    from alliance_dropout.config.features import FeaturesConfig
    from alliance_dropout.features.builder import build_features

    cfg = FeaturesConfig()
    head = pq.read_table(path).slice(0, 25 * n_clients).to_pandas()
    keep = head["client_id"].isin(head["client_id"].drop_duplicates().iloc[:n_clients])
    sessions = head[keep].reset_index(drop=True)

    def one_client(episode: pd.DataFrame) -> pd.DataFrame:
        return build_features(episode, cfg, contract.PHQ9, contract.WAI_SR)

    # group by a plain array: pandas 3 leaves a grouping *column* out of the groups
    key = sessions["client_id"].to_numpy()
    out = sessions.groupby(key, group_keys=False).apply(one_client)
    return len(out)


def _measure(kind: str, path: str, n: int) -> None:
    """Child process: run one measurement and print its time and peak RSS as JSON."""
    started = time.perf_counter()
    if kind == "reference":
        rows = _reference(path)
    elif kind in ("latest", "landmarks"):
        rows = _ours(path, landmarks=kind == "landmarks")
    else:
        rows = _apply(path, n)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_gib": peak_kib / 2**20}))


def _run(kind: str, path: Path, n: int = 0) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--path", str(path), "--n", str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--apply-clients", type=int, default=10_000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure, args.path, args.n)
        return

    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        path = Path(tmp) / "sessions.parquet"
        started = time.perf_counter()
        table = generate(args.clients)
        pq.write_table(table, path)
        n_rows = table.num_rows
        del table
        print(
            f"data: {args.clients:,} clients, {n_rows:,} session rows "
            f"(generated and written in {time.perf_counter() - started:.1f} s)"
        )
        reference = _run("reference", path)
        latest = _run("latest", path)
        landmarks = _run("landmarks", path)
        n_apply = min(args.apply_clients, args.clients)
        apply = _run("apply", path, n_apply)

    apply_full = apply["seconds"] * args.clients / n_apply
    rows = [
        ("polars reference (read + 20 aggregates)", reference, ""),
        ("(a) features as of the latest row", latest, ""),
        ("(b) features at every landmark", landmarks, ""),
        (f"groupby().apply, {n_apply:,} clients", apply, f"-> {apply_full:,.0f} s at full size"),
    ]
    print(
        f"\n{'measurement (read + compute)':44s} {'seconds':>9s} {'out rows':>12s} {'peak GiB':>9s}"
    )
    for name, m, note in rows:
        line = f"{name:44s} {m['seconds']:9.2f} {int(m['rows']):12,d} {m['peak_gib']:9.2f}"
        print(f"{line}  {note}")

    checks = [
        ("(a) / reference", latest["seconds"] / reference["seconds"], "<=", TARGET_A_VS_REFERENCE),
        ("apply (extrapolated) / (a)", apply_full / latest["seconds"], ">=", TARGET_APPLY_VS_A),
        ("(b) / (a)", landmarks["seconds"] / latest["seconds"], "<", TARGET_B_VS_A),
        ("peak GiB of (a)", latest["peak_gib"], "<", TARGET_PEAK_GIB),
        ("peak GiB of (b)", landmarks["peak_gib"], "<", TARGET_PEAK_GIB),
    ]
    print(f"\n{'ratio':30s} {'value':>9s}  target")
    for name, value, op, target in checks:
        met = value <= target if op == "<=" else value >= target if op == ">=" else value < target
        print(f"{name:30s} {value:9.2f}  {op} {target:g}  {'met' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
