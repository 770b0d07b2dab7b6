"""Validation stage: read a clinic export, check it against the contract, quarantine bad clients.

``load_raw_tables`` reads the files and checks their structure (a structural problem stops the
run). ``validate_tables`` is pure: it types the cells, runs every row-level check, and moves
every row of an affected client (sessions, outcome and clients rows) to the quarantine.
``run_validation`` writes the validated tables, the quarantine and the report, all or nothing.
The report holds aggregates only (no raw values, no client ids): it is logged to MLflow.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout import schemas as s
from alliance_dropout.config import DataConfig
from alliance_dropout.errors import InputFileError, PipelineError, QuarantineLimitExceeded

log = logging.getLogger(__name__)

SESSIONS, OUTCOMES, CLIENTS = "sessions", "outcomes", "clients"
TABLE_CHECKS = {SESSIONS: s.SESSION_CHECKS, OUTCOMES: s.OUTCOME_CHECKS, CLIENTS: s.CLIENT_CHECKS}
QUARANTINE_META = ("source_file", "table", "row_number", c.CLIENT_ID, "check", "reason", "column")
OUTPUT_FILES = {
    SESSIONS: "sessions.parquet",
    OUTCOMES: "outcomes.parquet",
    CLIENTS: "clients.parquet",
    "quarantine": "quarantine.csv",
    "report": "validation_report.json",
    "summary": "validation_summary.md",
}


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
class ValidatedData:
    """Validated, typed tables plus the quarantined rows (as given) and the aggregate report."""

    sessions: pd.DataFrame
    outcomes: pd.DataFrame | None
    clients: pd.DataFrame | None
    quarantine: pd.DataFrame
    report: dict[str, Any]


# --- loading: files and their structure ---------------------------------------------------------


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
    return RawTables(
        sessions,
        outcomes,
        clients,
        sources,
        sha256={table: _sha256(path) for table, path in sources.items()},
        warnings=warnings,
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
            path, f"required {table} column missing{mapped}{also}", column=source[first]
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


def _sha256(path: str) -> str:
    # TODO(lead): belongs in io.py (the only module that reads files); kept here until then.
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# --- typing cells --------------------------------------------------------------------------------


def _as_text(values: pd.Series) -> pd.Series:
    """Cells as text exactly as given; whole-number floats (Parquet ids with gaps) lose '.0'."""
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if np.isfinite(finite).all() and (finite % 1 == 0).all():
            values = values.astype("Int64")
    return values.astype("str")


def _text(values: pd.Series) -> pd.Series:
    """Identifier or code column as text; the contract's NA spellings are missing (Parquet too)."""
    text = _as_text(values)
    return text.mask(text.isin(c.NA_VALUES))


def _cells_to_parse(values: pd.Series) -> pd.Series:
    text = _as_text(values).str.strip()
    return text.mask(text.isin(c.NA_VALUES))


def _read_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Float values, and a mask of cells that hold something that is not a number."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64"), pd.Series(False, index=values.index)
    text = _cells_to_parse(values)
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    return numbers, text.notna() & numbers.isna()


def _parse_iso_dates(text: pd.Series) -> pd.Series:
    try:
        dates = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except ValueError:  # mixed UTC offsets: compare them on one clock
        dates = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_convert(None)
    return dates


