"""Scoring on Spark (engine=spark, local[2]) against the local scorer, on the same caseloads.

A real model is trained into a temporary MLflow store; every comparison scores one export
with both engines and compares what they wrote: the ranked list, the quarantine, the
validation report. All Spark tests run in one xdist worker (one Spark session for the run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alliance_dropout import contract as c
from alliance_dropout import io, training
from alliance_dropout.config import REPO_ROOT, to_object
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.errors import OutputPathError, QuarantineLimitExceeded
from alliance_dropout.scoring import assign_tiers, run_scoring
from alliance_dropout.simulate import simulate
from alliance_dropout.spark_scoring import run_spark_scoring, with_tiers
from tests.conftest import compose_config

pytestmark = pytest.mark.xdist_group("spark")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small LightGBM model trained and registered the way `make run` does it."""
    root = tmp_path_factory.mktemp("spark_store")
    data = simulate(SimulateConfig(n_clients=600, n_therapists=20, seed=3))
    paths = {
        name: io.write_table(getattr(data, name), root / "train" / f"{name}.csv")
        for name in ("sessions", "outcomes")
    }
    common = [
        f"paths.mlruns_dir={root / 'mlruns'}",
        f"paths.outputs_dir={root / 'outputs'}",
        f"tracking.uri=sqlite:///{root / 'mlruns' / 'mlflow.db'}",
    ]
    cfg = compose_config(
        "run",
        [
            *common,
            f"data.sessions={paths['sessions']}",
            f"data.outcomes={paths['outcomes']}",
            "features.landmarks=[2,4,6]",
            "evaluation.n_bootstrap=5",
            "evaluation.comparators=[]",
            "split.n_folds=3",
            "tracking.promote=false",
            f"output_dir={root / 'run'}",
        ],
    )
    summary = training.run(to_object(cfg))
    assert summary.promotion is not None
    # the registered version itself: the gate's decision is not what these tests are about
    return [*common, f"model_uri=models:/alliance-dropout/{summary.promotion.version}"]


def _caseload() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """2,000 clients; some with a bad row (quarantined), some already ended (skipped)."""
    data = simulate(SimulateConfig(n_clients=2000, n_therapists=50, seed=5))
    s = data.sessions.copy()
    ids = list(s[c.CLIENT_ID].drop_duplicates())
    rows = {i: s.index[s[c.CLIENT_ID] == i] for i in ids[:6]}
    s.loc[rows[ids[0]], c.ALLIANCE_CLIENT] = 7.0  # out of range
    s.loc[rows[ids[1]][1], c.SESSION_NUMBER] = s.loc[rows[ids[1]][0], c.SESSION_NUMBER]
    s.loc[rows[ids[2]][0], c.SYMPTOM_SCORE] = np.inf
    s.loc[rows[ids[3]][0], c.ATTENDANCE] = "maybe"
    first, last = rows[ids[4]][0], rows[ids[4]][-1]
    s.loc[first, c.SESSION_DATE] = s.loc[last, c.SESSION_DATE] + pd.Timedelta(days=30)
    s.loc[rows[ids[5]][0], c.ALLIANCE_THERAPIST] = 4.0  # a whole number: written '4.0'
    s = s.sample(frac=1.0, random_state=1).reset_index(drop=True)  # rows in any order
    outcomes = data.outcomes.iloc[:400].copy()
    orphan = pd.DataFrame({c.CLIENT_ID: ["no-such-client"], c.STATUS: [c.DROPOUT]})
    outcomes = pd.concat([outcomes, orphan], ignore_index=True)
    return s, outcomes, {"bad": ids[0]}


