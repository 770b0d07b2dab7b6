"""Validation stage: read a clinic export, check it against the contract, quarantine bad clients.

``load_raw_tables`` reads the files and checks their structure (a structural problem stops the
run). ``validate_tables`` is pure: it types the cells, runs every row-level check, and moves
every row of an affected client (sessions, outcome and clients rows) to the quarantine.
``run_validation`` first checks that every output can be written and is no input, then writes
the validated tables, the quarantine and the report, all or nothing. The report holds
aggregates only (no raw values, no client ids): it is logged to MLflow.

Modules: ``loading`` (files and structure), ``checks`` (typing cells, row checks),
``quarantine`` (the quarantine table), ``summary`` (report and its text), ``stage`` (the stage).
"""

from alliance_dropout.validation.checks import client_keys, typed_sessions
from alliance_dropout.validation.loading import canonical_tables, input_files, load_raw_tables
from alliance_dropout.validation.stage import (
    OUTPUT_FILES,
    ValidatedData,
    output_paths,
    run_validation,
    sessions_in_order,
    validate_tables,
    write_validated,
)
from alliance_dropout.validation.summary import summary_lines, summary_markdown
from alliance_dropout.validation.tables import (
    CLIENTS,
    OUTCOMES,
    SESSIONS,
    TABLE_CHECKS,
    RawTables,
)

__all__ = [
    "CLIENTS",
    "OUTCOMES",
    "OUTPUT_FILES",
    "SESSIONS",
    "TABLE_CHECKS",
    "RawTables",
    "ValidatedData",
    "canonical_tables",
    "client_keys",
    "input_files",
    "load_raw_tables",
    "output_paths",
    "run_validation",
    "sessions_in_order",
    "summary_lines",
    "summary_markdown",
    "typed_sessions",
    "validate_tables",
    "write_validated",
]
