"""The validation stage: type and check the raw tables (pure), then write its outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout import schemas as s
from alliance_dropout.config import DataConfig
from alliance_dropout.errors import QuarantineLimitExceeded
from alliance_dropout.validation.checks import checked_tables, quarantine_clients
from alliance_dropout.validation.loading import input_files, load_raw_tables
from alliance_dropout.validation.quarantine import quarantine_frame
from alliance_dropout.validation.summary import build_report, limit_message, summary_markdown
from alliance_dropout.validation.tables import CLIENTS, OUTCOMES, SESSIONS, RawTables

OUTPUT_FILES = {
    SESSIONS: "sessions.parquet",
    OUTCOMES: "outcomes.parquet",
    CLIENTS: "clients.parquet",
    "quarantine": "quarantine.csv",
    "report": "validation_report.json",
    "summary": "validation_summary.md",
}


@dataclass
class ValidatedData:
    """Validated, typed tables plus the quarantined rows (as given) and the aggregate report."""

    sessions: pd.DataFrame
    outcomes: pd.DataFrame | None
    clients: pd.DataFrame | None
    quarantine: pd.DataFrame
    report: dict[str, Any]
    # client key -> the checks that quarantined it ("check, check"); never logged or written
    client_checks: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))


def validate_tables(raw: RawTables, cfg: DataConfig) -> ValidatedData:
    """Type, check and split the raw tables (no I/O).

    Raises QuarantineLimitExceeded when the share of quarantined session clients passes
    ``cfg.max_quarantine_share``.
    """
    tables = checked_tables(raw, cfg)
    client_checks = quarantine_clients(tables)
    report = build_report(tables, raw, cfg)
    if report["quarantine"]["share"] > cfg.max_quarantine_share:
        raise QuarantineLimitExceeded(limit_message(report))

    def kept(name: str) -> pd.DataFrame:
        t = tables[name]
        assert t.quarantined is not None
        return t.typed.loc[~t.quarantined.to_numpy()]

    sessions = sessions_in_order(kept(SESSIONS).astype({c.SESSION_NUMBER: "int64"}))
    # Guards the contract every downstream stage relies on (a failure here is a bug).
    s.sessions_schema(cfg.symptom.to_scale(), cfg.alliance.to_scale()).validate(sessions)
    outcomes = kept(OUTCOMES).reset_index(drop=True) if OUTCOMES in tables else None
    clients = kept(CLIENTS).reset_index(drop=True) if CLIENTS in tables else None
    quarantine = quarantine_frame(tables, raw.sources, client_checks)
    return ValidatedData(sessions, outcomes, clients, quarantine, report, client_checks)


def sessions_in_order(sessions: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by client, then session number, with a fresh index (rows already in that
    order, as most exports and every validated frame are, are not sorted again)."""
    codes = s.sorted_text_codes(sessions[c.CLIENT_ID])
    if codes is not None:
        step_number = np.diff(sessions[c.SESSION_NUMBER].to_numpy())
        if np.all((np.diff(codes) > 0) | (step_number > 0)):
            return sessions.reset_index(drop=True)
    return sessions.sort_values([c.CLIENT_ID, c.SESSION_NUMBER], ignore_index=True)


def output_paths(cfg: DataConfig, directory: Path) -> list[Path]:
    """The files the stage writes into ``directory`` for this config."""
    tables = {SESSIONS: True, OUTCOMES: bool(cfg.outcomes), CLIENTS: bool(cfg.clients)}
    return [directory / name for key, name in OUTPUT_FILES.items() if tables.get(key, True)]


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
    """Check the outputs can be written, then load, validate and write them as one set.

    Before reading anything, an output that is an input file or cannot be written stops the
    run (OutputPathError). On any error ``output_dir`` holds nothing new.
    """
    output_dir = Path(output_dir)
    io.check_outputs(output_paths(cfg, output_dir), input_files(cfg))
    raw = load_raw_tables(cfg, require_outcomes=require_outcomes)
    data = validate_tables(raw, cfg)
    with io.staged_output_dir(output_dir, owned=OUTPUT_FILES.values()) as staging:
        write_validated(data, staging)
    return data