@pytest.fixture(scope="module")
def caseload(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark_caseload")
    sessions, outcomes, _ = _caseload()
    return {
        "root": root,
        "sessions": sessions,
        "parquet": io.write_table(sessions, root / "in" / "sessions.parquet"),
        "outcomes": io.write_table(outcomes, root / "in" / "outcomes.csv"),
    }


def _score(store, engine: str, sessions: Path, output: Path, *extra: str):
    overrides = [*store, f"data.sessions={sessions}", f"output={output}", *extra]
    if engine == "spark":
        overrides += ["engine=spark", "engine.rows_per_bucket=5000"]
        return run_spark_scoring(to_object(compose_config("score", overrides)))
    return run_scoring(to_object(compose_config("score", overrides)), progress=False)


def _same_list(local: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(local.columns)
    assert spark[c.CLIENT_ID].tolist() == local[c.CLIENT_ID].tolist()  # same clients, same rank
    np.testing.assert_allclose(spark[c.DROPOUT_RISK], local[c.DROPOUT_RISK], rtol=0, atol=1e-9)
    rest = [col for col in local.columns if col != c.DROPOUT_RISK]
    pd.testing.assert_frame_equal(spark[rest], local[rest], check_dtype=False)


def _quarantine_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Spark's Parquet quarantine as the local quarantine.csv reads (formula-safe text)."""
    text = frame.astype(object).where(frame.notna(), None).astype("string")
    return io.neutralise_formulas(text).fillna("").astype(str)


def _local_quarantine(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def both(store, caseload, spark_local):
    """The Parquet caseload scored by both engines (outcomes given: ended clients skipped)."""
    root, extra = caseload["root"], [f"data.outcomes={caseload['outcomes']}"]
    local = _score(store, "local", caseload["parquet"], root / "local" / "risk.parquet", *extra)
    spark = _score(store, "spark", caseload["parquet"], root / "spark" / "risk", *extra)
    print(local.line(), spark.line(), sep="\n")
    return {"local": local, "spark": spark, "extra": extra}


def test_spark_gives_the_local_answers_on_a_caseload_with_bad_rows(caseload, both):
    root, local, spark = caseload["root"], both["local"], both["spark"]
    _same_list(pd.read_parquet(root / "local" / "risk.parquet"), pd.read_parquet(spark.output))
    assert spark.n_scored == local.n_scored > 1000
    assert spark.n_skipped_ended == local.n_skipped_ended > 0
    assert spark.n_quarantined_clients == local.n_quarantined_clients == 5
    assert spark.tier_counts == local.tier_counts
    expected = _local_quarantine(root / "local" / "risk.quarantine.csv")
    got = _quarantine_text(pd.read_parquet(root / "spark" / "risk.quarantine"))
    pd.testing.assert_frame_equal(got, expected)
    assert "4.0" in set(got[c.ALLIANCE_THERAPIST])  # a bucket's whole float, as locally
    assert "no-such-client" in set(got[c.CLIENT_ID])  # an outcome without sessions
    local_report = io.read_json(root / "local" / "risk.validation.json")
    assert io.read_json(root / "spark" / "risk.validation.json") == local_report
    assert (root / "spark" / "risk.html").is_file()


def test_clients_rows_spread_over_several_files(store, caseload, both, tmp_path):
    """Every client's rows in three files: the same list, quarantine rows found again."""
    sessions = caseload["sessions"]
    folder = tmp_path / "export"
    folder.mkdir()
    table = pa.Table.from_pandas(sessions, preserve_index=False)
    parts = np.array_split(np.random.default_rng(0).permutation(len(sessions)), 3)
    for i, part in enumerate(parts):
        pq.write_table(table.take(np.sort(part)), folder / f"part-{i}.parquet")
    spark = _score(
        store, "spark", folder, tmp_path / "risk", *both["extra"], "engine.report_scope=therapist"
    )
    root = caseload["root"]
    _same_list(pd.read_parquet(root / "local" / "risk.parquet"), pd.read_parquet(spark.output))
    quarantine = pd.read_parquet(tmp_path / "risk.quarantine")
    place = ["source_file", "row_number"]
    local = _local_quarantine(root / "local" / "risk.quarantine.csv").drop(columns=place)
    got = _quarantine_text(quarantine).drop(columns=place)
    key = [c.CLIENT_ID, "table", c.SESSION_NUMBER, "check"]
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True),
        local.sort_values(key).reset_index(drop=True),
    )
    # each quarantined session row names the file and the row it is in
    for row in quarantine[quarantine["table"] == "sessions"].itertuples():
        source = pd.read_parquet(row.source_file).iloc[row.row_number - 1]
        assert source[c.CLIENT_ID] == row.client_id
        assert str(source[c.SESSION_NUMBER]) == row.session_number
    report = io.read_json(tmp_path / "risk.validation.json")
    expected = io.read_json(root / "local" / "risk.validation.json")
    for part in ("tables", "checks", "quarantine"):
        assert report[part] == expected[part]
    # one report page per therapist of the list
    pages = list((tmp_path / "risk.reports").glob("*.html"))
    listed = pd.read_parquet(spark.output)
    assert len(pages) == listed[c.THERAPIST_ID].nunique()
    one = listed[c.THERAPIST_ID].iloc[0]
    mine = listed.loc[listed[c.THERAPIST_ID] == one, c.CLIENT_ID]
    page = next(p for p in pages if all(cid in p.read_text() for cid in mine))
    others = listed.loc[listed[c.THERAPIST_ID] != one, c.CLIENT_ID]
    assert not any(cid in page.read_text() for cid in others.iloc[:50])


def test_a_csv_with_unreadable_cells_and_fixed_tiers(store, tmp_path, spark_local):
    sessions, _, _ = _caseload()
    text = sessions.astype(object)
    text.loc[3, c.SYMPTOM_SCORE] = "ninety"
    text.loc[10, c.SESSION_DATE] = "2025-13-40"
    text.loc[20, c.ALLIANCE_CLIENT] = "NA"  # a missing value, as the contract spells it
    path = io.write_table(text, tmp_path / "sessions.csv")
    tiers = ["scoring.tiers.mode=probability", "scoring.tiers.high=0.4", "scoring.tiers.medium=0.2"]
    local = _score(store, "local", path, tmp_path / "local" / "risk.csv", *tiers)
    spark = _score(
        store, "spark", path, tmp_path / "spark" / "risk", *tiers, "engine.report_top_n=50"
    )
    listed = pd.read_csv(
        tmp_path / "local" / "risk.csv", dtype={c.CLIENT_ID: str, c.THERAPIST_ID: str}
    )
    listed[c.AS_OF_DATE] = pd.to_datetime(listed[c.AS_OF_DATE])
    listed[c.TOP_REASONS] = listed[c.TOP_REASONS].fillna("")  # an empty cell reads as NA
    _same_list(listed, pd.read_parquet(spark.output))
    assert spark.tier_counts == local.tier_counts
    expected = _local_quarantine(tmp_path / "local" / "risk.quarantine.csv")
    got = _quarantine_text(pd.read_parquet(tmp_path / "spark" / "risk.quarantine"))
    pd.testing.assert_frame_equal(got, expected)
    assert io.read_json(tmp_path / "spark" / "risk.validation.json") == io.read_json(
        tmp_path / "local" / "risk.validation.json"
    )
    html = (tmp_path / "spark" / "risk.html").read_text()
    assert f"the 50 riskiest of {spark.n_scored} clients" in html


def test_a_failed_job_leaves_the_previous_outputs_and_no_partial_ones(store, caseload, both):
    root = caseload["root"] / "spark"
    before = {p.name: p.stat().st_mtime_ns for p in root.iterdir()}
    report = (root / "risk.validation.json").read_bytes()
    with pytest.raises(QuarantineLimitExceeded, match="quarantined 5 of"):
        _score(
            store,
            "spark",
            caseload["parquet"],
            root / "risk",
            *both["extra"],
            "data.max_quarantine_share=0.001",
        )
    assert {p.name: p.stat().st_mtime_ns for p in root.iterdir()} == before
    assert (root / "risk.validation.json").read_bytes() == report


def test_an_output_folder_holding_the_input_is_refused(store, caseload, tmp_path):
    with pytest.raises(OutputPathError, match="holds or lies in the input"):
        _score(store, "spark", caseload["parquet"], caseload["parquet"].parent)


def test_a_file_level_problem_stops_in_one_line_and_writes_nothing(store, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    sessions, _, _ = _caseload()
    io.write_table(sessions.iloc[:500], folder / "part-0.parquet")
    io.write_table(sessions.iloc[500:].drop(columns=[c.ATTENDANCE]), folder / "part-1.parquet")
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "pipelines" / "score.py"),
            *store,
            "engine=spark",
            f"data.sessions={folder}",
            f"output={tmp_path / 'out' / 'risk'}",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "DISABLE_PANDERA_IMPORT_WARNING": "True"},
        timeout=300,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error: ") and "part-1.parquet" in lines[0]
    assert "'attendance'" in lines[0] and "missing" in lines[0]
    assert not (tmp_path / "out").exists()


