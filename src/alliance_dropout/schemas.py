"""pandera schemas of the data contract, built from the configured rating scales.

``sessions_schema`` describes the *validated* sessions frame every downstream stage receives
(typed, canonical columns, scores in range). The validation stage runs the same schema on
pre-coerced data (see ``alliance_dropout.validation``) and turns pandera's failure cases into
the stable check names below with ``failing_rows``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from alliance_dropout import contract as c
from alliance_dropout.contract import Scale

# --- stable check names: quarantine.csv and validation_report.json use exactly these ---------
UNREADABLE = "unreadable_{column}"  # a cell that cannot be read as its column's type
OUT_OF_RANGE = "out_of_range_{column}"  # a score outside its scale (inf included)
EMPTY = "empty_{column}"  # a required cell that is missing or blank
INVALID_SESSION_NUMBER = "invalid_session_number"  # below 1, not whole, or too large
UNKNOWN_ATTENDANCE = "unknown_attendance"
UNKNOWN_STATUS = "unknown_status"
DUPLICATE_SESSION_NUMBER = "duplicate_session_number"
DATES_OUT_OF_ORDER = "session_date_out_of_order"
SCORE_ON_NON_ATTENDED = "score_on_non_attended_session"
DUPLICATE_CLIENT_ID = "duplicate_client_id"
CLIENT_WITHOUT_SESSIONS = "client_without_sessions"
# Not a failed check: the row is fine but another row of its client failed.
CLIENT_QUARANTINED = "client_quarantined"

# The largest session number read exactly (numbers are read as float64 before the int cast).
MAX_SESSION_NUMBER = 2**53 - 1

# Typed (non-text) session columns: their cells may be unreadable.
SESSION_TYPED = (c.SESSION_NUMBER, c.SESSION_DATE, *c.SESSION_SCORES)

SESSION_CHECKS: tuple[str, ...] = (
    *(EMPTY.format(column=col) for col in c.SESSION_REQUIRED),
    *(UNREADABLE.format(column=col) for col in SESSION_TYPED),
    INVALID_SESSION_NUMBER,
    UNKNOWN_ATTENDANCE,
    *(OUT_OF_RANGE.format(column=col) for col in c.SESSION_SCORES),
    DUPLICATE_SESSION_NUMBER,
    DATES_OUT_OF_ORDER,
    SCORE_ON_NON_ATTENDED,
)
OUTCOME_CHECKS: tuple[str, ...] = (
    EMPTY.format(column=c.CLIENT_ID),
    EMPTY.format(column=c.STATUS),
    UNKNOWN_STATUS,
    DUPLICATE_CLIENT_ID,
    CLIENT_WITHOUT_SESSIONS,
)
CLIENT_CHECKS: tuple[str, ...] = (
    EMPTY.format(column=c.CLIENT_ID),
    DUPLICATE_CLIENT_ID,
    CLIENT_WITHOUT_SESSIONS,
)

# The column a check is about, for quarantine.csv (per-column checks carry it in their name).
CHECK_COLUMN: dict[str, str] = {
    **{EMPTY.format(column=col): col for col in (*c.SESSION_REQUIRED, c.STATUS)},
    **{UNREADABLE.format(column=col): col for col in SESSION_TYPED},
    **{OUT_OF_RANGE.format(column=col): col for col in c.SESSION_SCORES},
    INVALID_SESSION_NUMBER: c.SESSION_NUMBER,
    UNKNOWN_ATTENDANCE: c.ATTENDANCE,
    UNKNOWN_STATUS: c.STATUS,
    DUPLICATE_SESSION_NUMBER: c.SESSION_NUMBER,
    DATES_OUT_OF_ORDER: c.SESSION_DATE,
    SCORE_ON_NON_ATTENDED: c.ATTENDANCE,
    DUPLICATE_CLIENT_ID: c.CLIENT_ID,
    CLIENT_WITHOUT_SESSIONS: c.CLIENT_ID,
}


# What ``\s`` matches in a str pattern: every character str.isspace() calls whitespace
# (tests/test_validation.py checks this list against Python's own).
PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _has_text(values: pd.Series) -> pd.Series:
    r"""True where a cell starts with a match of ``\s*\S`` (holds a non-blank character).

    That is: the cell is not empty once Python's whitespace is trimmed, which pyarrow does in
    one pass over text it holds; other columns are matched once per distinct value. (A regex
    per row was most of validation's time: an id column repeats a few thousand ids.)
    """
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        trimmed = pc.utf8_trim(pyarrow.array(values), characters=PY_WHITESPACE)
        has = pc.fill_null(pc.greater(pc.utf8_length(trimmed), 0), False)
        return pd.Series(has.to_numpy(zero_copy_only=False), index=values.index)
    codes, distinct = pd.factorize(values)
    has = pd.Series(distinct, dtype="str").str.match(r"\s*\S", na=False).to_numpy(dtype=bool)
    return pd.Series(np.append(has, False)[codes], index=values.index)  # code -1: missing


def _identifier(column: str, *, unique: bool = False) -> pa.Column:
    # Missing cells fail pandera's nullability check; blank ones fail the pattern.
    return pa.Column(
        str,
        nullable=False,
        unique=unique,
        checks=pa.Check(_has_text, title=EMPTY.format(column=column)),
    )


def _is_whole_number(s: pd.Series) -> pd.Series:
    values = s.to_numpy(dtype="float64")
    return pd.Series(np.isfinite(values) & (values == np.floor(values)), index=s.index)


def sorted_text_codes(values: pd.Series) -> np.ndarray | None:
    """Codes of text already in order (0 for the first value, +1 at each change), else None.

    Validated sessions and most exports come sorted by client: these are then the codes a
    sorted factorize gives, without hashing and sorting millions of strings (UTF-8 byte order
    is code point order, the order pandas sorts text in). None for text out of order, with a
    missing value, or not held by pyarrow.
    """
    if not isinstance(values.dtype, pd.StringDtype) or values.dtype.storage != "pyarrow":
        return None
    text = pyarrow.chunked_array(pyarrow.array(values))
    if text.null_count or len(text) < 2:
        return None
    earlier, later = text[:-1], text[1:]
    if pc.any(pc.less(later, earlier)).as_py():
        return None
    codes = np.zeros(len(text), dtype=np.intp)
    np.cumsum(pc.not_equal(later, earlier).to_numpy(zero_copy_only=False), out=codes[1:])
    return codes


def _client_codes(ids: pd.Series) -> np.ndarray:
    """Integer codes grouping rows by client (-1 where missing); any order of clients."""
    codes = sorted_text_codes(ids)
    return pd.factorize(ids)[0] if codes is None else codes


def _dates_in_session_order(df: pd.DataFrame) -> pd.Series:
    """False on a row dated before the previous session (by number) of the same client.

    Rows missing a client, number or date are never out of order. Clients are grouped by
    integer codes (any order of clients will do; within a client the stable sort keeps rows
    by number, then as given), which spares sorting millions of id strings.
    """
    client = _client_codes(df[c.CLIENT_ID])
    number = df[c.SESSION_NUMBER].to_numpy(dtype=np.float64, na_value=np.nan)
    date = df[c.SESSION_DATE].to_numpy()
    rows = np.flatnonzero((client >= 0) & ~np.isnan(number) & ~np.isnat(date))
    step_client, step_number = np.diff(client[rows]), np.diff(number[rows])
    in_order = np.all((step_client > 0) | ((step_client == 0) & (step_number >= 0)))
    # rows already by client and number (as validated sessions are): the stable sort is a no-op
    order = rows if in_order else rows[np.lexsort((number[rows], client[rows]))]
    earlier = np.zeros(len(df), dtype=bool)
    same_client = client[order[1:]] == client[order[:-1]]
    earlier[order[1:]] = same_client & (date[order[1:]] < date[order[:-1]])
    return pd.Series(~earlier, index=df.index)


def _unique_session_numbers(df: pd.DataFrame) -> pd.Series:
    """False on every row whose (client, session_number) another row has too.

    As ``duplicated(keep=False)`` (missing values equal each other); for rows already by
    client and number, where duplicates are neighbours, by comparing neighbours.
    """
    codes = sorted_text_codes(df[c.CLIENT_ID])
    number = df[c.SESSION_NUMBER].to_numpy(dtype=np.float64, na_value=np.nan)
    if codes is not None and not np.isnan(number).any():
        step_client, step_number = np.diff(codes), np.diff(number)
        if np.all((step_client > 0) | ((step_client == 0) & (step_number >= 0))):
            repeat = (step_client == 0) & (step_number == 0)
            duplicated = np.zeros(len(df), dtype=bool)
            duplicated[1:] |= repeat
            duplicated[:-1] |= repeat
            return pd.Series(~duplicated, index=df.index)
    return ~df[[c.CLIENT_ID, c.SESSION_NUMBER]].duplicated(keep=False)


def _scores_only_when_attended(df: pd.DataFrame) -> pd.Series:
    """False on a cancelled or no-show row that carries any score."""
    scored = np.zeros(len(df), dtype=bool)
    for col in (col for col in c.SESSION_SCORES if col in df.columns):
        scored |= df[col].notna().to_numpy()
    not_attended = df[c.ATTENDANCE].isin([c.CANCELLED, c.NO_SHOW]).to_numpy()
    return pd.Series(~(not_attended & scored), index=df.index)


def sessions_schema(symptom: Scale, alliance: Scale) -> pa.DataFrameSchema:
    """Schema of the validated sessions frame (all 11 canonical columns, typed)."""
    scales = {col: alliance for col in c.SESSION_SCORES} | {c.SYMPTOM_SCORE: symptom}
    scores = {
        col: pa.Column(
            float,
            nullable=True,
            checks=pa.Check.in_range(scale.min, scale.max, title=OUT_OF_RANGE.format(column=col)),
        )
        for col, scale in scales.items()
    }
    columns = {
        c.CLIENT_ID: _identifier(c.CLIENT_ID),
        c.THERAPIST_ID: _identifier(c.THERAPIST_ID),
        c.SESSION_NUMBER: pa.Column(
            "int64",
            checks=[
                pa.Check.ge(1, title=INVALID_SESSION_NUMBER),
                pa.Check(_is_whole_number, title=INVALID_SESSION_NUMBER),
                # beyond this, float64 cannot hold the number and int64 may overflow
                pa.Check.le(MAX_SESSION_NUMBER, title=INVALID_SESSION_NUMBER),
            ],
        ),
        c.SESSION_DATE: pa.Column(pa.Timestamp),
        c.ATTENDANCE: pa.Column(
            str, checks=pa.Check.isin(list(c.ATTENDANCE_VALUES), title=UNKNOWN_ATTENDANCE)
        ),
        **scores,
    }
    return pa.DataFrameSchema(
        columns,
        checks=[
            # ignore_na=False: otherwise pandera passes rows with any missing cell
            pa.Check(_dates_in_session_order, name=DATES_OUT_OF_ORDER, ignore_na=False),
            pa.Check(_scores_only_when_attended, name=SCORE_ON_NON_ATTENDED, ignore_na=False),
            # unique (client, session_number); pandera's own unique= hashes every id string
            pa.Check(_unique_session_numbers, name=DUPLICATE_SESSION_NUMBER, ignore_na=False),
        ],
        strict=True,
        name="sessions",
    )


def outcomes_schema() -> pa.DataFrameSchema:
    """Schema of the validated outcomes frame: one row per episode, a known status."""
    return pa.DataFrameSchema(
        {
            c.CLIENT_ID: _identifier(c.CLIENT_ID, unique=True),
            c.STATUS: pa.Column(
                str, checks=pa.Check.isin(list(c.STATUS_VALUES), title=UNKNOWN_STATUS)
            ),
        },
        strict=True,
        report_duplicates="all",
        name="outcomes",
    )


def clients_schema() -> pa.DataFrameSchema:
    """Schema of the clients table: a unique client_id plus any baseline columns."""
    return pa.DataFrameSchema(
        {c.CLIENT_ID: _identifier(c.CLIENT_ID, unique=True)},
        strict=False,
        report_duplicates="all",
        name="clients",
    )


def _stable_name(
    schema: pa.DataFrameSchema, context: str, column: str, check: str, number: Any
) -> str:
    """Stable check name of one pandera failure kind (``number``: index of the check)."""
    if check == "not_nullable":
        return EMPTY.format(column=column)
    if check == "field_uniqueness":
        return DUPLICATE_CLIENT_ID if column == c.CLIENT_ID else f"duplicate_{column}"
    if check == "multiple_fields_uniqueness":
        return DUPLICATE_SESSION_NUMBER
    has_number = number is not None and not pd.isna(number)
    if context == "Column" and has_number:
        found = schema.columns[column].checks[int(number)]
        return str(found.title or found.name)
    if context == "DataFrameSchema" and has_number:
        return str(schema.checks[int(number)].name)
    # dtype, missing column, ...: the caller passed a frame that was not prepared for the
    # schema; that is a bug, not bad input.
    raise TypeError(f"{schema.name}: column '{column}' failed '{check}' (frame not prepared)")


def failing_rows(schema: pa.DataFrameSchema, df: pd.DataFrame) -> pd.DataFrame:
    """Every (row label, stable check name) pair that fails ``schema`` on ``df``.

    Columns ``row`` and ``check``, one line per failing row and check (no duplicates).
    Raises TypeError when a failure is not tied to a row (wrong dtype, missing column).
    """
    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return pd.DataFrame({"row": pd.Series([], dtype=df.index.dtype), "check": []})
    keys = ["schema_context", "column", "check", "check_number"]
    # Few distinct failure kinds, many failing rows: name each kind once, then join.
    kinds = cases[keys].drop_duplicates()
    kinds["name"] = [_stable_name(schema, *kind) for kind in kinds.itertuples(index=False)]
    named = cases.merge(kinds, on=keys, how="left")
    if named["index"].isna().any():
        raise TypeError(f"{schema.name}: failure not tied to a row: {named['check'].iloc[0]}")
    out = pd.DataFrame({"row": named["index"].astype(df.index.dtype), "check": named["name"]})
    return out.drop_duplicates(ignore_index=True)
