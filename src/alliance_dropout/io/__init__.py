"""The one package that reads and writes files. Everything else takes and returns data.

Reading never guesses types: CSV cells come back as strings (with the contract's missing-value
spellings turned into ``NA``) so that validation can report a bad cell instead of pandas
silently turning a column into ``object`` or ``NaN``. CSV files are read by pyarrow, or by
pandas where pyarrow would read them differently (the two agree cell for cell otherwise).

Dates become naive ``datetime64[us]`` here and nowhere else, once: Parquet ``date32``/``date64``
and timestamps at read, text cells (ISO 8601) in :func:`to_datetime64`. A timestamp with a time
zone, or text with a UTC offset, keeps its local wall-clock time and loses the zone: a session
at 00:30 in Berlin is on that calendar day (converting to UTC would move it to the day before).

Writing is safe by construction:

- ``check_outputs`` refuses, before any work, an output that is one of the inputs (same
  resolved path or same inode), a folder, under a file, or in a folder that cannot be written.
- Every file is written under a temporary name and renamed into place; ``staged_files`` and
  ``staged_output_dir`` commit a run's outputs as a set (all renamed, or the previous set kept).
- Temporary names are recognisable (``.<name>.<host>-<pid>-<token>.alliance-<kind>``); those
  left behind by a killed run are removed by the next run that writes into the same folder.
- A CSV cell never starts a spreadsheet formula, and every CSV reads back as the same records
  (CRLF line ends, so a value holding a carriage return is quoted too).
"""

from alliance_dropout.io.files import (
    CSV_LINE_END,
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    PLAIN_NUMBER,
    file_sha256,
    neutralise_formulas,
    read_columns,
    read_json,
    read_table,
    table_format,
    to_datetime64,
    to_json,
    write_csv,
    write_json,
    write_table,
    write_text,
)
from alliance_dropout.io.outputs import (
    STALE_AFTER_SECONDS,
    atomic_path,
    check_output_folders,
    check_outputs,
    commit,
    remove_stale_temp_files,
    staged_files,
    staged_output_dir,
    temp_path,
)

__all__ = [
    "CSV_LINE_END",
    "CSV_SUFFIXES",
    "PARQUET_SUFFIXES",
    "PLAIN_NUMBER",
    "STALE_AFTER_SECONDS",
    "atomic_path",
    "check_output_folders",
    "check_outputs",
    "commit",
    "file_sha256",
    "neutralise_formulas",
    "read_columns",
    "read_json",
    "read_table",
    "remove_stale_temp_files",
    "staged_files",
    "staged_output_dir",
    "table_format",
    "temp_path",
    "to_datetime64",
    "to_json",
    "write_csv",
    "write_json",
    "write_table",
    "write_text",
]
