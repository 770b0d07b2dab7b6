"""Benchmark of the trajectory-feature builder (``make bench``): prints figures, asserts nothing.

For each data variant of ``--clients`` episodes (8-20 sessions each) it writes the file into a
temporary directory and times, each in its own subprocess (so that peak memory is that
measurement's own):

- reference: a minimal Polars group-by (read + 20 simple per-client aggregates), run before
  and after (a) and averaged, so that a change of machine load between them evens out;
- (a) our features as of each client's latest row (read + cells typed + build);
- (b) our features at every configured landmark (read + cells typed + build);
- on the first variant, ``groupby().apply`` of the same builder on ``--apply-clients`` clients,
  extrapolated to the full size.

Variants (issue 16): ``generated`` is the original one (Parquet, ``timestamp[ms]`` dates, no
gaps in session numbers, one therapist per episode); ``export-parquet`` and ``export-csv`` look
like clinic exports: ~4% gaps in session numbers, missing ratings on attended rows, no-shows
and cancellations, ~10% of episodes changing therapist, ratings with two decimals, as pyarrow
writes them (``date32`` dates) and as a CSV with ISO date strings.

Targets (on wall-clock seconds): (a) within 1.5x the reference on every variant, (b) within 2x
of (a), peak memory of (a) under 4 GiB, apply at least 100x slower than (a). The machine is
shared: the load average (1 minute, after each measurement) and the CPU seconds (all threads)
are printed beside the figures.

Usage: python benchmarks/bench_features.py [--clients N] [--variants a,b] [--apply-clients M]

Profile before issue 16's changes (py-spy, 200 Hz; export-parquet, 200,000 clients, 2.8M rows,
latest row; share of read + build, inclusive): read_table 11%, build_features 89%: the families
73% (alliance per rater 19%, sudden gains 12%, ruptures 10%, dual perspective 9%, alliance-
symptom coupling 7%, attendance 6%, symptoms 6%), of which _centred_sums 21% and pandas' grouped
cumsum 17% (a groupby built per call: factorizing the key cost more than the loop); the sort
order (a sorted factorize of the id strings) 5%; session arrays 4%.
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
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ATTENDANCE = np.array(["attended", "cancelled", "no_show"])
VARIANTS = ("generated", "export-parquet", "export-csv")
TARGET_A_VS_REFERENCE = 1.5
TARGET_APPLY_VS_A = 100.0
TARGET_B_VS_A = 2.0
TARGET_PEAK_GIB = 4.0


def _ids(prefix: str, n: int, width: int, rows: np.ndarray) -> pa.Array:
    """Plain string ids (``c0000042``) of ``rows``, built as a dictionary and decoded."""
    names = pc.binary_join_element_wise(
        prefix, pc.utf8_lpad(pa.array(np.arange(n).astype(str)), width, "0"), ""
    )
    return pa.DictionaryArray.from_arrays(pa.array(rows.astype(np.int32)), names).cast(pa.string())


def generate(n_clients: int, seed: int = 0) -> pa.Table:
    """Contract-shaped sessions: 8-20 rows per client, random-walk scores, misses."""
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


def generate_export(n_clients: int, seed: int = 0) -> pa.Table:
    """Sessions as a clinic's export holds them (see the module docstring), ``date32`` dates."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 21, n_clients)
    client = np.repeat(np.arange(n_clients, dtype=np.int64), lengths)
    n = client.shape[0]
    start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = np.arange(n) - start
    # ~4% of appointments leave a gap in the numbering (a booking deleted or never recorded)
    step = 1 + (rng.random(n) < 0.04)
    step[position == 0] = 1
    total = np.cumsum(step)
    number = total - total[start] + 1
    attendance = rng.choice(3, size=n, p=[0.82, 0.11, 0.07])
    attended = attendance == 0
    elapsed = np.cumsum(rng.integers(3, 15, n))
    day = elapsed - elapsed[start] + rng.integers(0, 3 * 365, n_clients)[client]

    def walk(level: np.ndarray, sd: float, low: float, high: float, kept: float) -> np.ndarray:
        noise = np.cumsum(rng.normal(0.0, sd, n))
        path = level[client] + noise - noise[start]
        values = np.clip(np.round(path * 12) / 12, low, high).round(2)  # item means, 2 decimals
        return np.where(attended & (rng.random(n) < kept), values, np.nan)

    alliance = walk(rng.normal(3.9, 0.5, n_clients), 0.25, 1, 5, 0.9)
    unrated = np.isnan(alliance)

    def subscale() -> np.ndarray:
        values = np.clip(np.round((alliance + rng.normal(0, 0.3, n)) * 4) / 4, 1, 5)
        return np.where(unrated, np.nan, values)

    # ~10% of episodes move to another therapist from a session between 3 and 8 on
    therapist = rng.integers(0, 5000, n_clients)[client]
    moves = rng.random(n_clients) < 0.10
    move_at = rng.integers(2, 8, n_clients)
    moved = moves[client] & (position >= move_at[client])
    other = (therapist + 1 + rng.integers(0, 4999, n_clients)[client]) % 5000
    therapist = np.where(moved, other, therapist)
    symptom = np.clip(
        np.round(rng.uniform(5, 25, n_clients)[client] + np.cumsum(rng.normal(0, 1.5, n))), 0, 27
    )
    symptom = np.where(attended & (rng.random(n) < 0.85), symptom, np.nan)
    dates = (np.datetime64("2020-01-01") + day).astype("datetime64[D]")
    return pa.table(
        {
            "client_id": _ids("c", n_clients, 7, client),
            "therapist_id": _ids("t", 5000, 4, therapist),
            "session_number": pa.array(number),
            "session_date": pa.array(dates, pa.date32()),
            "attendance": pa.array(ATTENDANCE[attendance]),
            "alliance_client": pa.array(alliance, from_pandas=True),
            "alliance_therapist": pa.array(
                walk(rng.normal(4.0, 0.4, n_clients), 0.2, 1, 5, 0.92), from_pandas=True
            ),
            "alliance_goal": pa.array(subscale(), from_pandas=True),
            "alliance_task": pa.array(subscale(), from_pandas=True),
            "alliance_bond": pa.array(subscale(), from_pandas=True),
            "symptom_score": pa.array(symptom, from_pandas=True),
        }
    )


