"""Issue 10: scoring and validation never destroy an input, never write a broken or live CSV,
fail in one line before the work, and commit their outputs as one set; plus issue 16 (1):
dates are datetime64 whatever the source.

Serving's answers (item 6) are in tests/test_serving_answers.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout import schemas as s
from alliance_dropout.config import REPO_ROOT, DataConfig, to_object
from alliance_dropout.config.base import run_suffix
from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.errors import OutputPathError
from alliance_dropout.features.builder import build_features
from alliance_dropout.scoring import output_paths, run_scoring
from alliance_dropout.validation import load_raw_tables, run_validation, validate_tables
from tests.conftest import compose_config

HEADER = list(c.SESSION_MANDATORY)


def episode(client: str, n: int = 3, **cells: object) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {
            c.CLIENT_ID: client,
            c.THERAPIST_ID: "t1",
            c.SESSION_NUMBER: k,
            c.SESSION_DATE: f"2024-01-{k:02d}",
            c.ATTENDANCE: c.ATTENDED,
            c.ALLIANCE_CLIENT: "4.0",
            c.ALLIANCE_THERAPIST: "3.5",
            c.SYMPTOM_SCORE: "12",
        }
        for k in range(1, n + 1)
    ]
    rows[-1].update(cells)
    return rows


def write_sessions(path: Path, rows: list[dict[str, object]]) -> Path:
    """Sessions CSV written with Python's csv module (a legal CSV, quoting what needs it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HEADER, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def assert_safe_csv(path: Path) -> list[list[str]]:
    """The file reads back as the same records through csv and pandas, and no cell (header
    included) starts a formula unless it is a plain number. Returns the records."""
    with path.open(encoding="utf-8", newline="") as fh:
        records = list(csv.reader(fh))
    header, rows = records[0], records[1:]
    assert all(len(r) == len(header) for r in rows), "a record was split"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == header
    assert frame.to_numpy().tolist() == rows
    for cell in [*header, *(cell for r in rows for cell in r)]:
        if cell.startswith(c.FORMULA_PREFIXES):
            assert io.PLAIN_NUMBER.fullmatch(cell), f"live formula cell: {cell!r}"
    return records


# --- 1. every CSV we write is safe and reads back as the same records ---------------------------

HOSTILE = [
    "x\r=1+1",  # a carriage return, then a formula at the start of the next "line"
    "a\rb",
    "p\r\nq",
    "\r=cmd|' /C calc'!A0",
    '=HYPERLINK("http://x")',
    "@SUM(A1)",
    "\t=1",
    "-inf",
    "+41 79",
    "-1.5",
    "+3",
    'quote " inside',
    "comma, inside",
]


def test_written_csv_round_trips_and_neutralises_every_risky_cell(tmp_path):
    frame = pd.DataFrame(
        {
            "text": HOSTILE,
            "=header": range(len(HOSTILE)),
            "score": [-np.inf, np.inf, -1.0, *[0.5] * (len(HOSTILE) - 3)],
        }
    )
    path = io.write_table(frame, tmp_path / "out.csv")
    records = assert_safe_csv(path)
    assert records[0] == ["text", "'=header", "score"]
    texts = [r[0] for r in records[1:]]
    assert texts[:4] == ["x\r=1+1", "a\rb", "p\r\nq", "'\r=cmd|' /C calc'!A0"]
    assert texts[4:] == [
        '\'=HYPERLINK("http://x")',
        "'@SUM(A1)",
        "'\t=1",
        "'-inf",
        "'+41 79",
        "-1.5",  # plain numbers stay numbers
        "+3",
        'quote " inside',
        "comma, inside",
    ]
    assert [r[2] for r in records[1:4]] == ["'-inf", "inf", "-1.0"]


