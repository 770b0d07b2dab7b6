"""Typing cells and running every row-level check; a failing row quarantines its client."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout import schemas as s
from alliance_dropout.config import DataConfig
from alliance_dropout.validation.tables import (
    CLIENTS,
    OUTCOMES,
    SESSIONS,
    TABLE_CHECKS,
    CheckedTable,
    RawTables,
)

# --- typing cells --------------------------------------------------------------------------------


def as_text(values: pd.Series) -> pd.Series:
    """Cells as text exactly as given; whole-number floats (Parquet ids with gaps) lose '.0'."""
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        exact = np.isfinite(finite).all() and (finite.abs() <= s.MAX_SESSION_NUMBER).all()
        if exact and (finite % 1 == 0).all():
            values = values.astype("Int64")
    return values.astype("str")


def _text(values: pd.Series) -> pd.Series:
    """Identifier or code column as text; the contract's NA spellings are missing (Parquet too)."""
    text = as_text(values)
    return text.mask(text.isin(c.NA_VALUES))


def client_keys(ids: pd.Series) -> pd.Series:
    """Client id as text, or NA where it is missing or blank (such rows belong to no client)."""
    text = _text(ids)
    return text.mask(text.str.strip().fillna("") == "")


def _read_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Float values, and a mask of cells that hold something that is not a number.

    Text (a CSV's cells) is read once per distinct value: scores repeat a few dozen values.
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64"), pd.Series(False, index=values.index)
    if not isinstance(values.dtype, pd.StringDtype):
        return _text_to_numbers(values)  # objects: 1, 1.0 and True hash alike, read each
    codes, distinct = pd.factorize(values)  # missing cells: code -1
    numbers, unreadable = _text_to_numbers(pd.Series(distinct, dtype=values.dtype))
    taken = np.append(numbers.to_numpy(), np.nan)[codes]
    bad = np.append(unreadable.to_numpy(), False)[codes]
    return pd.Series(taken, index=values.index), pd.Series(bad, index=values.index)


def _text_to_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = as_text(values).str.strip()
    text = text.mask(text.isin(c.NA_VALUES))
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    return numbers, text.notna() & numbers.isna()


def _failures(mask: pd.Series, check: str) -> pd.DataFrame:
    return pd.DataFrame({"row": mask.index[mask.to_numpy()], "check": check})


def _typed_sessions(
    raw: pd.DataFrame, attendance_codes: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical typed sessions (session_number still float) and the unreadable cells."""
    typed: dict[str, pd.Series] = {
        c.CLIENT_ID: _text(raw[c.CLIENT_ID]),
        c.THERAPIST_ID: _text(raw[c.THERAPIST_ID]),
        c.ATTENDANCE: _text(raw[c.ATTENDANCE]).replace(attendance_codes),
    }
    unreadable = []
    typed[c.SESSION_DATE], bad = io.to_datetime64(raw[c.SESSION_DATE])
    unreadable.append(_failures(bad, s.UNREADABLE.format(column=c.SESSION_DATE)))
    for col in (c.SESSION_NUMBER, *c.SESSION_SCORES):
        column = raw[col] if col in raw else pd.Series(np.nan, index=raw.index)
        typed[col], bad = _read_numbers(column)
        unreadable.append(_failures(bad, s.UNREADABLE.format(column=col)))
    frame = pd.DataFrame(typed, index=raw.index)[list(c.SESSION_COLUMNS)]
    return frame, pd.concat(unreadable, ignore_index=True)


def typed_sessions(
    raw: pd.DataFrame, attendance_codes: dict[str, str] | None = None
) -> pd.DataFrame:
    """Session cells typed as validation types them, without the row checks (an unreadable
    cell is missing): what the feature builder reads, for the benchmarks."""
    return _typed_sessions(raw, attendance_codes or {})[0]


# --- checks --------------------------------------------------------------------------------------


def _session_failures(
    typed: pd.DataFrame, unreadable: pd.DataFrame, cfg: DataConfig
) -> pd.DataFrame:
    schema = s.sessions_schema(cfg.symptom.to_scale(), cfg.alliance.to_scale())
    # session_number stays float until checked: a failed int cast would hide other failures.
    schema = schema.update_column(c.SESSION_NUMBER, dtype="float64")
    found = s.failing_rows(schema, typed)
    rows = found["row"].to_numpy()
    # An unreadable cell is counted once, as unreadable, not again as an empty required cell.
    echo = np.zeros(len(found), dtype=bool)
    for col in (c.SESSION_NUMBER, c.SESSION_DATE):
        unreadable_rows = unreadable.loc[unreadable["check"] == s.UNREADABLE.format(column=col)]
        is_empty_check = (found["check"] == s.EMPTY.format(column=col)).to_numpy()
        echo |= is_empty_check & np.isin(rows, unreadable_rows["row"])
    # Rows without a client_id or session_number are not each other's duplicates.
    unkeyed = typed.index[typed[c.SESSION_NUMBER].isna() | typed[c.CLIENT_ID].isna()]
    no_key = (found["check"] == s.DUPLICATE_SESSION_NUMBER).to_numpy() & np.isin(rows, unkeyed)
    return pd.concat([unreadable, found[~(echo | no_key)]], ignore_index=True)


def _orphans(keys: pd.Series, session_keys: pd.Index) -> pd.DataFrame:
    return _failures(keys.notna() & ~keys.isin(session_keys), s.CLIENT_WITHOUT_SESSIONS)


def checked_tables(raw: RawTables, cfg: DataConfig) -> dict[str, CheckedTable]:
    """Every table typed and checked (failures listed per row; nothing quarantined yet)."""
    typed, unreadable = _typed_sessions(raw.sessions, cfg.attendance_codes)
    keys = client_keys(raw.sessions[c.CLIENT_ID])
    tables = {
        SESSIONS: CheckedTable(
            SESSIONS, raw.sessions, typed, keys, _session_failures(typed, unreadable, cfg)
        )
    }
    session_keys = pd.Index(keys.dropna().unique())
    if raw.outcomes is not None:
        outcomes = pd.DataFrame(
            {
                c.CLIENT_ID: _text(raw.outcomes[c.CLIENT_ID]),
                c.STATUS: _text(raw.outcomes[c.STATUS]).replace(cfg.status_codes),
            }
        )
        keys = client_keys(raw.outcomes[c.CLIENT_ID])
        found = s.failing_rows(s.outcomes_schema(), outcomes)
        failures = pd.concat([found, _orphans(keys, session_keys)], ignore_index=True)
        tables[OUTCOMES] = CheckedTable(OUTCOMES, raw.outcomes, outcomes, keys, failures)
    if raw.clients is not None:
        clients = raw.clients.assign(**{c.CLIENT_ID: _text(raw.clients[c.CLIENT_ID])})
        keys = client_keys(raw.clients[c.CLIENT_ID])
        found = s.failing_rows(s.clients_schema(), clients)
        failures = pd.concat([found, _orphans(keys, session_keys)], ignore_index=True)
        tables[CLIENTS] = CheckedTable(CLIENTS, raw.clients, clients, keys, failures)
    for table in tables.values():
        unexpected = set(table.failures["check"]) - set(TABLE_CHECKS[table.name])
        assert not unexpected, f"{table.name}: checks missing from the catalogue: {unexpected}"
    return tables


def quarantine_clients(tables: dict[str, CheckedTable]) -> pd.Series:
    """Mark every row of a client with any failed row; returns each client's failed checks
    (client key -> "check, check", sorted)."""
    failed = pd.concat(
        [
            pd.DataFrame(
                {
                    "key": t.keys.loc[t.failures["row"]].to_numpy(),
                    "check": t.failures["check"].to_numpy(),
                }
            )
            for t in tables.values()
        ],
        ignore_index=True,
    ).dropna()
    for t in tables.values():
        t.direct = pd.Series(t.raw.index.isin(t.failures["row"]), index=t.raw.index)
        t.quarantined = t.direct | t.keys.isin(failed["key"])
    checks = failed.drop_duplicates().sort_values(["key", "check"])
    return checks.groupby("key")["check"].agg(", ".join).astype(object)
