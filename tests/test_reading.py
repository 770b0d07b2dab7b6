"""Issue 16 (1): dates are naive datetime64 whatever the source, converted once at read, and
the fast CSV reader gives what pandas' reader gives (or hands the file to it).

The Parquet date kinds against a CSV are also in tests/test_hardening.py (section 8); the same
at scale, on a messy caseload, is in tests/test_reference_outputs.py.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout.config import DataConfig
from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.errors import InputFileError
from alliance_dropout.features.builder import build_features
from alliance_dropout.validation import load_raw_tables, validate_tables
from tests.test_hardening import episode, write_sessions


def pandas_reads(path: Path) -> pd.DataFrame:
    """The reading the contract describes, as pandas does it (the reference semantics)."""
    frame = pd.read_csv(
        path,
        dtype=str,
        encoding="utf-8-sig",
        keep_default_na=False,
        na_values=list(c.NA_VALUES),
        skip_blank_lines=True,
    )
    frame.columns = [str(col).strip() for col in frame.columns]
    return frame


TRICKY_CSV = {
    "byte-order mark, CRLF": "\ufeffa,b\r\n1,x\r\n2,y\r\n",
    "quoted line breaks and quotes": 'a,b\n"line\nbreak","say ""hi"""\n"cr\rinside",2\n',
    "NA spellings, quoted too": 'a,b,c\nNA,"null",\nnan,NaN,"NA"\n"",x, \n',
    "blank lines": "a,b\n\n1,2\n\n\n3,4\n",
    "identifiers kept as given": "a,b\n007, padded \n1.50,+3\n",
    "unicode": "a,b\nZoë,名前\n𝔘,x\n",
    "repeated name (pandas renames it)": "a,a,b\n1,2,3\n",
    "blank name (pandas: Unnamed)": "a,,b\n1,2,3\n",
    "names with spaces": " a ,b \n1,2\n",
    "short row (pandas fills it)": "a,b,c\n1,2\n3,4,5\n",
    "quoted header": '"a","b"\n1,2\n',
    "lone carriage returns": "a,b\r1,2\r3,4\r",
}


@pytest.mark.parametrize("name", list(TRICKY_CSV))
def test_csv_cells_read_as_pandas_reads_them(tmp_path, name):
    path = tmp_path / "s.csv"
    path.write_bytes(TRICKY_CSV[name].encode("utf-8"))
    pd.testing.assert_frame_equal(io.read_table(path), pandas_reads(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a,b\n1,2\n3,4,5\n", "not a readable CSV file"),
        (b"a,b\n1,\xff\n", "not UTF-8 text (bad byte at offset 6)"),
        (b"a,b\n", "header but no data rows"),
        (b"\n\n", "no header row"),
    ],
)
def test_unreadable_csv_files_give_the_same_one_line_errors(tmp_path, content, message):
    path = tmp_path / "s.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=re.escape(message)):
        io.read_table(path)


def test_a_large_export_reads_the_same_through_both_readers(tmp_path):
    rows = [row for k in range(400) for row in episode(f"c{k}", 12)]
    rows[5][c.ALLIANCE_CLIENT] = "NA"
    rows[9][c.THERAPIST_ID] = "new\nline"
    path = write_sessions(tmp_path / "s.csv", rows)
    pd.testing.assert_frame_equal(io.read_table(path), pandas_reads(path))


def _validated(path: Path):
    cfg = DataConfig(sessions=str(path), max_quarantine_share=1.0)
    return validate_tables(load_raw_tables(cfg, require_outcomes=False), cfg)