def test_quarantine_keeps_an_id_with_a_carriage_return_as_one_neutralised_record(tmp_path):
    evil = "evil\r=cmd|' /C calc'!A0"
    rows = episode(evil, symptom_score="99") + episode("fine") + episode("a\rb", symptom_score="x")
    cfg = DataConfig(
        sessions=str(write_sessions(tmp_path / "s.csv", rows)), max_quarantine_share=1.0
    )
    out = tmp_path / "out"
    run_validation(cfg, out, require_outcomes=False)
    records = assert_safe_csv(out / "quarantine.csv")
    ids = [r[records[0].index(c.CLIENT_ID)] for r in records[1:]]
    assert ids == [evil] * 3 + ["a\rb"] * 3  # as given: it does not start with a formula


@pytest.mark.parametrize("value", ["-inf", "-Infinity", "+inf", "-nan", "@1", "=1"])
def test_quarantine_neutralises_a_bad_score_as_it_came(tmp_path, value):
    rows = episode("a", symptom_score=value) + episode("b")
    cfg = DataConfig(
        sessions=str(write_sessions(tmp_path / "s.csv", rows)), max_quarantine_share=1.0
    )
    run_validation(cfg, tmp_path / "out", require_outcomes=False)
    records = assert_safe_csv(tmp_path / "out" / "quarantine.csv")
    scores = [r[records[0].index(c.SYMPTOM_SCORE)] for r in records[1:]]
    assert scores[-1] == "'" + value


def test_quarantine_of_a_parquet_minus_infinity_is_neutralised(tmp_path):
    frame = pd.DataFrame(episode("a") + episode("b"), columns=HEADER)
    frame[c.SESSION_NUMBER] = frame[c.SESSION_NUMBER].astype("int64")
    frame[c.SYMPTOM_SCORE] = [10.0, -np.inf, 3.0, 1.0, 2.0, 4.0]
    frame.to_parquet(tmp_path / "s.parquet", index=False)
    cfg = DataConfig(sessions=str(tmp_path / "s.parquet"), max_quarantine_share=1.0)
    run_validation(cfg, tmp_path / "out", require_outcomes=False)
    records = assert_safe_csv(tmp_path / "out" / "quarantine.csv")
    assert "'-inf" in [r[records[0].index(c.SYMPTOM_SCORE)] for r in records[1:]]


def test_a_formula_in_a_clients_header_is_neutralised_in_the_quarantine(tmp_path):
    rows = episode("a", symptom_score="99") + episode("b")
    sessions = write_sessions(tmp_path / "s.csv", rows)
    pd.DataFrame({c.CLIENT_ID: ["a", "b"], "=cmd()": ["x", "y"]}).to_csv(
        tmp_path / "clients.csv", index=False
    )
    cfg = DataConfig(
        sessions=str(sessions), clients=str(tmp_path / "clients.csv"), max_quarantine_share=1.0
    )
    run_validation(cfg, tmp_path / "out", require_outcomes=False)
    records = assert_safe_csv(tmp_path / "out" / "quarantine.csv")
    assert "'=cmd()" in records[0]


# --- 2. no output is ever an input ---------------------------------------------------------------


def score_cfg(tmp_path: Path, sessions: Path, output: Path, *extra: str):
    """A scoring config against an empty MLflow store in tmp_path (no model: the checks must
    stop the run before it gets that far)."""
    return to_object(
        compose_config(
            "score",
            [
                f"data.sessions={sessions}",
                f"output={output}",
                f"paths.mlruns_dir={tmp_path / 'mlruns'}",
                f"paths.outputs_dir={tmp_path / 'outputs'}",
                f"tracking.uri=sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
                *extra,
            ],
        )
    )


@pytest.fixture
def no_reading(monkeypatch):
    """Fails the test if any input is read: the check must come before any work."""

    def refuse(path):
        raise AssertionError(f"read {path} before checking the outputs")

    monkeypatch.setattr(io, "read_table", refuse)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("case", ["output is the input", "quarantine is the input", "hard link"])