def _read_dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Naive datetime64[us] values, and a mask of cells that are not ISO 8601 dates."""
    if pd.api.types.is_datetime64_any_dtype(values):
        dates, unreadable = values, pd.Series(False, index=values.index)
        if isinstance(dates.dtype, pd.DatetimeTZDtype):
            dates = dates.dt.tz_convert(None)
    else:
        text = _cells_to_parse(values)
        dates = _parse_iso_dates(text)
        unreadable = text.notna() & dates.isna()
    return dates.astype("datetime64[us]"), unreadable


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
    typed[c.SESSION_DATE], bad = _read_dates(raw[c.SESSION_DATE])
    unreadable.append(_failures(bad, s.UNREADABLE.format(column=c.SESSION_DATE)))
    for col in (c.SESSION_NUMBER, *c.SESSION_SCORES):
        column = raw[col] if col in raw else pd.Series(np.nan, index=raw.index)
        typed[col], bad = _read_numbers(column)
        unreadable.append(_failures(bad, s.UNREADABLE.format(column=col)))
    frame = pd.DataFrame(typed, index=raw.index)[list(c.SESSION_COLUMNS)]
    return frame, pd.concat(unreadable, ignore_index=True)


def _client_keys(ids: pd.Series) -> pd.Series:
    """Client id, or NA where it is missing or blank (such rows belong to no client)."""
    return ids.mask(ids.str.strip().fillna("") == "")


# --- checks ------------------------------------------------------------------------------------


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


@dataclass
class _Table:
    """One table through validation: raw cells, typed frame, client keys and failures."""

    name: str
    raw: pd.DataFrame
    typed: pd.DataFrame
    keys: pd.Series
    failures: pd.DataFrame  # columns row, check (a row may fail several checks)
    quarantined: pd.Series | None = None
    direct: pd.Series | None = None


def _checked_tables(raw: RawTables, cfg: DataConfig) -> dict[str, _Table]:
    typed, unreadable = _typed_sessions(raw.sessions, cfg.attendance_codes)
    keys = _client_keys(typed[c.CLIENT_ID])
    tables = {
        SESSIONS: _Table(
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
        keys = _client_keys(outcomes[c.CLIENT_ID])
        found = s.failing_rows(s.outcomes_schema(), outcomes)
        failures = pd.concat([found, _orphans(keys, session_keys)], ignore_index=True)
        tables[OUTCOMES] = _Table(OUTCOMES, raw.outcomes, outcomes, keys, failures)
    if raw.clients is not None:
        clients = raw.clients.assign(**{c.CLIENT_ID: _text(raw.clients[c.CLIENT_ID])})
        keys = _client_keys(clients[c.CLIENT_ID])
        found = s.failing_rows(s.clients_schema(), clients)
        failures = pd.concat([found, _orphans(keys, session_keys)], ignore_index=True)
        tables[CLIENTS] = _Table(CLIENTS, raw.clients, clients, keys, failures)
    for table in tables.values():
        unexpected = set(table.failures["check"]) - set(TABLE_CHECKS[table.name])
        assert not unexpected, f"{table.name}: checks missing from the catalogue: {unexpected}"
    return tables


def _quarantine_clients(tables: dict[str, _Table]) -> pd.Series:
    """Mark every row of a client with any failed row; returns each client's failed checks."""
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
    return checks.groupby("key")["check"].agg(", ".join)


# --- quarantine file -----------------------------------------------------------------------------


def _quarantine_rows(t: _Table, source: str, client_checks: pd.Series) -> pd.DataFrame:
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
    given = t.raw.loc[rows].apply(_as_text)
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


def _quarantine_frame(
    tables: dict[str, _Table], sources: dict[str, str], client_checks: pd.Series
) -> pd.DataFrame:
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


# --- report -------------------------------------------------------------------------------------


def _table_counts(t: _Table) -> dict[str, int]:
    assert t.quarantined is not None
    q = t.quarantined
    counts = {
        "rows_in": len(t.raw),
        "rows_validated": int((~q).sum()),
        "rows_quarantined": int(q.sum()),
        # rows without a client id count as one unidentified client
        "clients_in": int(t.keys.nunique(dropna=False)),
        "clients_validated": int(t.keys[~q].nunique()),
        "clients_quarantined": int(t.keys[q].nunique(dropna=False)),
    }
    assert counts["rows_in"] == counts["rows_validated"] + counts["rows_quarantined"], counts
    assert counts["clients_in"] == counts["clients_validated"] + counts["clients_quarantined"]
    return counts


