"""pipelines/validate.py end to end, as a user runs it (subprocess): exit codes and outputs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout.config import REPO_ROOT

ENTRY = REPO_ROOT / "pipelines" / "validate.py"


def write_export(folder: Path, *, bad_clients: int = 0) -> tuple[Path, Path]:
    """Sessions and outcomes CSVs for 20 clients; the first ``bad_clients`` have a PHQ-9 of 40."""
    sessions = pd.DataFrame(
        [
            {
                c.CLIENT_ID: f"client-{k:02d}",
                c.THERAPIST_ID: "t1",
                c.SESSION_NUMBER: n,
                c.SESSION_DATE: f"2024-03-{n:02d}",
                c.ATTENDANCE: c.ATTENDED,
                c.ALLIANCE_CLIENT: 4.0,
                c.ALLIANCE_THERAPIST: 3.5,
                c.SYMPTOM_SCORE: 40 if k < bad_clients and n == 1 else 12,
            }
            for k in range(20)
            for n in (1, 2)
        ]
    )
    outcomes = pd.DataFrame(
        {c.CLIENT_ID: [f"client-{k:02d}" for k in range(20)], c.STATUS: c.COMPLETED}
    )
    folder.mkdir(parents=True, exist_ok=True)
    sessions.to_csv(folder / "sessions.csv", index=False)
    outcomes.to_csv(folder / "outcomes.csv", index=False)
    return folder / "sessions.csv", folder / "outcomes.csv"


def run_cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISABLE_PANDERA_IMPORT_WARNING": "True"}
    return subprocess.run(
        [
            sys.executable,
            str(ENTRY),
            *overrides,
            "data.clients=null",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_cli_writes_outputs_and_prints_aggregates(tmp_path):
    sessions, outcomes = write_export(tmp_path / "in", bad_clients=1)
    out = tmp_path / "validated"
    result = run_cli(
        tmp_path,
        f"data.sessions={sessions}",
        f"data.outcomes={outcomes}",
        f"output_dir={out}",
        "data.max_quarantine_share=0.1",
    )
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} >= {
        "sessions.parquet",
        "outcomes.parquet",
        "quarantine.csv",
        "validation_report.json",
        "validation_summary.md",
    }
    assert "sessions: 40 rows in, 38 validated, 2 quarantined" in result.stdout
    # the stage ends, like the training stages, with one line saying what it did and how long
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"validation: 20 clients, 1 quarantined; wrote {re.escape(str(out))} \(\d+\.\d s\)", last
    ), last
    assert last in (tmp_path / "hydra" / "validate.log").read_text()  # the job log has it too
    assert "client-" not in result.stdout + result.stderr  # aggregates only
    report = json.loads((out / "validation_report.json").read_text(encoding="utf-8"))
    assert report["checks"]["sessions.out_of_range_symptom_score"] == 1


def test_cli_missing_column_exits_2_naming_file_and_column(tmp_path):
    sessions, outcomes = write_export(tmp_path / "in")
    pd.read_csv(sessions).drop(columns=[c.ATTENDANCE]).to_csv(sessions, index=False)
    out = tmp_path / "validated"
    result = run_cli(
        tmp_path, f"data.sessions={sessions}", f"data.outcomes={outcomes}", f"output_dir={out}"
    )
    assert result.returncode == 2
    assert str(sessions) in result.stderr
    assert c.ATTENDANCE in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_cli_quarantine_limit_exits_2_and_writes_nothing(tmp_path):
    sessions, outcomes = write_export(tmp_path / "in", bad_clients=2)  # 10 % of clients
    out = tmp_path / "validated"
    out.mkdir()
    result = run_cli(
        tmp_path, f"data.sessions={sessions}", f"data.outcomes={outcomes}", f"output_dir={out}"
    )
    assert result.returncode == 2
    assert "data.max_quarantine_share" in result.stderr
    assert list(out.iterdir()) == []


def test_a_misspelt_column_is_named_with_what_was_found_and_the_fix(tmp_path):
    sessions, outcomes = write_export(tmp_path / "in")
    frame = pd.read_csv(sessions).rename(columns={c.SESSION_DATE: "Session_Dat"})
    frame.to_csv(sessions, index=False)
    result = run_cli(
        tmp_path,
        f"data.sessions={sessions}",
        f"data.outcomes={outcomes}",
        f"output_dir={tmp_path / 'validated'}",
    )
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "Columns found:" in message and "'Session_Dat'" in message
    assert "for 'session_date' did you mean 'Session_Dat'?" in message
    assert "conf/data/example_clinic.yaml" in message