def test_scoring_never_writes_over_an_input(tmp_path, no_reading, case):
    sessions = write_sessions(tmp_path / "v.csv", episode("a") + episode("b"))
    before = _snapshot(tmp_path)
    if case == "output is the input":
        inp, output = sessions, sessions
    elif case == "quarantine is the input":
        inp = sessions.rename(tmp_path / "v.quarantine.csv")
        before = _snapshot(tmp_path)
        output = tmp_path / "v.csv"
    else:
        inp, output = sessions, tmp_path / "linked.csv"
        os.link(sessions, output)
        before = _snapshot(tmp_path)
    with pytest.raises(OutputPathError) as err:
        run_scoring(score_cfg(tmp_path, inp, output), progress=False)
    assert "data.sessions" in str(err.value) and "\n" not in str(err.value)
    assert _snapshot(tmp_path) == before


def test_scoring_refuses_an_input_reached_through_a_symlink(tmp_path, no_reading):
    sessions = write_sessions(tmp_path / "in" / "s.csv", episode("a"))
    (tmp_path / "out").symlink_to(tmp_path / "in")
    with pytest.raises(OutputPathError, match=r"data\.sessions"):
        run_scoring(score_cfg(tmp_path, sessions, tmp_path / "out" / "s.csv"), progress=False)


def test_validation_never_writes_over_an_input(tmp_path, no_reading):
    out = tmp_path / "out"
    sessions = write_sessions(out / "quarantine.csv", episode("a"))
    outcomes = out / "outcomes.parquet"
    pd.DataFrame({c.CLIENT_ID: ["a"], c.STATUS: ["ongoing"]}).to_parquet(outcomes)
    before = _snapshot(tmp_path)
    for cfg in (
        DataConfig(sessions=str(sessions)),
        DataConfig(sessions=str(tmp_path / "elsewhere.csv"), outcomes=str(outcomes)),
    ):
        with pytest.raises(OutputPathError, match=r"data\.(sessions|outcomes)"):
            run_validation(cfg, out, require_outcomes=False)
    assert _snapshot(tmp_path) == before


# --- 3. filesystem problems: one line, before any work, nothing written --------------------------


def test_an_output_that_is_a_folder_is_refused_before_any_work(tmp_path, no_reading):
    sessions = write_sessions(tmp_path / "s.csv", episode("a"))
    (tmp_path / "risk.html").mkdir()
    with pytest.raises(
        OutputPathError, match=r"risk\.html: cannot write this output: it is a folder"
    ):
        run_scoring(score_cfg(tmp_path, sessions, tmp_path / "risk.csv"), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["risk.html", "s.csv"]


def test_an_output_under_a_file_is_refused_naming_that_file(tmp_path, no_reading):
    sessions = write_sessions(tmp_path / "s.csv", episode("a"))
    (tmp_path / "notes").write_text("a file, not a folder")
    with pytest.raises(OutputPathError, match="notes is a file, not a folder"):
        run_scoring(score_cfg(tmp_path, sessions, tmp_path / "notes" / "risk.csv"), progress=False)
    with pytest.raises(OutputPathError, match="notes is a file, not a folder"):
        run_validation(
            DataConfig(sessions=str(sessions)), tmp_path / "notes" / "v", require_outcomes=False
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "s.csv"]


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder nobody can write in: chmod for a normal user; for root, a sysfs folder."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    folder = Path("/sys/fs")
    try:
        io.check_outputs([folder / "risk.csv"], {})
    except OutputPathError:
        return folder
    pytest.skip("running as root and no read-only folder is available")


def test_an_output_in_a_read_only_folder_is_refused_before_any_work(tmp_path, no_reading):
    sessions = write_sessions(tmp_path / "s.csv", episode("a"))
    folder = _read_only_folder(tmp_path)
    try:
        with pytest.raises(OutputPathError, match="cannot write in folder") as err:
            run_scoring(score_cfg(tmp_path, sessions, folder / "risk.csv"), progress=False)
        assert str(folder) in str(err.value)
        assert not (folder / "risk.csv").exists()
    finally:
        if folder.is_relative_to(tmp_path):
            folder.chmod(0o700)


def _cli(entry: str, tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "pipelines" / entry),
            *overrides,
            f"hydra.run.dir={tmp_path / 'hydra'}",
            f"paths.outputs_dir={tmp_path / 'outputs'}",
            f"paths.mlruns_dir={tmp_path / 'mlruns'}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "DISABLE_PANDERA_IMPORT_WARNING": "True"},
        timeout=180,
        check=False,
    )


