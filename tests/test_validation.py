"""Validation stage: structure errors, every row-level check, quarantine and report."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout import schemas as s
from alliance_dropout.config import DataConfig, ScaleConfig
from alliance_dropout.errors import InputFileError, PipelineError, QuarantineLimitExceeded
from alliance_dropout.validation import (
    ValidatedData,
    load_raw_tables,
    run_validation,
    validate_tables,
)

SESSION_HEADER = list(c.SESSION_MANDATORY)


def session_row(client: str = "c1", number: object = 1, **cells: object) -> dict[str, object]:
    """One attended session as CSV text; ``cells`` override columns."""
    row: dict[str, object] = {
        c.CLIENT_ID: client,
        c.THERAPIST_ID: "t1",
        c.SESSION_NUMBER: number,
        c.SESSION_DATE: f"2024-01-{int(number) if str(number).isdigit() else 1:02d}",
        c.ATTENDANCE: c.ATTENDED,
        c.ALLIANCE_CLIENT: "4.0",
        c.ALLIANCE_THERAPIST: "3.5",
        c.SYMPTOM_SCORE: "12",
    }
    row.update(cells)
    return row


def episode(client: str, n: int = 3) -> list[dict[str, object]]:
    return [session_row(client, k) for k in range(1, n + 1)]


def write_csv(path: Path, rows: list[dict[str, object]], columns: list[str] | None = None) -> Path:
    frame = pd.DataFrame(rows, columns=columns)
    frame.to_csv(path, index=False)
    return path


def make_config(
    tmp_path: Path,
    sessions: list[dict[str, object]],
    outcomes: list[dict[str, object]] | None = None,
    clients: list[dict[str, object]] | None = None,
    **settings: object,
) -> DataConfig:
    """Write the tables as CSV under tmp_path and point a DataConfig at them."""
    paths: dict[str, object] = {
        "sessions": str(write_csv(tmp_path / "sessions.csv", sessions, SESSION_HEADER))
    }
    if outcomes is not None:
        paths["outcomes"] = str(write_csv(tmp_path / "outcomes.csv", outcomes))
    if clients is not None:
        paths["clients"] = str(write_csv(tmp_path / "clients.csv", clients))
    settings.setdefault("max_quarantine_share", 1.0)
    return DataConfig(**paths, **settings)  # type: ignore[arg-type]


def validate(tmp_path: Path, sessions, outcomes=None, clients=None, **settings) -> ValidatedData:
    cfg = make_config(tmp_path, sessions, outcomes, clients, **settings)
    return validate_tables(load_raw_tables(cfg, require_outcomes=False), cfg)


def quarantined_rows(data: ValidatedData, table: str = "sessions") -> pd.DataFrame:
    return data.quarantine[data.quarantine["table"] == table]


def assert_invariant(data: ValidatedData) -> None:
    for table, n in data.report["tables"].items():
        if n is None:
            continue
        assert n["rows_in"] == n["rows_validated"] + n["rows_quarantined"]
        assert n["rows_quarantined"] == len(quarantined_rows(data, table))
    assert len(data.sessions) == data.report["tables"]["sessions"]["rows_validated"]


# --- clean data ----------------------------------------------------------------------------------


def test_clean_export_validates_every_row_typed_and_sorted(tmp_path):
    rows = episode("b", 2) + episode("a", 3)
    rows.reverse()  # rows may come in any order
    outcomes = [{"client_id": "a", "status": "dropout"}, {"client_id": "b", "status": "completed"}]
    data = validate(tmp_path, rows, outcomes)

    sessions = data.sessions
    assert list(sessions.columns) == list(c.SESSION_COLUMNS)
    assert sessions[c.SESSION_NUMBER].dtype == "int64"
    assert pd.api.types.is_datetime64_any_dtype(sessions[c.SESSION_DATE])
    assert sessions[c.SYMPTOM_SCORE].dtype == "float64"
    assert sessions[list(c.ALLIANCE_SUBSCALES)].isna().all().all()
    assert list(zip(sessions[c.CLIENT_ID], sessions[c.SESSION_NUMBER], strict=True)) == [
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 1),
        ("b", 2),
    ]
    assert data.quarantine.empty
    assert data.outcomes is not None and len(data.outcomes) == 2
    assert data.report["quarantine"]["share"] == 0
    assert not any(data.report["checks"].values())
    assert_invariant(data)


def test_report_lists_every_check_with_zero_counts(tmp_path):
    data = validate(tmp_path, episode("a"), [{"client_id": "a", "status": "completed"}])
    expected = [f"sessions.{name}" for name in (*s.SESSION_CHECKS, s.CLIENT_QUARANTINED)]
    expected += [f"outcomes.{name}" for name in (*s.OUTCOME_CHECKS, s.CLIENT_QUARANTINED)]
    assert list(data.report["checks"]) == expected
    for column in (c.SESSION_NUMBER, c.SESSION_DATE, *c.SESSION_SCORES):
        assert f"unreadable_{column}" in s.SESSION_CHECKS
    for column in c.SESSION_SCORES:
        assert f"out_of_range_{column}" in s.SESSION_CHECKS


@pytest.mark.parametrize("missing", ["", "NA", "NaN", "nan", "null"])
def test_missing_value_spellings_are_missing_not_unreadable(tmp_path, missing):
    rows = [*episode("a", 1), session_row("a", 2, symptom_score=missing, alliance_client=missing)]
    data = validate(tmp_path, rows)
    assert data.quarantine.empty
    assert data.sessions[c.SYMPTOM_SCORE].isna().sum() == 1


# --- structural errors: stop before any output ---------------------------------------------------


def _structural_cases(tmp_path: Path) -> dict[str, tuple[Path, str | None]]:
    ok = write_csv(tmp_path / "ok.csv", episode("a"), SESSION_HEADER)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(ok.read_bytes().replace(b"t1", "t\u00e9".encode("latin-1")))
    wrong_suffix = tmp_path / "sessions.xlsx"
    wrong_suffix.write_bytes(ok.read_bytes())
    header_only = tmp_path / "header_only.csv"
    header_only.write_text(",".join(SESSION_HEADER) + "\n", encoding="utf-8")
    no_date = write_csv(
        tmp_path / "no_date.csv",
        episode("a"),
        [col for col in SESSION_HEADER if col != c.SESSION_DATE],
    )
    return {
        "missing file": (tmp_path / "nope.csv", None),
        "empty file": (empty, None),
        "not utf-8": (latin1, None),
        "wrong suffix": (wrong_suffix, None),
        "header only": (header_only, None),
        "missing required column": (no_date, c.SESSION_DATE),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "empty file",
        "not utf-8",
        "wrong suffix",
        "header only",
        "missing required column",
    ],
)
def test_unusable_sessions_file_stops_with_file_and_column_named(tmp_path, case):
    path, column = _structural_cases(tmp_path)[case]
    cfg = DataConfig(sessions=str(path))
    out = tmp_path / "out"
    with pytest.raises(InputFileError) as err:
        run_validation(cfg, out, require_outcomes=False)
    assert err.value.path == str(path)
    assert str(path) in str(err.value)
    if column:
        assert err.value.column == column
        assert column in str(err.value)
    assert not out.exists()


def test_missing_column_in_outcomes_names_that_file(tmp_path):
    cfg = make_config(tmp_path, episode("a"), [{"client_id": "a", "state": "dropout"}])
    with pytest.raises(InputFileError) as err:
        load_raw_tables(cfg, require_outcomes=True)
    assert err.value.path == cfg.outcomes
    assert err.value.column == c.STATUS


def test_outcomes_required_for_training_stages(tmp_path):
    cfg = make_config(tmp_path, episode("a"))
    with pytest.raises(PipelineError, match=r"data\.outcomes"):
        load_raw_tables(cfg, require_outcomes=True)
    assert load_raw_tables(cfg, require_outcomes=False).outcomes is None


# --- row-level checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "bad"),
    [
        (c.SESSION_NUMBER, "two"),
        (c.SESSION_DATE, "2024-13-45"),
        (c.SESSION_DATE, "03/01/2024"),  # not ISO 8601
        (c.ALLIANCE_CLIENT, "4,5"),
        (c.ALLIANCE_THERAPIST, "high"),
        (c.SYMPTOM_SCORE, "12a"),
    ],
)
def test_unreadable_cell_quarantines_the_whole_client(tmp_path, column, bad):
    rows = episode("good") + episode("bad")
    rows[4][column] = bad  # second session of client "bad"
    data = validate(tmp_path, rows)

    check = f"unreadable_{column}"
    assert data.report["checks"][f"sessions.{check}"] == 1
    q = quarantined_rows(data)
    assert set(q[c.CLIENT_ID]) == {"bad"}
    flagged = q[q["check"] == check]
    assert flagged["row_number"].tolist() == [5]
    assert flagged["column"].tolist() == [column]
    assert flagged[column].tolist() == [bad]  # the cell as given
    others = q[q["check"] == s.CLIENT_QUARANTINED]
    assert others["row_number"].tolist() == [4, 6]
    assert others["reason"].str.contains(check).all()
    assert set(data.sessions[c.CLIENT_ID]) == {"good"}
    # an unreadable cell counts once, not again as an empty required cell
    assert data.report["checks"].get(f"sessions.empty_{column}", 0) == 0
    assert_invariant(data)


def test_unreadable_cell_does_not_hide_out_of_range_values_in_same_column(tmp_path):
    # pandera alone would stop at the failed coercion and miss the 40 (library notes, trap)
    rows = episode("a") + episode("b") + episode("ok")
    rows[0][c.SYMPTOM_SCORE] = "x"
    rows[3][c.SYMPTOM_SCORE] = "40"
    data = validate(tmp_path, rows)
    checks = data.report["checks"]
    assert checks["sessions.unreadable_symptom_score"] == 1
    assert checks["sessions.out_of_range_symptom_score"] == 1
    assert set(quarantined_rows(data)[c.CLIENT_ID]) == {"a", "b"}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (c.SYMPTOM_SCORE, "28"),
        (c.SYMPTOM_SCORE, "-1"),
        (c.SYMPTOM_SCORE, "inf"),
        (c.SYMPTOM_SCORE, "-inf"),
        (c.ALLIANCE_CLIENT, "5.01"),
        (c.ALLIANCE_CLIENT, "0.5"),
        (c.ALLIANCE_THERAPIST, "inf"),
    ],
)
def test_out_of_range_score_is_quarantined(tmp_path, column, value):
    rows = episode("a") + episode("b")
    rows[1][column] = value
    data = validate(tmp_path, rows)
    assert data.report["checks"][f"sessions.out_of_range_{column}"] == 1
    assert set(quarantined_rows(data)[c.CLIENT_ID]) == {"a"}
    assert np.isfinite(data.sessions[list(c.SESSION_SCORES[:2])].dropna()).all().all()


def test_score_boundaries_are_in_range(tmp_path):
    rows = episode("a", 2)
    rows[0].update({c.SYMPTOM_SCORE: "0", c.ALLIANCE_CLIENT: "1", c.ALLIANCE_THERAPIST: "5"})
    rows[1].update({c.SYMPTOM_SCORE: "27"})
    assert validate(tmp_path, rows).quarantine.empty


def test_symptom_range_follows_the_configured_scale(tmp_path):
    gad7 = ScaleConfig(name="GAD-7", min=0, max=21, clinical_cutoff=8, reliable_change=4)
    rows = episode("a") + episode("b")
    rows[0][c.SYMPTOM_SCORE] = "22"  # fine on PHQ-9, out of range on GAD-7
    assert validate(tmp_path, rows).quarantine.empty
    data = validate(tmp_path, rows, symptom=gad7)
    assert data.report["checks"]["sessions.out_of_range_symptom_score"] == 1
    assert data.report["scales"]["symptom"]["max"] == 21


def test_subscale_columns_are_range_checked_when_present(tmp_path):
    rows = episode("a") + episode("b")
    for row in rows:
        row.update({c.ALLIANCE_GOAL: "3", c.ALLIANCE_TASK: "4", c.ALLIANCE_BOND: "5"})
    rows[0][c.ALLIANCE_BOND] = "6"
    cfg = make_config(tmp_path, [])
    write_csv(Path(cfg.sessions), rows)
    data = validate_tables(load_raw_tables(cfg, require_outcomes=False), cfg)
    assert data.report["checks"]["sessions.out_of_range_alliance_bond"] == 1
    assert data.sessions[c.ALLIANCE_GOAL].tolist() == [3.0, 3.0, 3.0]


@pytest.mark.parametrize("number", ["0", "-2", "1.5", "inf"])
def test_session_number_below_one_or_fractional_is_invalid(tmp_path, number):
    rows = episode("a") + episode("b")
    rows[2][c.SESSION_NUMBER] = number
    data = validate(tmp_path, rows)
    assert data.report["checks"][f"sessions.{s.INVALID_SESSION_NUMBER}"] == 1
    assert set(quarantined_rows(data)[c.CLIENT_ID]) == {"a"}


def test_session_number_written_as_whole_float_is_accepted(tmp_path):
    rows = episode("a")
    rows[1][c.SESSION_NUMBER] = "2.0"
    data = validate(tmp_path, rows)
    assert data.quarantine.empty
    assert data.sessions[c.SESSION_NUMBER].tolist() == [1, 2, 3]


def test_duplicate_session_number_flags_both_rows(tmp_path):
    rows = [*episode("a", 2), session_row("a", 2, session_date="2024-01-03"), *episode("b")]
    data = validate(tmp_path, rows)
    q = quarantined_rows(data)
    assert data.report["checks"][f"sessions.{s.DUPLICATE_SESSION_NUMBER}"] == 2
    dupes = q[q["check"] == s.DUPLICATE_SESSION_NUMBER]
    assert dupes["row_number"].tolist() == [2, 3]
    assert q.loc[q["row_number"] == 1, "check"].item() == s.CLIENT_QUARANTINED
    assert set(data.sessions[c.CLIENT_ID]) == {"b"}


def test_dates_out_of_session_order_are_quarantined(tmp_path):
    rows = episode("a") + episode("b")
    rows[2][c.SESSION_DATE] = "2023-12-31"  # session 3 dated before session 2
    data = validate(tmp_path, rows)
    q = quarantined_rows(data)
    assert q.loc[q["check"] == s.DATES_OUT_OF_ORDER, "row_number"].tolist() == [3]
    assert set(q[c.CLIENT_ID]) == {"a"}


def test_equal_dates_and_gaps_in_session_numbers_are_fine(tmp_path):
    rows = [
        session_row("a", 1, session_date="2024-01-01"),
        session_row("a", 2, session_date="2024-01-01"),
        session_row("a", 7, session_date="2024-02-01"),
    ]
    data = validate(tmp_path, rows)
    assert data.quarantine.empty
    assert data.sessions[c.SESSION_NUMBER].tolist() == [1, 2, 7]


def test_unknown_attendance_is_quarantined(tmp_path):
    rows = episode("a") + episode("b")
    rows[0][c.ATTENDANCE] = "Attended"  # codes are exact; map them with data.attendance_codes
    data = validate(tmp_path, rows)
    assert data.report["checks"][f"sessions.{s.UNKNOWN_ATTENDANCE}"] == 1
    assert set(quarantined_rows(data)[c.CLIENT_ID]) == {"a"}


def test_unknown_status_quarantines_outcome_and_sessions_of_that_client(tmp_path):
    outcomes = [{"client_id": "a", "status": "left"}, {"client_id": "b", "status": "dropout"}]
    data = validate(tmp_path, episode("a") + episode("b"), outcomes)
    assert data.report["checks"][f"outcomes.{s.UNKNOWN_STATUS}"] == 1
    assert set(quarantined_rows(data, "outcomes")[c.CLIENT_ID]) == {"a"}
    sessions_q = quarantined_rows(data, "sessions")
    assert set(sessions_q["check"]) == {s.CLIENT_QUARANTINED}
    assert sessions_q["reason"].str.contains(s.UNKNOWN_STATUS).all()
    assert set(data.sessions[c.CLIENT_ID]) == {"b"}
    assert data.report["tables"]["sessions"]["clients_quarantined"] == 1


@pytest.mark.parametrize("attendance", [c.CANCELLED, c.NO_SHOW])
def test_scores_on_non_attended_row_are_quarantined(tmp_path, attendance):
    rows = episode("a") + episode("b")
    rows[1][c.ATTENDANCE] = attendance  # keeps its scores
    rows[4].update(
        {
            c.ATTENDANCE: attendance,
            c.ALLIANCE_CLIENT: "",
            c.ALLIANCE_THERAPIST: "",
            c.SYMPTOM_SCORE: "",
        }
    )
    data = validate(tmp_path, rows)
    assert data.report["checks"][f"sessions.{s.SCORE_ON_NON_ATTENDED}"] == 1
    assert set(quarantined_rows(data)[c.CLIENT_ID]) == {"a"}
    assert data.sessions[c.ATTENDANCE].tolist() == [c.ATTENDED, attendance, c.ATTENDED]


@pytest.mark.parametrize("column", [c.CLIENT_ID, c.THERAPIST_ID])
@pytest.mark.parametrize("value", ["", "   "])
def test_empty_identifier_is_quarantined(tmp_path, column, value):
    rows = episode("a") + episode("b")
    rows[3][column] = value
    data = validate(tmp_path, rows)
    assert data.report["checks"][f"sessions.empty_{column}"] == 1
    assert data.report["tables"]["sessions"]["rows_quarantined"] >= 1
    assert_invariant(data)


def test_outcome_without_sessions_is_quarantined_alone(tmp_path):
    outcomes = [
        {"client_id": "a", "status": "completed"},
        {"client_id": "ghost", "status": "dropout"},
    ]
    clients = [{"client_id": "a", "gender": "f"}, {"client_id": "ghost2", "gender": "m"}]
    data = validate(tmp_path, episode("a"), outcomes, clients)
    assert quarantined_rows(data, "sessions").empty
    q_out = quarantined_rows(data, "outcomes")
    assert q_out[["client_id", "check"]].values.tolist() == [["ghost", s.CLIENT_WITHOUT_SESSIONS]]
    q_cli = quarantined_rows(data, "clients")
    assert q_cli[["client_id", "check"]].values.tolist() == [["ghost2", s.CLIENT_WITHOUT_SESSIONS]]
    assert data.outcomes is not None and data.outcomes[c.CLIENT_ID].tolist() == ["a"]
    assert data.clients is not None and data.clients.columns.tolist() == ["client_id", "gender"]
    # orphan outcome rows do not count towards the clients share
    assert data.report["quarantine"]["share"] == 0


def test_duplicate_client_in_outcomes_quarantines_that_client(tmp_path):
    outcomes = [
        {"client_id": "a", "status": "completed"},
        {"client_id": "a", "status": "dropout"},
        {"client_id": "b", "status": "dropout"},
    ]
    data = validate(tmp_path, episode("a") + episode("b"), outcomes)
    assert data.report["checks"][f"outcomes.{s.DUPLICATE_CLIENT_ID}"] == 2
    sessions_q = quarantined_rows(data, "sessions")
    assert set(sessions_q[c.CLIENT_ID]) == {"a"}
    assert sessions_q["reason"].str.contains(s.DUPLICATE_CLIENT_ID).all()


def test_clients_table_duplicate_and_client_rows_quarantined(tmp_path):
    clients = [{"client_id": "a", "age_band": "18-25"}, {"client_id": "a", "age_band": "26-35"}]
    data = validate(tmp_path, episode("a") + episode("b"), None, clients)
    assert data.report["checks"][f"clients.{s.DUPLICATE_CLIENT_ID}"] == 2
    assert set(quarantined_rows(data, "sessions")[c.CLIENT_ID]) == {"a"}


def test_rows_in_equal_validated_plus_quarantined_on_a_messy_export(tmp_path):
    rows = episode("ok1") + episode("ok2") + episode("x1") + episode("x2") + episode("x3")
    rows[6][c.SYMPTOM_SCORE] = "99"
    rows[9][c.SESSION_NUMBER] = "abc"
    rows[12][c.ATTENDANCE] = "maybe"
    rows.append(session_row("", 1))
    outcomes = [
        {"client_id": "ok1", "status": "dropout"},
        {"client_id": "x1", "status": "completed"},
        {"client_id": "nobody", "status": "completed"},
        {"client_id": "ok2", "status": "?"},
    ]
    data = validate(tmp_path, rows, outcomes)
    assert_invariant(data)
    tables = data.report["tables"]
    assert tables["sessions"]["rows_in"] == 16
    assert tables["sessions"]["rows_validated"] == 3  # only ok1 survives
    assert tables["outcomes"]["rows_validated"] == 1
    assert set(data.sessions[c.CLIENT_ID]) == {"ok1"}
    total_quarantined = sum(n["rows_quarantined"] for n in tables.values() if n)
    assert len(data.quarantine) == total_quarantined


# --- reading rules -----------------------------------------------------------------------------


def test_bom_and_windows_line_endings(tmp_path):
    cfg = make_config(tmp_path, episode("a"), [{"client_id": "a", "status": "completed"}])
    for path in (cfg.sessions, cfg.outcomes):
        assert path is not None
        text = Path(path).read_text(encoding="utf-8").replace("\n", "\r\n")
        Path(path).write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    data = validate_tables(load_raw_tables(cfg, require_outcomes=True), cfg)
    assert data.quarantine.empty
    assert data.sessions[c.CLIENT_ID].tolist() == ["a"] * 3
    assert data.sessions[c.SYMPTOM_SCORE].tolist() == [12.0] * 3
    assert data.outcomes is not None and data.outcomes[c.STATUS].tolist() == ["completed"]


def test_parquet_input_matches_csv_input(tmp_path):
    rows = episode("007") + episode("b")
    rows[5][c.ALLIANCE_CLIENT] = ""
    csv_data = validate(tmp_path, rows)

    typed = pd.DataFrame(rows, columns=SESSION_HEADER)
    typed[c.SESSION_NUMBER] = typed[c.SESSION_NUMBER].astype("int64")
    typed[c.SESSION_DATE] = pd.to_datetime(typed[c.SESSION_DATE]).astype("datetime64[ns]")
    for col in (c.ALLIANCE_CLIENT, c.ALLIANCE_THERAPIST, c.SYMPTOM_SCORE):
        typed[col] = pd.to_numeric(typed[col])
    typed.to_parquet(tmp_path / "sessions.parquet", index=False)
    pd.DataFrame({"client_id": ["007"], "status": ["dropout"]}).to_parquet(
        tmp_path / "outcomes.parquet", index=False
    )
    cfg = DataConfig(
        sessions=str(tmp_path / "sessions.parquet"), outcomes=str(tmp_path / "outcomes.parquet")
    )
    pq_data = validate_tables(load_raw_tables(cfg, require_outcomes=True), cfg)

    pd.testing.assert_frame_equal(pq_data.sessions, csv_data.sessions)
    assert pq_data.sessions[c.CLIENT_ID].iloc[0] == "007"  # leading zeros kept
    assert pq_data.quarantine.empty


def test_parquet_bad_values_are_checked_too(tmp_path):
    frame = pd.DataFrame(episode("a") + episode("b"), columns=SESSION_HEADER)
    frame[c.SYMPTOM_SCORE] = [10.0, np.inf, 3.0, 1.0, 2.0, np.nan]
    frame[c.SESSION_NUMBER] = [1, 2, 3, 1, 1, 2]
    frame.to_parquet(tmp_path / "s.parquet", index=False)
    cfg = DataConfig(sessions=str(tmp_path / "s.parquet"), max_quarantine_share=1.0)
    data = validate_tables(load_raw_tables(cfg, require_outcomes=False), cfg)
    checks = data.report["checks"]
    assert checks["sessions.out_of_range_symptom_score"] == 1
    assert checks[f"sessions.{s.DUPLICATE_SESSION_NUMBER}"] == 2
    assert data.sessions.empty


def test_column_mapping_and_codes_from_a_clinic_config(tmp_path):
    export_names = {
        c.CLIENT_ID: "EpisodeID",
        c.THERAPIST_ID: "ClinicianID",
        c.SESSION_NUMBER: "SessionNo",
        c.SESSION_DATE: "ApptDate",
        c.ATTENDANCE: "Attendance",
        c.ALLIANCE_CLIENT: "WAI_client",
        c.ALLIANCE_THERAPIST: "WAI_therapist",
        c.SYMPTOM_SCORE: "PHQ9_total",
        c.STATUS: "EndReason",
    }
    rows = episode("a") + episode("b")
    rows[1].update({c.ATTENDANCE: "DNA", c.ALLIANCE_CLIENT: "", c.ALLIANCE_THERAPIST: ""})
    rows[1][c.SYMPTOM_SCORE] = ""
    for row in rows:
        if row[c.ATTENDANCE] == c.ATTENDED:
            row[c.ATTENDANCE] = "ATT"
    sessions = [{export_names[k]: v for k, v in row.items()} for row in rows]
    outcomes = [
        {"EpisodeID": "a", "EndReason": "unilateral"},
        {"EpisodeID": "b", "EndReason": "open"},
    ]
    pd.DataFrame(sessions).to_csv(tmp_path / "export.csv", index=False)
    pd.DataFrame(outcomes).to_csv(tmp_path / "ends.csv", index=False)
    cfg = DataConfig(
        source="example_clinic",
        sessions=str(tmp_path / "export.csv"),
        outcomes=str(tmp_path / "ends.csv"),
        columns=export_names,
        attendance_codes={"ATT": c.ATTENDED, "CAN": c.CANCELLED, "DNA": c.NO_SHOW},
        status_codes={"planned": c.COMPLETED, "unilateral": c.DROPOUT, "open": c.ONGOING},
    )
    data = validate_tables(load_raw_tables(cfg, require_outcomes=True), cfg)
    assert data.quarantine.empty
    assert data.sessions[c.ATTENDANCE].tolist()[:3] == [c.ATTENDED, c.NO_SHOW, c.ATTENDED]
    assert data.outcomes is not None
    assert data.outcomes[c.STATUS].tolist() == [c.DROPOUT, c.ONGOING]
    assert not data.report["warnings"]


def test_missing_mapped_column_names_the_export_column(tmp_path):
    cfg = make_config(tmp_path, episode("a"), columns={c.SYMPTOM_SCORE: "PHQ9_total"})
    with pytest.raises(InputFileError) as err:
        load_raw_tables(cfg, require_outcomes=False)
    assert err.value.column == "PHQ9_total"
    assert "symptom_score" in str(err.value)


def test_identifiers_kept_exactly_and_neutralised_only_in_csv(tmp_path):
    ids = ['=HYPERLINK("x")', "Zoë-ünïcødé-診療", "0001", "x" * 300, "+41 79", "@home"]
    rows = [row for ident in ids for row in episode(ident, 2)]
    rows[1][c.SYMPTOM_SCORE] = "99"  # quarantine the formula-like client
    cfg = make_config(tmp_path, rows)
    out = tmp_path / "out"
    run_validation(cfg, out, require_outcomes=False)

    validated = pd.read_parquet(out / "sessions.parquet")
    assert set(validated[c.CLIENT_ID]) == set(ids[1:])  # byte for byte
    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert quarantine[c.CLIENT_ID].tolist() == ['\'=HYPERLINK("x")'] * 2


def test_extra_columns_warned_and_never_copied(tmp_path, caplog):
    rows = episode("a") + episode("b")
    for row in rows:
        row["diagnosis_notes"] = "confidential"
    rows[0][c.SYMPTOM_SCORE] = "99"
    cfg = make_config(tmp_path, [])
    write_csv(Path(cfg.sessions), rows)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="alliance_dropout"):
        data = run_validation(cfg, out, require_outcomes=False)
    assert any("diagnosis_notes" in w for w in data.report["warnings"])
    assert "diagnosis_notes" in caplog.text
    assert "diagnosis_notes" not in data.sessions.columns
    for path in out.iterdir():
        if path.suffix == ".parquet":
            assert "diagnosis_notes" not in pd.read_parquet(path).columns
        elif path.suffix == ".csv":
            assert "confidential" not in path.read_text(encoding="utf-8")


def test_outputs_written_and_report_holds_aggregates_only(tmp_path):
    rows = episode("secret-client-1") + episode("secret-client-2")
    rows[0][c.SYMPTOM_SCORE] = "77.5"
    outcomes = [{"client_id": "secret-client-2", "status": "dropout"}]
    cfg = make_config(tmp_path, rows, outcomes)
    out = tmp_path / "out"
    run_validation(cfg, out)
    names = {p.name for p in out.iterdir()}
    assert names == {
        "sessions.parquet",
        "outcomes.parquet",
        "quarantine.csv",
        "validation_report.json",
        "validation_summary.md",
    }
    report_text = (out / "validation_report.json").read_text(encoding="utf-8")
    summary_text = (out / "validation_summary.md").read_text(encoding="utf-8")
    for text in (report_text, summary_text):
        assert "secret-client" not in text
        assert "77.5" not in text
    report = json.loads(report_text)
    assert report["sources"]["sessions"]["sha256"] is not None
    assert len(report["sources"]["sessions"]["sha256"]) == 64
    assert "out_of_range_symptom_score" in summary_text


def test_clean_run_writes_header_only_quarantine(tmp_path):
    cfg = make_config(tmp_path, episode("a"), [{"client_id": "a", "status": "completed"}])
    out = tmp_path / "out"
    run_validation(cfg, out)
    quarantine = pd.read_csv(out / "quarantine.csv")
    assert quarantine.empty
    assert quarantine.columns[:7].tolist() == [
        "source_file",
        "table",
        "row_number",
        "client_id",
        "check",
        "reason",
        "column",
    ]


# --- quarantine limit --------------------------------------------------------------------------


def test_quarantine_limit_fails_and_leaves_output_dir_untouched(tmp_path):
    rows = [row for k in range(10) for row in episode(f"c{k}", 2)]
    rows[0][c.SYMPTOM_SCORE] = "30"  # 1 of 10 clients = 10 % > 5 %
    cfg = make_config(tmp_path, rows, max_quarantine_share=0.05)
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(QuarantineLimitExceeded) as err:
        run_validation(cfg, out, require_outcomes=False)
    message = str(err.value)
    assert "10.0%" in message and "5.0%" in message
    assert "sessions.out_of_range_symptom_score=1" in message
    assert "data.max_quarantine_share" in message
    assert [p.name for p in out.iterdir()] == ["previous.txt"]
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_quarantine_share_at_the_limit_passes(tmp_path):
    rows = [row for k in range(10) for row in episode(f"c{k}", 2)]
    rows[0][c.SYMPTOM_SCORE] = "30"
    data = validate(tmp_path, rows, max_quarantine_share=0.1)
    assert data.report["quarantine"]["share"] == pytest.approx(0.1)


# --- schemas reused by later stages --------------------------------------------------------------


def test_validated_sessions_satisfy_the_contract_schema(tmp_path):
    data = validate(tmp_path, episode("a") + episode("b"))
    schema = s.sessions_schema(DataConfig().symptom.to_scale(), DataConfig().alliance.to_scale())
    schema.validate(data.sessions)
    broken = data.sessions.copy()
    broken.loc[0, c.SYMPTOM_SCORE] = 30.0
    broken.loc[4, c.ATTENDANCE] = "late"
    found = s.failing_rows(schema, broken)
    assert sorted(zip(found["row"], found["check"], strict=True)) == [
        (0, "out_of_range_symptom_score"),
        (4, s.UNKNOWN_ATTENDANCE),
    ]


def test_outcome_and_client_schemas_name_their_failures():
    outcomes = pd.DataFrame({c.CLIENT_ID: ["a", "a", " "], c.STATUS: ["dropout", "x", None]})
    outcomes = outcomes.astype("str")
    found = s.failing_rows(s.outcomes_schema(), outcomes)
    assert set(zip(found["row"], found["check"], strict=True)) == {
        (0, s.DUPLICATE_CLIENT_ID),
        (1, s.DUPLICATE_CLIENT_ID),
        (1, s.UNKNOWN_STATUS),
        (2, "empty_client_id"),
        (2, "empty_status"),
    }
    clients = pd.DataFrame({c.CLIENT_ID: ["a", "b"], "age_band": ["18-25", None]}).astype("str")
    assert s.failing_rows(s.clients_schema(), clients).empty


def test_blank_identifier_check_knows_pythons_whitespace():
    """The fast blank-id check trims exactly what ``\\s`` matches (str.isspace)."""
    every = "".join(ch for ch in map(chr, range(sys.maxunicode + 1)) if ch.isspace())
    assert every == s.PY_WHITESPACE
    cells = ["a", " ", "", "\x1c", " \u3000x", "\u00a0", None, "\t\n", "x ", "\u200b", "\ufeff"]
    for dtype in ("str", object):
        values = pd.Series(cells, dtype=dtype)
        expected = [isinstance(v, str) and re.match(r"\s*\S", v) is not None for v in cells]
        assert s._has_text(values).tolist() == expected
