"""The tables through validation: names, check catalogues, raw and checked tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout import schemas as s

SESSIONS, OUTCOMES, CLIENTS = "sessions", "outcomes", "clients"
TABLE_CHECKS = {SESSIONS: s.SESSION_CHECKS, OUTCOMES: s.OUTCOME_CHECKS, CLIENTS: s.CLIENT_CHECKS}
QUARANTINE_META = ("source_file", "table", "row_number", c.CLIENT_ID, "check", "reason", "column")


@dataclass
class RawTables:
    """The export's tables under canonical column names, cells as read (CSV: text)."""

    sessions: pd.DataFrame
    outcomes: pd.DataFrame | None
    clients: pd.DataFrame | None
    sources: dict[str, str]  # table name -> file path
    sha256: dict[str, str] = field(default_factory=dict)  # table name -> file digest
    warnings: list[str] = field(default_factory=list)  # structural warnings (extra columns)


@dataclass
class CheckedTable:
    """One table through validation: raw cells, typed frame, client keys and failures."""

    name: str
    raw: pd.DataFrame
    typed: pd.DataFrame
    keys: pd.Series
    failures: pd.DataFrame  # columns row, check (a row may fail several checks)
    quarantined: pd.Series | None = None
    direct: pd.Series | None = None