def test_cli_output_problems_exit_2_in_one_line_and_leave_inputs_alone(tmp_path):
    sessions = write_sessions(tmp_path / "v.csv", episode("a") + episode("b"))
    (tmp_path / "v.quarantine.csv").write_bytes(sessions.read_bytes())
    before = _snapshot(tmp_path)
    store = "tracking.uri=sqlite:///x.db"  # relative: would appear in tmp_path if opened
    cases = [
        ("score.py", f"data.sessions={sessions}", f"output={sessions}", store),
        ("score.py", f"data.sessions={tmp_path / 'v.quarantine.csv'}", f"output={sessions}", store),
        ("score.py", f"data.sessions={sessions}", f"output={tmp_path / 'v.csv' / 'r.csv'}", store),
        (
            "validate.py",
            f"data.sessions={sessions}",
            f"data.outcomes={sessions}",
            f"output_dir={tmp_path / 'v.csv'}",
        ),
        (
            "validate.py",
            f"data.sessions={tmp_path / 'v.quarantine.csv'}",
            f"data.outcomes={sessions}",
            f"output_dir={tmp_path}",
        ),
    ]
    for entry, *overrides in cases:
        result = _cli(entry, tmp_path, *overrides)
        assert result.returncode == 2, (overrides, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    assert {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith("hydra")} == before


# --- 4. a run's outputs are committed as one set -------------------------------------------------


def _previous_set(tmp_path: Path) -> dict[str, Path]:
    paths = dict(output_paths(tmp_path / "risk.csv"))
    for key, p in paths.items():
        p.write_text(f"previous {key}")
    return paths


def test_a_failed_commit_keeps_the_previous_set_whole(tmp_path):
    paths = _previous_set(tmp_path)
    finals = list(paths.values())
    with (
        pytest.raises(OutputPathError, match="previous outputs kept"),
        io.staged_files(finals) as staged,
    ):
        for final in finals:
            staged[final].write_text(f"new {final.name}")
        # the report's name becomes a folder after the checks (another process, a user)
        paths["report"].unlink()
        paths["report"].mkdir()
    assert not paths["report"].is_file()
    for key in ("scores", "quarantine", "validation"):
        assert paths[key].read_text() == f"previous {key}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in finals)


def test_a_rename_failing_midway_rolls_every_output_back(tmp_path, monkeypatch):
    paths = _previous_set(tmp_path)
    finals = list(paths.values())
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        # fail when the third new output is moved in (after two were)
        if ".alliance-tmp" in str(src):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    with (
        pytest.raises(OutputPathError, match="No space left on device"),
        io.staged_files(finals) as staged,
    ):
        for final in finals:
            io.write_text(f"new {final.name}", staged[final])
        monkeypatch.setattr(os, "replace", flaky_replace)
    monkeypatch.undo()
    for key, p in paths.items():
        assert p.read_text() == f"previous {key}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in finals)


def test_an_output_this_run_does_not_write_is_not_left_from_a_previous_run(tmp_path):
    paths = _previous_set(tmp_path)
    with io.staged_files(list(paths.values())) as staged:
        for key in ("scores", "quarantine", "validation"):
            staged[paths[key]].write_text(f"new {key}")
    assert not paths["report"].exists()  # the previous run's report no longer matches
    assert paths["scores"].read_text() == "new scores"

    rows = episode("a") + episode("b")
    sessions = write_sessions(tmp_path / "in" / "s.csv", rows)
    outcomes = tmp_path / "in" / "o.csv"
    pd.DataFrame({c.CLIENT_ID: ["a", "b"], c.STATUS: ["ongoing"] * 2}).to_csv(outcomes, index=False)
    out = tmp_path / "validated"
    run_validation(DataConfig(sessions=str(sessions), outcomes=str(outcomes)), out)
    assert (out / "outcomes.parquet").exists()
    run_validation(DataConfig(sessions=str(sessions)), out, require_outcomes=False)
    assert not (out / "outcomes.parquet").exists()


KILLED_WRITER = """
import os, sys
from pathlib import Path
from alliance_dropout import io
final = Path(sys.argv[1])
with io.staged_files([final]) as staged:
    io.write_text("client data", staged[final])
    os.kill(os.getpid(), 9)
"""


def test_temp_files_of_a_killed_run_are_recognisable_and_removed_by_the_next_run(tmp_path):
    final = tmp_path / "risk.csv"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(final)], check=False)
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p for p in tmp_path.iterdir() if p.name != final.name]
    assert leftovers and all(p.name.startswith(".risk.csv.") for p in leftovers)
    assert all(".alliance-tmp" in p.name for p in leftovers)
    # a backup of a previous output, moved aside when a run was killed: put back
    backup = io.temp_path(tmp_path / "risk.quarantine.csv", "bak")
    backup.write_text("previous quarantine")
    os.utime(backup, (0, 0))  # old enough to be stale whoever wrote it

    with io.staged_files([final]) as staged:
        io.write_text("new", staged[final])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["risk.csv", "risk.quarantine.csv"]
    assert (tmp_path / "risk.quarantine.csv").read_text() == "previous quarantine"


