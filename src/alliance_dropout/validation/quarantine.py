"""The quarantine table: every quarantined row as given, with the check that failed and why."""

from __future__ import annotations

import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout import schemas as s
from alliance_dropout.validation.checks import as_text
from alliance_dropout.validation.tables import (
    CLIENTS,
    QUARANTINE_META,
    TABLE_CHECKS,
    CheckedTable,
)


def _quarantine_rows(t: CheckedTable, source: str, client_checks: pd.Series) -> pd.DataFrame:
    assert t.quarantined is not None and t.direct is not None
    rank = {name: i for i, name in enumerate(TABLE_CHECKS[t.name])}
    failures = t.failures.drop_duplicates().assign(rank=t.failures["check"].map(rank))
    failures = failures.sort_values(["row", "rank"], kind="stable")
    first = failures.drop_duplicates("row").set_index("row")["check"]
    every = failures.groupby("row")["check"].agg("; ".join)
    rows = t.raw.index[t.quarantined.to_numpy()]
    direct = t.direct.loc[rows].to_numpy()
    check = first.reindex(rows).where(direct, s.CLIENT_QUARANTINED)
    failed_elsewhere = t.keys.loc[rows].map(client_checks).astype("str")
    other = "another row of this client failed: " + failed_elsewhere
    given = t.raw.loc[rows].apply(as_text)
    meta = pd.DataFrame(
        {
            "source_file": source,
            "table": t.name,
            "row_number": rows + 1,  # 1-based data row in the file (the header is row 0)
            c.CLIENT_ID: given[c.CLIENT_ID],
            "check": check,
            "reason": every.reindex(rows).where(direct, other),
            "column": check.map(s.CHECK_COLUMN),
        },
        index=rows,
    )
    return pd.concat([meta, given.drop(columns=c.CLIENT_ID)], axis=1)


def quarantine_frame(
    tables: dict[str, CheckedTable], sources: dict[str, str], client_checks: pd.Series
) -> pd.DataFrame:
    """Quarantined rows of every table, with the failed check, its reason and its column."""
    columns = [*QUARANTINE_META, *c.SESSION_COLUMNS[1:], c.STATUS]
    parts = [_quarantine_rows(t, sources[t.name], client_checks) for t in tables.values()]
    if CLIENTS in tables:
        # Baseline columns that clash with a quarantine column keep a table prefix.
        clash = {col: f"clients_{col}" for col in tables[CLIENTS].raw.columns if col in columns}
        clash.pop(c.CLIENT_ID, None)
        parts[-1] = parts[-1].rename(columns=clash)
        columns += [col for col in parts[-1].columns if col not in columns]
    if not any(len(part) for part in parts):
        return pd.DataFrame({col: pd.Series(dtype="str") for col in columns})
    return pd.concat(parts, ignore_index=True).reindex(columns=columns)