def write_variant(variant: str, n_clients: int, directory: Path) -> tuple[Path, int]:
    """The variant's file and its number of session rows."""
    if variant == "generated":
        table, path = generate(n_clients), directory / "generated.parquet"
        pq.write_table(table, path)
    elif variant == "export-parquet":
        table, path = generate_export(n_clients), directory / "export.parquet"
        pq.write_table(table, path)
    else:
        table, path = generate_export(n_clients), directory / "export.csv"
        pacsv.write_csv(table, path)  # ISO dates, empty cells for missing values
    return path, table.num_rows


# --- measurements (each runs in a fresh subprocess) ------------------------------------------


def _reference(path: str) -> int:
    """Minimal Polars group-by: read + 20 simple per-client aggregates."""
    import polars as pl

    a, t, s = pl.col("alliance_client"), pl.col("alliance_therapist"), pl.col("symptom_score")
    x = pl.col("session_number").cast(pl.Float64)
    if path.endswith(".csv"):
        frame = pl.read_csv(path, try_parse_dates=True)
    else:
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
    """Read, type the cells as validation does (CSV cells are text), build the features."""
    from alliance_dropout import contract
    from alliance_dropout.config.features import FeaturesConfig
    from alliance_dropout.features.builder import build_features
    from alliance_dropout.io import read_table
    from alliance_dropout.validation import typed_sessions

    cfg = FeaturesConfig()
    sessions = typed_sessions(read_table(path))
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
    # imports are not what is measured: load them first
    if kind == "reference":
        import polars  # noqa: F401
    else:
        import alliance_dropout.features.builder
        import alliance_dropout.validation  # noqa: F401
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    started = time.perf_counter()
    if kind == "reference":
        rows = _reference(path)
    elif kind in ("latest", "landmarks"):
        rows = _ours(path, landmarks=kind == "landmarks")
    else:
        rows = _apply(path, n)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before  # all threads
    peak_gib = usage.ru_maxrss / 2**20  # KiB on Linux
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rows": rows, "peak_gib": peak_gib}))


def _run(kind: str, path: Path, n: int = 0) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--path", str(path), "--n", str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = os.getloadavg()[0]
    return result