def test_temp_files_of_a_live_run_are_left_alone(tmp_path):
    own = io.temp_path(tmp_path / "risk.csv", "tmp")  # this process: alive
    own.write_text("being written")
    assert io.remove_stale_temp_files(tmp_path) == 0
    assert own.exists()


# --- 5. a session number too large for int64 is a row-level failure ------------------------------


@pytest.mark.parametrize(
    "source", ["csv", "parquet float", "parquet uint64", "parquet text", "csv 2**53"]
)
def test_a_huge_session_number_is_quarantined_not_a_crash(tmp_path, source):
    rows = episode("a") + episode("b")
    huge = {"csv": "99999999999999999999999", "csv 2**53": str(2**53)}.get(source)
    if source.startswith("csv"):
        rows[2][c.SESSION_NUMBER] = huge
        path = write_sessions(tmp_path / "s.csv", rows)
    else:
        frame = pd.DataFrame(rows, columns=HEADER)
        numbers = [1, 2, 3, 1, 2, 3]
        if source == "parquet float":
            frame[c.SESSION_NUMBER] = np.array([1, 2, 1e23, 1, 2, 3], dtype=float)
        elif source == "parquet uint64":
            frame[c.SESSION_NUMBER] = np.array(numbers, dtype="uint64")
            frame.loc[2, c.SESSION_NUMBER] = np.uint64(2**64 - 1)
        else:
            frame[c.SESSION_NUMBER] = ["1", "2", "99999999999999999999999", "1", "2", "3"]
        path = tmp_path / "s.parquet"
        frame.to_parquet(path, index=False)
    cfg = DataConfig(sessions=str(path), max_quarantine_share=1.0)
    data = run_validation(cfg, tmp_path / "out", require_outcomes=False)
    assert data.report["checks"][f"sessions.{s.INVALID_SESSION_NUMBER}"] == 1
    assert set(data.sessions[c.CLIENT_ID]) == {"b"}
    assert data.client_checks.to_dict() == {"a": s.INVALID_SESSION_NUMBER}


# --- 7. every run gets its own folder ------------------------------------------------------------