def _check_counts(t: _Table) -> dict[str, int]:
    assert t.quarantined is not None and t.direct is not None
    failed = t.failures.drop_duplicates().groupby("check").size()
    counts = {name: int(failed.get(name, 0)) for name in TABLE_CHECKS[t.name]}
    counts[s.CLIENT_QUARANTINED] = int((t.quarantined & ~t.direct).sum())
    return counts


def _scale_facts(scale: Any) -> dict[str, Any]:
    return {"name": scale.name, "min": scale.min, "max": scale.max}


def _build_report(tables: dict[str, _Table], raw: RawTables, cfg: DataConfig) -> dict[str, Any]:
    counts = {name: _table_counts(t) for name, t in tables.items()}
    sessions = counts[SESSIONS]
    return {
        "tables": {name: counts.get(name) for name in TABLE_CHECKS},
        # flat "<table>.<check>" keys: simple to log as metrics and to read
        "checks": {
            f"{name}.{check}": n
            for name, t in tables.items()
            for check, n in _check_counts(t).items()
        },
        "quarantine": {
            "session_clients": sessions["clients_in"],
            "session_clients_quarantined": sessions["clients_quarantined"],
            "share": sessions["clients_quarantined"] / max(sessions["clients_in"], 1),
            "limit": cfg.max_quarantine_share,
        },
        "warnings": list(raw.warnings),
        "sources": {
            name: {"file": path, "sha256": raw.sha256.get(name)}
            for name, path in raw.sources.items()
        },
        "scales": {"symptom": _scale_facts(cfg.symptom), "alliance": _scale_facts(cfg.alliance)},
    }


def _failed_check_counts(report: dict[str, Any]) -> list[str]:
    return [
        f"{key}={n}"
        for key, n in report["checks"].items()
        if n and not key.endswith(s.CLIENT_QUARANTINED)
    ]


def _limit_message(report: dict[str, Any]) -> str:
    q = report["quarantine"]
    suggestion = min(math.ceil(q["share"] * 100) / 100, 1.0)
    return (
        f"quarantined {q['session_clients_quarantined']} of {q['session_clients']} clients "
        f"({q['share']:.1%}), above the limit of {q['limit']:.1%}. Failed checks (rows): "
        f"{', '.join(_failed_check_counts(report))}. Fix those rows in the export, or raise the "
        f"limit with data.max_quarantine_share={suggestion:g}"
    )


# --- the stage ----------------------------------------------------------------------------------


def validate_tables(raw: RawTables, cfg: DataConfig) -> ValidatedData:
    """Type, check and split the raw tables (no I/O).

    Raises QuarantineLimitExceeded when the share of quarantined session clients passes
    ``cfg.max_quarantine_share``.
    """
    tables = _checked_tables(raw, cfg)
    client_checks = _quarantine_clients(tables)
    report = _build_report(tables, raw, cfg)
    if report["quarantine"]["share"] > cfg.max_quarantine_share:
        raise QuarantineLimitExceeded(_limit_message(report))

    def kept(name: str) -> pd.DataFrame:
        t = tables[name]
        assert t.quarantined is not None
        return t.typed.loc[~t.quarantined.to_numpy()]

    sessions = kept(SESSIONS).astype({c.SESSION_NUMBER: "int64"})
    sessions = sessions.sort_values([c.CLIENT_ID, c.SESSION_NUMBER], ignore_index=True)
    # Guards the contract every downstream stage relies on (a failure here is a bug).
    s.sessions_schema(cfg.symptom.to_scale(), cfg.alliance.to_scale()).validate(sessions)
    outcomes = kept(OUTCOMES).reset_index(drop=True) if OUTCOMES in tables else None
    clients = kept(CLIENTS).reset_index(drop=True) if CLIENTS in tables else None
    quarantine = _quarantine_frame(tables, raw.sources, client_checks)
    return ValidatedData(sessions, outcomes, clients, quarantine, report)


