"""Reading tables (cells as given, dates as datetime64) and writing them (CSV formula-safe)."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from alliance_dropout.contract import FORMULA_PREFIXES, NA_VALUES
from alliance_dropout.errors import InputFileError
from alliance_dropout.io.outputs import atomic_path

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
# RFC 4180 line ends: with a bare "\n" line end, Python's csv writer leaves a lone "\r" unquoted.
CSV_LINE_END = "\r\n"
# A cell that is a plain decimal number may start with "+" or "-" (never "inf" or "nan").
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def table_format(path: str | os.PathLike[str]) -> str:
    """'csv' or 'parquet' from the file suffix, else an InputFileError."""
    suffix = Path(path).suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputFileError(path, f"unsupported file type '{suffix}': expected .csv or .parquet")


# --- reading -------------------------------------------------------------------------------------


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV (all cells as strings, NA for missing) or a Parquet file (typed as stored,
    dates and timestamps as naive ``datetime64``).

    Raises InputFileError for a missing, empty, non-UTF-8 or unparseable file and for a file
    with a header but no data rows.
    """
    p = Path(path)
    fmt = _readable_file(p)
    df = _read_csv(p) if fmt == "csv" else _read_parquet(p)
    _check_header(p, list(df.columns))
    if len(df) == 0:
        raise InputFileError(p, "header but no data rows")
    return df


def read_columns(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a CSV or Parquet file, with :func:`read_table`'s file-level checks
    but without loading the rows (a CSV is still checked to be UTF-8 throughout, in chunks).

    For engines that read the rows themselves (Spark); whether the file has data rows is
    theirs to check.
    """
    p = Path(path)
    if _readable_file(p) == "csv":
        _check_utf8(p)
        with p.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
        columns = [col.strip() for col in header]
    else:
        try:
            columns = pq.read_schema(p).names
        except Exception as exc:  # pyarrow raises several unrelated types
            name = type(exc).__name__
            raise InputFileError(p, f"not a readable Parquet file ({name})") from exc
    _check_header(p, columns)
    return columns


def _readable_file(p: Path) -> str:
    fmt = table_format(p)
    if not p.is_file():
        raise InputFileError(p, "file not found")
    if p.stat().st_size == 0:
        raise InputFileError(p, "file is empty")
    return fmt


def _check_header(p: Path, columns: list[str]) -> None:
    if len(columns) == 0:
        raise InputFileError(p, "no header row")
    dupes = pd.Index(columns)[pd.Index(columns).duplicated()].tolist()
    if dupes:
        raise InputFileError(p, "column appears more than once in the header", column=dupes[0])


def _check_utf8(p: Path, chunk: int = 1 << 24) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with p.open("rb") as fh:
        while True:
            block = fh.read(chunk)
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the last chunk
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                at = offset - pending + exc.start
                raise InputFileError(p, f"not UTF-8 text (bad byte at offset {at})") from exc
            if not block:
                return
            offset += len(block)


def _read_csv(p: Path) -> pd.DataFrame:
    """Cells as text, NA for the contract's missing-value spellings.

    pyarrow's multi-threaded reader is tried first (about four times less CPU than pandas'); a
    file it cannot read the way pandas does (an unreadable byte, a ragged row, a blank or
    repeated column name, which pandas renames) goes to pandas, which gives the messages.
    """
    frame = _read_csv_arrow(p)
    if frame is None:
        frame = _read_csv_pandas(p)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _csv_header(p: Path) -> list[str] | None:
    """The header row's names as Python's csv module reads them, or None if unsure."""
    with open(p, "rb") as fh:
        head = fh.read(1 << 20)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    lines = text.splitlines()
    if not lines or (len(lines) == 1 and len(head) == 1 << 20):
        return None  # no complete first line
    # a name holding a line break reads differently here: pyarrow's names then differ
    names = next(csv.reader([lines[0]]), [])
    if not names or "" in names or len(set(names)) != len(names):
        return None  # pandas names these "Unnamed: k" or "name.1"
    return names


def _read_csv_arrow(p: Path) -> pd.DataFrame | None:
    """Every column as text through pyarrow, or None where pandas must read the file."""
    names = _csv_header(p)
    if names is None:
        return None
    options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        null_values=list(NA_VALUES),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        # newlines_in_values: the project's own CSVs quote values holding a line break
        table = pacsv.read_csv(
            p,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=options,
        )
    except (pa.ArrowException, OSError):  # bad UTF-8, ragged rows, ...: pandas says what
        return None
    if table.column_names != names or any(t != pa.string() for t in table.schema.types):
        return None
    return table.to_pandas()


def _read_csv_pandas(p: Path) -> pd.DataFrame:
    raw = p.read_bytes()
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(p, f"not UTF-8 text (bad byte at offset {exc.start})") from exc
    try:
        return pd.read_csv(
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


def _read_parquet(p: Path) -> pd.DataFrame:
    try:
        # date32/date64 as datetime64, not as objects holding datetime.date
        df = pd.read_parquet(p, to_pandas_kwargs={"date_as_object": False})
    except Exception as exc:  # pyarrow raises several unrelated types
        raise InputFileError(p, f"not a readable Parquet file ({type(exc).__name__})") from exc
    for col in df.columns[[pd.api.types.is_datetime64_any_dtype(t) for t in df.dtypes]]:
        df[col] = naive_datetime64(df[col])
    return df


def naive_datetime64(values: pd.Series) -> pd.Series:
    """``datetime64[us]`` without a time zone; a time-zone-aware value keeps its local
    wall-clock time (a session at 00:30 in Berlin stays on its own calendar day)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_localize(None)
    return values.astype("datetime64[us]")