class _OneSecond(dt.datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return cls(2025, 1, 6, 9, 30, 0)


@pytest.fixture
def frozen_now(monkeypatch):
    """Hydra's ${now:} at one fixed second, as for two runs started in the same second."""
    monkeypatch.setattr("hydra.core.utils.datetime", _OneSecond)
    yield
    run_suffix.cache_clear()


@pytest.mark.parametrize("name", ["train", "run", "validate"])
def test_two_runs_started_in_the_same_second_get_their_own_folders(frozen_now, name):
    overrides = ["data.sessions=s.csv", "data.outcomes=o.csv"] if name != "train" else []

    def output_dir() -> str:
        return str(to_object(compose_config(name, overrides)).output_dir)

    run_suffix.cache_clear()  # a new process
    first, again = output_dir(), output_dir()
    run_suffix.cache_clear()  # another process
    second = output_dir()
    assert first == again  # one process: one folder, however often the config resolves
    assert first != second
    assert first.split("/")[-1].startswith("2025-01-06_09-30-00-")


def test_hydra_run_folder_is_unique_per_run_too(frozen_now):
    raw = OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf" / "hydra" / "default.yaml"))
    assert isinstance(raw, dict)
    compose_config("validate", ["data.sessions=s.csv"])  # Hydra registers ${now:}

    def run_dir() -> str:
        node = OmegaConf.create(
            {
                "paths": {"outputs_dir": "/o"},
                "job": {"name": "score"},
                "dir": raw["run"]["dir"].replace("hydra.job.name", "job.name"),
            }
        )
        return str(node.dir)

    run_suffix.cache_clear()
    first = run_dir()
    run_suffix.cache_clear()
    second = run_dir()
    assert first != second
    assert first.startswith("/o/hydra/score/2025-01-06_09-30-00-")


# --- 8. dates are datetime64 whatever the source (issue 16, item 1) ------------------------------


def _date_table(kind: str, dates: list[dt.date | None]) -> pa.Array:
    if kind == "date32":
        return pa.array(dates, pa.date32())
    if kind == "date64":
        return pa.array(dates, pa.date64())
    stamps = [dt.datetime(d.year, d.month, d.day) if d else None for d in dates]
    if kind == "timestamp[ms]":
        return pa.array(stamps, pa.timestamp("ms"))
    return pa.array(stamps, pa.timestamp("us", tz="UTC"))


@pytest.mark.parametrize("kind", ["date32", "date64", "timestamp[ms]", "timestamp[us, UTC]"])
def test_parquet_dates_and_csv_iso_text_give_identical_features(tmp_path, kind):
    rows = episode("a", 5) + episode("b", 4)
    rows[2][c.SYMPTOM_SCORE] = ""
    rows.append({**rows[0], c.CLIENT_ID: "c", c.SESSION_DATE: ""})  # a missing date
    csv_path = write_sessions(tmp_path / "s.csv", rows)
    frame = pd.DataFrame(rows, columns=HEADER)
    dates = [dt.date.fromisoformat(d) if d else None for d in frame[c.SESSION_DATE]]
    table = pa.table(
        {
            **{col: pa.array(frame[col].tolist()) for col in (c.CLIENT_ID, c.THERAPIST_ID)},
            c.SESSION_NUMBER: pa.array(frame[c.SESSION_NUMBER].astype("int64")),
            c.SESSION_DATE: _date_table(kind, dates),
            c.ATTENDANCE: pa.array(frame[c.ATTENDANCE].tolist()),
            **{
                col: pa.array(pd.to_numeric(frame[col].replace("", None)), pa.float64())
                for col in (c.ALLIANCE_CLIENT, c.ALLIANCE_THERAPIST, c.SYMPTOM_SCORE)
            },
        }
    )
    pq.write_table(table, tmp_path / "s.parquet")

    raw = io.read_table(tmp_path / "s.parquet")
    assert pd.api.types.is_datetime64_any_dtype(raw[c.SESSION_DATE])  # at read, in io
    assert raw[c.SESSION_DATE].dt.tz is None

    def validated(path: Path):
        cfg = DataConfig(sessions=str(path), max_quarantine_share=1.0)
        return validate_tables(load_raw_tables(cfg, require_outcomes=False), cfg)

    from_csv, from_parquet = validated(csv_path), validated(tmp_path / "s.parquet")
    # the missing date is the same check whatever the source (not an unreadable "None")
    assert from_parquet.report["checks"] == from_csv.report["checks"]
    assert from_parquet.report["checks"]["sessions.empty_session_date"] == 1
    pd.testing.assert_frame_equal(from_parquet.sessions, from_csv.sessions)
    scales = (c.PHQ9, c.WAI_SR)
    pd.testing.assert_frame_equal(
        build_features(from_parquet.sessions, FeaturesConfig(), *scales),
        build_features(from_csv.sessions, FeaturesConfig(), *scales),
    )
