"""Loading: read a clinic export's files and check their structure (a problem stops the run)."""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout.config import DataConfig
from alliance_dropout.errors import InputFileError, PipelineError
from alliance_dropout.validation.tables import CLIENTS, OUTCOMES, SESSIONS, RawTables

log = logging.getLogger("alliance_dropout.validation")


def input_files(cfg: DataConfig) -> dict[str, str | None]:
    """The configured input files by their config key (for messages and output checks)."""
    return {
        "data.sessions": cfg.sessions,
        "data.outcomes": cfg.outcomes,
        "data.clients": cfg.clients,
    }


def load_raw_tables(cfg: DataConfig, *, require_outcomes: bool) -> RawTables:
    """Read the configured files and map their columns onto the contract's names.

    Raises InputFileError (file, column, problem) for an unreadable file or a missing required
    column. Extra columns are dropped with a warning; the clients table keeps all its columns.
    """
    if require_outcomes and not cfg.outcomes:
        raise PipelineError("data.outcomes is not set: this stage needs the outcomes file")
    configured = {SESSIONS: cfg.sessions, OUTCOMES: cfg.outcomes, CLIENTS: cfg.clients}
    sources = {table: str(path) for table, path in configured.items() if path}
    # Read every file before anything else so a broken file stops the run early.
    frames = {table: io.read_table(path) for table, path in sources.items()}
    raw = canonical_tables(frames, sources, cfg)
    raw.sha256 = {table: io.file_sha256(path) for table, path in sources.items()}
    return raw


def canonical_tables(
    frames: dict[str, pd.DataFrame], sources: dict[str, str], cfg: DataConfig
) -> RawTables:
    """The tables as read (by table name) under the contract's column names.

    Raises InputFileError for a missing required column (naming ``sources[table]``); warns
    about extra columns. The Spark engine calls it on each file's header too.
    """
    warnings: list[str] = []
    sessions = _canonical_columns(
        frames[SESSIONS],
        sources[SESSIONS],
        SESSIONS,
        c.SESSION_MANDATORY,
        c.ALLIANCE_SUBSCALES,
        cfg.columns,
        warnings,
    )
    outcomes = None
    if OUTCOMES in frames:
        outcomes = _canonical_columns(
            frames[OUTCOMES],
            sources[OUTCOMES],
            OUTCOMES,
            c.OUTCOME_COLUMNS,
            (),
            cfg.columns,
            warnings,
        )
    clients = None
    if CLIENTS in frames:
        clients = _canonical_columns(
            frames[CLIENTS],
            sources[CLIENTS],
            CLIENTS,
            (c.CLIENT_ID, *cfg.client_features, *cfg.audit_attributes),
            (),
            cfg.columns,
            warnings,
            keep_rest=True,
        )
    elif cfg.client_features or cfg.audit_attributes:
        warnings.append(
            "data.client_features/audit_attributes are set but no clients file is given"
        )
    for message in warnings:
        log.warning(message)
    return RawTables(sessions, outcomes, clients, sources, warnings=warnings)


def _columns_hint(missing: list[str], found: list[str]) -> str:
    """What the file has, the closest match per missing column, and how to map other names."""
    shown = ", ".join(repr(col) for col in found[:20]) + (" ..." if len(found) > 20 else "")
    guesses = []
    lowered = {f.lower(): f for f in found}
    for name in missing:
        close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
        if close:
            guesses.append(f"for '{name}' did you mean {lowered[close[0]]!r}?")
    hint = f"Columns found: {shown}."
    if guesses:
        hint += " " + "; ".join(guesses)
    return (
        hint + " An export with other column names needs a data-source config that maps them "
        "(data=<clinic>; copy conf/data/example_clinic.yaml)."
    )


def _canonical_columns(
    df: pd.DataFrame,
    path: str,
    table: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    mapping: dict[str, str],
    warnings: list[str],
    *,
    keep_rest: bool = False,
) -> pd.DataFrame:
    """Select and rename the table's columns; ``mapping`` is canonical name -> export name."""
    source = {col: mapping.get(col, col) for col in (*required, *optional)}
    missing = [col for col in required if source[col] not in df.columns]
    if missing:
        first = missing[0]
        mapped = f" (the contract's '{first}', via data.columns)" if source[first] != first else ""
        also = f"; also missing: {[source[m] for m in missing[1:]]}" if missing[1:] else ""
        raise InputFileError(
            path,
            f"required {table} column missing{mapped}{also}. "
            + _columns_hint([source[m] for m in missing], list(map(str, df.columns))),
            column=source[first],
        )
    present = [col for col in source if source[col] in df.columns]
    used = {source[col] for col in present}
    rest = [col for col in df.columns if col not in used]
    kept = [col for col in rest if col not in present] if keep_rest else []
    extra = [col for col in rest if col not in kept]
    if extra:
        warnings.append(
            f"{table} file {Path(path).name}: {len(extra)} extra column(s) ignored and not "
            f"copied to any output: {', '.join(map(str, extra))}"
        )
    out = df[[source[col] for col in present] + kept].set_axis([*present, *kept], axis=1)
    return out.reset_index(drop=True)
