"""The one module that reads and writes files. Everything else takes and returns data.

Reading never guesses types: CSV cells come back as strings (with the contract's missing-value
spellings turned into ``NA``) so that validation can report a bad cell instead of pandas
silently turning a column into ``object`` or ``NaN``. Writing is atomic: a file appears under
its final name only once it is complete.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance_dropout.contract import FORMULA_PREFIXES, NA_VALUES
from alliance_dropout.errors import InputFileError

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")


def table_format(path: str | os.PathLike[str]) -> str:
    """'csv' or 'parquet' from the file suffix, else an InputFileError."""
    suffix = Path(path).suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputFileError(path, f"unsupported file type '{suffix}': expected .csv or .parquet")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV (all cells as strings, NA for missing) or a Parquet file (typed as stored).

    Raises InputFileError for a missing, empty, non-UTF-8 or unparseable file and for a file
    with a header but no data rows.
    """
    p = Path(path)
    fmt = table_format(p)
    if not p.is_file():
        raise InputFileError(p, "file not found")
    if p.stat().st_size == 0:
        raise InputFileError(p, "file is empty")
    if fmt == "csv":
        df = _read_csv(p)
    else:
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise InputFileError(p, f"not a readable Parquet file ({type(exc).__name__})") from exc
    if len(df.columns) == 0:
        raise InputFileError(p, "no header row")
    if len(df) == 0:
        raise InputFileError(p, "header but no data rows")
    dupes = df.columns[df.columns.duplicated()].tolist()
    if dupes:
        raise InputFileError(p, "column appears more than once in the header", column=dupes[0])
    return df


def _read_csv(p: Path) -> pd.DataFrame:
    raw = p.read_bytes()
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(p, f"not UTF-8 text (bad byte at offset {exc.start})") from exc
    try:
        df = pd.read_csv(
            p,
            dtype=str,
            encoding="utf-8-sig",  # tolerate a byte-order mark from spreadsheet exports
            keep_default_na=False,
            na_values=list(NA_VALUES),
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError as exc:
        raise InputFileError(p, "file has no header row") from exc
    except pd.errors.ParserError as exc:
        raise InputFileError(p, f"not a readable CSV file ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df


# --- writing ---------------------------------------------------------------------------------


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` where no text cell can run as a spreadsheet formula.

    A text cell that starts with ``= + - @``, a tab or a carriage return and is not a plain
    number gets a leading apostrophe (OWASP's recommendation); numbers stay as they are.
    """
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
            continue
        text = s.astype("string")
        risky = text.str.startswith(FORMULA_PREFIXES).fillna(False)
        if not risky.any():
            continue
        numeric = pd.to_numeric(text.where(risky), errors="coerce").notna()
        fix = risky & ~numeric
        out[col] = text.where(~fix, "'" + text).astype(s.dtype if s.dtype != object else "string")
    return out


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write CSV (formula-safe) or Parquet by suffix, atomically. Returns the path."""
    p = Path(path)
    fmt = table_format(p)
    with _atomic_path(p) as tmp:
        if fmt == "csv":
            neutralise_formulas(df).to_csv(
                tmp, index=False, date_format="%Y-%m-%d", quoting=csv.QUOTE_MINIMAL
            )
        else:
            df.to_parquet(tmp, index=False)
    return p


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False)


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    with _atomic_path(p) as tmp:
        tmp.write_text(to_json(obj) + "\n", encoding="utf-8")
    return p


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    with _atomic_path(p) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return p


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextlib.contextmanager
def staged_output_dir(output_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Stage a stage's outputs in a temporary folder and move them into ``output_dir`` on success.

    If the body raises, the staging folder is removed and ``output_dir`` holds nothing new.
    Files already in ``output_dir`` with the same names are replaced only on success.
    """
    final = Path(output_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    try:
        yield staging
        final.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():
            target = final / item.name
            if target.is_dir() and not item.is_dir():
                shutil.rmtree(target)
            os.replace(item, target) if not item.is_dir() else _replace_dir(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)


@contextlib.contextmanager
def staged_files(paths: list[Path]) -> Iterator[dict[Path, Path]]:
    """Temporary names for several outputs; all are moved into place only if the body succeeds.

    Yields final path -> temporary path in the same folder (so each move is atomic). Outputs the
    body chose not to write are simply not moved; on an error nothing is moved at all.
    """
    token = uuid.uuid4().hex[:12]
    staged = {p: p.with_name(f".{p.stem}.{token}.tmp{p.suffix}") for p in paths}
    try:
        for final in paths:
            final.parent.mkdir(parents=True, exist_ok=True)
        yield staged
        for final, tmp in staged.items():
            if tmp.exists():
                os.replace(tmp, final)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