def to_datetime64(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Naive ``datetime64[us]`` values, and a mask of cells that are not readable dates.

    Takes any source: ``datetime64`` of any unit, Python ``date``/``datetime`` objects, or ISO
    8601 text (the contract's NA spellings are missing). A value with a time zone or a UTC
    offset keeps its local wall-clock time (:func:`naive_datetime64`). Text is parsed once per
    distinct value: an export repeats a few thousand dates over millions of rows.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return naive_datetime64(values), pd.Series(False, index=values.index)
    if not isinstance(values.dtype, pd.StringDtype):
        # objects (dates, numbers, text mixed): 1, 1.0 and True are one value to a hash
        # table but three spellings, so these are read cell by cell
        return _text_to_datetime64(values)
    codes, distinct = pd.factorize(values)  # missing cells: code -1
    dates, unreadable = _text_to_datetime64(pd.Series(distinct, dtype=values.dtype))
    taken = np.append(dates.to_numpy(), np.datetime64("NaT", "us"))[codes]
    bad = np.append(unreadable.to_numpy(), False)[codes]
    return pd.Series(taken, index=values.index), pd.Series(bad, index=values.index)


def _text_to_datetime64(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = values.astype("str").str.strip()
    text = text.mask(text.isin(NA_VALUES) | values.isna())
    try:
        dates = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except ValueError:  # mixed UTC offsets: each value's own wall-clock time
        dates = pd.to_datetime(_without_offset(text), format="ISO8601", errors="coerce")
    return naive_datetime64(dates), text.notna() & dates.isna()


def _without_offset(text: pd.Series) -> pd.Series:
    """ISO 8601 text without the UTC offset after its time of day ("T09:30+01:00")."""
    time_and_offset = r"(\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)\s*(?:Z|[+-]\d\d(?::?\d\d)?)$"
    return text.str.replace(time_and_offset, r"\1", regex=True)


def file_sha256(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# --- CSV safety ----------------------------------------------------------------------------------


def _neutralise_text(text: pd.Series) -> pd.Series:
    risky = text.str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)
    if not risky.any():
        return text
    plain = text[risky].str.fullmatch(PLAIN_NUMBER).fillna(False).astype(bool)
    fix = risky.copy()
    fix[risky] = ~plain.to_numpy()
    return text.where(~fix, "'" + text)


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` where no cell (header included) can run as a spreadsheet formula.

    A cell that starts with ``= + - @``, a tab or a carriage return and is not a plain decimal
    number gets a leading apostrophe (OWASP's recommendation). ``-inf`` in a float column is not
    a plain number: it is written as ``'-inf``. Booleans and dates are left as they are.
    """
    out = df.copy()
    for i, col in enumerate(out.columns):
        s = out.iloc[:, i]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
            continue
        if pd.api.types.is_numeric_dtype(s):
            if pd.api.types.is_float_dtype(s) and np.isneginf(s.to_numpy(dtype=float)).any():
                fixed = s.astype(object).where(~np.isneginf(s.to_numpy(dtype=float)), "'-inf")
                out[col] = fixed
            continue
        out[col] = _neutralise_text(s.astype("string"))
    header = _neutralise_text(pd.Series([str(col) for col in out.columns], dtype="string"))
    out.columns = header.tolist()
    return out


# --- writing -------------------------------------------------------------------------------------


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Formula-safe CSV that Python's csv module and pandas read back as the same records."""
    neutralise_formulas(df).to_csv(
        path,
        index=False,
        date_format="%Y-%m-%d",
        quoting=csv.QUOTE_MINIMAL,
        lineterminator=CSV_LINE_END,
        encoding="utf-8",
    )


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write CSV (formula-safe) or Parquet by suffix, atomically. Returns the path."""
    p = Path(path)
    fmt = table_format(p)
    with atomic_path(p) as tmp:
        if fmt == "csv":
            write_csv(df, tmp)
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
    with atomic_path(p) as tmp:
        tmp.write_text(to_json(obj) + "\n", encoding="utf-8")
    return p


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    with atomic_path(p) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return p