def test_time_zones_keep_the_local_calendar_day(tmp_path):
    """A timestamp with a zone (Parquet) or an offset (ISO text) is its local wall-clock time:
    a session at 00:30 in Berlin is on that day, not on the day before as UTC would have it."""
    rows = episode("a", 3)
    local = ["2024-01-01 00:30:00", "2024-01-08 23:45:00", "2024-07-15 00:10:00"]
    naive = write_sessions(
        tmp_path / "naive.csv",
        [{**r, c.SESSION_DATE: d} for r, d in zip(rows, local, strict=True)],
    )
    offsets = ["2024-01-01T00:30:00+01:00", "2024-01-08T23:45:00+0100", "2024-07-15T00:10:00+02:00"]
    with_offsets = write_sessions(
        tmp_path / "offsets.csv",
        [{**r, c.SESSION_DATE: d} for r, d in zip(rows, offsets, strict=True)],
    )
    winter = [d.replace("+02:00", "+01:00") for d in offsets]
    one_offset = write_sessions(
        tmp_path / "one_offset.csv",
        [{**r, c.SESSION_DATE: d} for r, d in zip(rows, winter, strict=True)],
    )
    frame = pd.DataFrame(rows, columns=list(c.SESSION_MANDATORY))
    stamps = pd.to_datetime(pd.Series(local)).dt.tz_localize("Europe/Berlin")
    table = pa.table(
        {
            **{col: pa.array(frame[col].astype(str)) for col in (c.CLIENT_ID, c.THERAPIST_ID)},
            c.SESSION_NUMBER: pa.array(frame[c.SESSION_NUMBER].astype("int64")),
            c.SESSION_DATE: pa.array(stamps, pa.timestamp("ms", tz="Europe/Berlin")),
            c.ATTENDANCE: pa.array(frame[c.ATTENDANCE].tolist()),
            **{
                col: pa.array(frame[col].astype(float))
                for col in (c.ALLIANCE_CLIENT, c.ALLIANCE_THERAPIST, c.SYMPTOM_SCORE)
            },
        }
    )
    zoned = tmp_path / "zoned.parquet"
    pq.write_table(table, zoned)

    raw = io.read_table(zoned)
    assert raw[c.SESSION_DATE].dtype == "datetime64[us]"
    expected = pd.Series(pd.to_datetime(local), name=c.SESSION_DATE).astype("datetime64[us]")
    pd.testing.assert_series_equal(raw[c.SESSION_DATE], expected)
    for path in (naive, with_offsets, zoned):
        pd.testing.assert_series_equal(_validated(path).sessions[c.SESSION_DATE], expected)
    # one offset for every row: the same rule
    local_one = pd.Series(pd.to_datetime([local[0], local[1], "2024-07-15 00:10:00"]))
    pd.testing.assert_series_equal(
        _validated(one_offset).sessions[c.SESSION_DATE],
        local_one.astype("datetime64[us]").rename(c.SESSION_DATE),
    )


def test_unreadable_dates_still_name_file_column_and_check(tmp_path):
    rows = episode("a", 3) + episode("b", 3)
    rows[1][c.SESSION_DATE] = "2024-02-30"
    rows[4][c.SESSION_DATE] = "soon"
    path = write_sessions(tmp_path / "s.csv", rows)
    validated = _validated(path)
    q = validated.quarantine.set_index("row_number")
    for row in (2, 5):
        assert q.loc[row, "check"] == "unreadable_session_date"
        assert q.loc[row, "column"] == c.SESSION_DATE
        assert q.loc[row, "source_file"] == str(path)
    assert validated.report["checks"]["sessions.unreadable_session_date"] == 2


def test_a_date32_parquet_file_and_a_csv_of_the_same_rows_give_identical_features(tmp_path):
    from tests import reference_outputs as ref

    _, _, validated = ref.validated_export(tmp_path)
    features = ref.same_rows_two_formats(validated.sessions, tmp_path)
    assert len(features["csv"]) > 2500
    pd.testing.assert_frame_equal(features["date32_parquet"], features["csv"])
    pd.testing.assert_frame_equal(features["date32_parquet_as_read"], features["csv"])
    scales = (c.PHQ9, c.WAI_SR)
    assert (
        build_features(validated.sessions, FeaturesConfig(), *scales)["landmark_date"].dtype
        == "datetime64[us]"
    )


def test_dates_of_every_kind_become_datetime64_at_read(tmp_path):
    day = dt.date(2024, 3, 4)
    for kind, array in {
        "date32": pa.array([day], pa.date32()),
        "date64": pa.array([day], pa.date64()),
        "timestamp[s]": pa.array([dt.datetime(2024, 3, 4)], pa.timestamp("s")),
        "timestamp[ns, UTC]": pa.array([dt.datetime(2024, 3, 4)], pa.timestamp("ns", tz="UTC")),
    }.items():
        path = tmp_path / f"{kind}.parquet"
        pq.write_table(pa.table({"d": array}), path)
        assert io.read_table(path)["d"].dtype == "datetime64[us]", kind