def _met(value: float, op: str, target: float) -> str:
    ok = value <= target if op == "<=" else value >= target if op == ">=" else value < target
    return "met" if ok else "NOT MET"


def bench_variant(variant: str, n_clients: int, apply_clients: int) -> dict[str, float]:
    """Print one variant's table and checks; returns its ratios."""
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        started = time.perf_counter()
        path, n_rows = write_variant(variant, n_clients, Path(tmp))
        size = path.stat().st_size / 2**20
        print(
            f"\n== {variant}: {n_clients:,} clients, {n_rows:,} session rows, {path.suffix[1:]} "
            f"{size:,.0f} MiB (written in {time.perf_counter() - started:.0f} s)"
        )
        before = _run("reference", path)
        latest = _run("latest", path)
        after = _run("reference", path)
        landmarks = _run("landmarks", path)
        apply = None
        if apply_clients:
            n_apply = min(apply_clients, n_clients)
            apply = _run("apply", path, n_apply)
    reference = {
        "seconds": (before["seconds"] + after["seconds"]) / 2,
        "cpu": (before["cpu"] + after["cpu"]) / 2,
        "rows": before["rows"],
        "peak_gib": max(before["peak_gib"], after["peak_gib"]),
        "load": (before["load"] + after["load"]) / 2,
    }
    rows = [
        ("polars reference (read + 20 aggregates)", reference, ""),
        ("(a) features as of the latest row", latest, ""),
        ("(b) features at every landmark", landmarks, ""),
    ]
    apply_full = 0.0
    if apply is not None:
        apply_full = apply["seconds"] * n_clients / n_apply
        note = f"-> {apply_full:,.0f} s at full size"
        rows.append((f"groupby().apply, {n_apply:,} clients", apply, note))
    print(
        f"{'measurement (read included)':42s} {'seconds':>8s} {'CPU s':>7s} {'out rows':>10s} "
        f"{'peak GiB':>8s} {'load':>5s}"
    )
    for name, m, note in rows:
        line = (
            f"{name:42s} {m['seconds']:8.2f} {m['cpu']:7.2f} {int(m['rows']):10,d} "
            f"{m['peak_gib']:8.2f} {m['load']:5.1f}"
        )
        print(f"{line}  {note}".rstrip())
    ratios = {
        "(a) / reference": latest["seconds"] / reference["seconds"],
        "(b) / (a)": landmarks["seconds"] / latest["seconds"],
        "peak GiB of (a)": latest["peak_gib"],
    }
    checks = [
        ("(a) / reference", ratios["(a) / reference"], "<=", TARGET_A_VS_REFERENCE),
        ("(b) / (a)", ratios["(b) / (a)"], "<=", TARGET_B_VS_A),
        ("peak GiB of (a)", latest["peak_gib"], "<", TARGET_PEAK_GIB),
        ("peak GiB of (b)", landmarks["peak_gib"], "", 0.0),
    ]
    if apply is not None:
        checks.append(("apply (extrapolated) / (a)", apply_full / latest["seconds"], ">=", 100.0))
    print(f"{'ratio':30s} {'value':>8s}  target")
    for name, value, op, target in checks:
        verdict = f"{op} {target:g}  {_met(value, op, target)}" if op else "(no target)"
        print(f"{name:30s} {value:8.2f}  {verdict}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--apply-clients", type=int, default=10_000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure, args.path, args.n)
        return
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores; other jobs share them)")
    summary = {
        v: bench_variant(v, args.clients, args.apply_clients if i == 0 else 0)
        for i, v in enumerate(chosen)
    }
    print(f"\n{'summary':18s} {'(a)/ref':>8s} {'(b)/(a)':>8s} {'peak(a)':>8s}")
    for variant, r in summary.items():
        print(
            f"{variant:18s} {r['(a) / reference']:8.2f} {r['(b) / (a)']:8.2f} "
            f"{r['peak GiB of (a)']:8.2f}"
        )
    print(
        f"targets: (a)/ref <= {TARGET_A_VS_REFERENCE:g}, (b)/(a) <= {TARGET_B_VS_A:g}, "
        f"peak(a) < {TARGET_PEAK_GIB:g} GiB; load average at end: {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