def write_validated(data: ValidatedData, directory: Path) -> None:
    """Write the stage's outputs into ``directory`` (a staging folder)."""
    for name, frame in (
        (SESSIONS, data.sessions),
        (OUTCOMES, data.outcomes),
        (CLIENTS, data.clients),
    ):
        if frame is not None:
            io.write_table(frame, directory / OUTPUT_FILES[name])
    io.write_table(data.quarantine, directory / OUTPUT_FILES["quarantine"])
    io.write_json(data.report, directory / OUTPUT_FILES["report"])
    io.write_text(summary_markdown(data.report), directory / OUTPUT_FILES["summary"])


def run_validation(
    cfg: DataConfig, output_dir: Path, *, require_outcomes: bool = True
) -> ValidatedData:
    """Load, validate and write; on any error ``output_dir`` holds nothing new."""
    raw = load_raw_tables(cfg, require_outcomes=require_outcomes)
    data = validate_tables(raw, cfg)
    with io.staged_output_dir(output_dir) as staging:
        write_validated(data, staging)
    return data


# --- human-readable summaries (aggregates only) -------------------------------------------------


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A few console lines: rows and clients per table, the quarantine share, failed checks."""
    lines = []
    for table, n in report["tables"].items():
        if n is None:
            lines.append(f"{table}: not given")
            continue
        lines.append(
            f"{table}: {n['rows_in']} rows in, {n['rows_validated']} validated, "
            f"{n['rows_quarantined']} quarantined ({n['clients_quarantined']} of "
            f"{n['clients_in']} clients)"
        )
    q = report["quarantine"]
    lines.append(f"quarantined share of clients: {q['share']:.1%} (limit {q['limit']:.1%})")
    failed = _failed_check_counts(report)
    lines.append("failed checks (rows): " + (", ".join(failed) if failed else "none"))
    if report["warnings"]:
        lines.append(f"warnings: {len(report['warnings'])} (see validation_summary.md)")
    return lines


def summary_markdown(report: dict[str, Any]) -> str:
    """The validation report as a short Markdown page for people."""
    out = ["# Validation summary", "", "## Files", ""]
    for table, src in report["sources"].items():
        out.append(f"- {table}: `{src['file']}` (sha256 `{src['sha256']}`)")
    out += [
        "",
        "## Rows and clients",
        "",
        "| table | rows in | validated | quarantined | clients in | validated | quarantined |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for table, n in report["tables"].items():
        if n is not None:
            out.append(
                f"| {table} | {n['rows_in']} | {n['rows_validated']} | {n['rows_quarantined']} "
                f"| {n['clients_in']} | {n['clients_validated']} | {n['clients_quarantined']} |"
            )
    q = report["quarantine"]
    out += [
        "",
        f"Quarantined: {q['session_clients_quarantined']} of {q['session_clients']} clients "
        f"({q['share']:.1%}); the run fails above {q['limit']:.1%} "
        "(`data.max_quarantine_share`).",
        "",
        "## Checks (failing rows)",
        "",
        "Every row of a client with a failing row is quarantined; those other rows are counted "
        f"as `{s.CLIENT_QUARANTINED}`. Details per row are in `quarantine.csv`.",
        "",
    ]
    failed = {key: n for key, n in report["checks"].items() if n}
    if failed:
        out += ["| table | check | rows |", "|---|---|---:|"]
        for key, n in failed.items():
            table, check = key.split(".", 1)
            out.append(f"| {table} | `{check}` | {n} |")
    else:
        out.append("No check failed.")
    passed = [f"`{key}`" for key, n in report["checks"].items() if not n]
    out += ["", f"Checks with no failing row: {', '.join(passed) or 'none'}."]
    out += ["", "## Warnings", ""]
    out += [f"- {w}" for w in report["warnings"]] or ["None."]
    return "\n".join(out) + "\n"