def test_share_tiers_split_ties_on_the_cut_off_by_client_id_as_locally(spark_local):
    """Calibrated risks have plateaus (isotonic calibration): many clients share a cut-off."""
    rng = np.random.default_rng(1)
    n = 2503
    clients = pd.DataFrame(
        {
            c.CLIENT_ID: [f"c{i:05d}" for i in rng.permutation(n)],
            c.DROPOUT_RISK: rng.choice(
                [0.1, 0.2, 0.25, 0.3, 0.5], size=n, p=[0.3, 0.3, 0.2, 0.1, 0.1]
            ),
        }
    )
    local = clients.sort_values(
        [c.DROPOUT_RISK, c.CLIENT_ID], ascending=[False, True], kind="stable"
    )
    run = to_object(compose_config("score", ["engine=spark", "data.sessions=x.csv", "output=x"]))
    local[c.RISK_TIER] = assign_tiers(local[c.DROPOUT_RISK].to_numpy(), run.scoring.tiers)
    got = with_tiers(spark_local.createDataFrame(clients), n, run).toPandas()
    both = local.merge(got, on=c.CLIENT_ID, suffixes=("_local", "_spark"))
    assert len(both) == n
    assert (both[f"{c.RISK_TIER}_local"] == both[f"{c.RISK_TIER}_spark"]).all()
    assert (local[c.RISK_TIER] == "high").sum() == round(0.1 * n)


def test_the_spark_engine_is_a_config_group():
    cfg = to_object(compose_config("score", ["engine=spark"]).engine)
    assert cfg.name.value == "spark" and cfg.master == "local[*]"
    assert to_object(compose_config("score").engine).name.value == "local"
    spark_conf = to_object(
        compose_config("score", ["engine=spark", "+engine.conf={spark.executor.memory:4g}"]).engine
    ).conf
    assert spark_conf["spark.executor.memory"] == "4g"
    assert json.dumps(spark_conf)  # plain strings, handed to SparkSession.builder.config
