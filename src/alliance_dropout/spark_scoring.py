"""Caseload scoring on Apache Spark: the local scorer's answers for caseloads of any size.

    python pipelines/score.py engine=spark data.sessions=PATH output=DIR

Imported only with ``engine=spark``: pyspark is an optional extra (``pip install -e ".[spark]"``,
Java 17), so nothing else in the package imports this module.

How it runs, and why it gives the same answers as ``scoring.run_scoring``:

1. **Whole-file checks, before any grouping** (driver and Spark): every input file is readable
   and holds the required columns (``io.read_columns`` and ``validation.canonical_tables``, the
   functions the local reader uses, on each file's header or Parquet footer), so a file-level
   problem stops the run in one line before Spark starts. Properties that need the whole column
   are measured in Spark first: whether a float identifier column holds whole numbers only
   (then its ids read as ``123``, else as ``123.5``, as ``validation.checks.as_text`` decides
   over the whole file locally).
2. **One pass, per client.** Rows are hashed by client key into buckets and
   ``groupBy(bucket).cogroup(...).applyInPandas(...)`` hands each bucket, with every row of its
   clients from every table, to ``scoring.validate_and_score``: the local scorer's validation,
   quarantine, features, model and reasons, not a copy. Checks that need all of a client's rows
   (duplicate session numbers, dates out of order) therefore see all of them.

   ``mlflow.pyfunc.spark_udf`` is the wrong shape for this model. It hands the model Arrow
   batches of rows as Spark happens to cut them, not whole client histories; a client's
   trajectory features (alliance course, ruptures, attendance) are computed from all of its
   earlier rows, so a client whose rows fall into two batches is scored twice from two halves
   of its history: silently wrong risks, and no error.

   The champion is downloaded once on the driver, its SHA-256 checked there against the one
   recorded at log time, and broadcast; each Python worker checks the digest again before
   unpickling and keeps the model in a module-level cache keyed by model URI and digest, so it
   is loaded once per worker, not once per bucket.
3. **Second pass, what needs the whole caseload.** The validation report is the sum of the
   buckets' counts; the quarantine limit is checked on that sum. Tiers: with
   ``scoring.tiers.mode=probability`` the fixed cut-offs (``scoring.assign_tiers``); with
   ``mode=share`` the ranks at the cut-offs come from Spark's ``approxQuantile`` at
   ``engine.quantile_relative_error``, then clients tied on the cut-off risk are split by
   client id as the local scorer's stable sort does (exact while relative error x clients < 1).
   The quarantine's cells read as the local quarantine's: a float column whose quarantined
   values are whole everywhere reads ``4``, else ``4.0``, whichever bucket a row came from.
4. **Outputs** (``output=DIR``): the ranked list as a Parquet folder ``DIR``, the quarantine
   as ``DIR.quarantine/`` (Parquet), ``DIR.validation.json``, and the HTML report(s) from the
   scored output with the report package: ``DIR.html`` for the ``engine.report_top_n``
   riskiest clients, or ``DIR.reports/`` with one page per therapist
   (``engine.report_scope=therapist``). Everything is written under temporary names beside
   the final ones and renamed into place as one set (``io.staged_files``): a failed job leaves
   no partial output and the previous set untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout import tracking as trk
from alliance_dropout.config import DataConfig, ScoreRunConfig
from alliance_dropout.config.scoring import EngineConfig, ReportScope, TierMode
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.errors import InputFileError, OutputPathError, QuarantineLimitExceeded
from alliance_dropout.modeling.models import DropoutRiskModel
from alliance_dropout.report import render_caseload_report
from alliance_dropout.scoring import (
    ScoredCaseload,
    ScoringSummary,
    StageClock,
    assign_tiers,
    report_meta,
    scoring_data_config,
    validate_and_score,
)
from alliance_dropout.simulate import simulate
from alliance_dropout.validation import (
    CLIENTS,
    OUTCOMES,
    SESSIONS,
    RawTables,
    canonical_tables,
    input_files,
)
from alliance_dropout.validation.summary import limit_message

TABLE_ORDER = (SESSIONS, OUTCOMES, CLIENTS)
# bookkeeping columns carried with the rows (never written)
KIND, BUCKET, KEY, TABLE, FILE, ROW = "_kind", "_bucket", "_key", "_table", "_file", "_row"
# prefixes of each table's columns in the union of outcomes and clients, and of each output
# kind's columns in a bucket's output
TABLE_PREFIX = {OUTCOMES: "o__", CLIENTS: "c__"}
SCORED, QUARANTINE, HISTORY, REPORT = "scored", "quarantine", "history", "report"
KIND_PREFIX = {SCORED: "s__", QUARANTINE: "q__", HISTORY: "h__", REPORT: "r__"}
REPORT_JSON = "json"
# every character Python's str.strip() removes: client_keys() treats such ids as blank
_BLANK = "^[" + "".join(f"\\u{ord(ch):04x}" for ch in map(chr, range(0x10000)) if ch.isspace())
_BLANK += "]*$"
_WHOLE_TEXT = r"^-?[0-9]+$"


# --- outputs -------------------------------------------------------------------------------------


def spark_output_paths(output: Path) -> dict[str, Path]:
    """Where the Spark engine writes: the list folder and, beside it, the rest of the set."""
    if output.suffix.lower() == ".csv":
        raise OutputPathError(
            output, "engine=spark writes the list as a Parquet folder: give output=DIR"
        )
    stem = output.with_suffix("") if output.suffix.lower() in io.PARQUET_SUFFIXES else output
    return {
        "scores": output,
        "quarantine": Path(f"{stem}.quarantine"),
        "validation": Path(f"{stem}.validation.json"),
        "report": Path(f"{stem}.html"),
        "reports": Path(f"{stem}.reports"),
    }


# --- the Spark session ---------------------------------------------------------------------------


def spark_session(engine: EngineConfig) -> tuple[SparkSession, bool]:
    """The active Spark session, or a new one from ``engine``; and whether it was created here.

    A local master binds to 127.0.0.1 only, and its Python workers run this interpreter.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in engine.conf.items():
            if key.startswith("spark.sql."):  # runtime settings; the rest is fixed at start
                active.conf.set(key, value)
        active.conf.set("spark.sql.caseSensitive", "true")
        return active, False
    if engine.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(engine.master).appName(engine.app_name)
    if engine.master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    for key, value in engine.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("spark.sql.caseSensitive", "true")  # column names as pandas reads them
    return spark, True


# --- reading, with the whole-file checks ---------------------------------------------------------


@dataclass
class InputTable:
    """One input table read by Spark: canonical columns plus the row's place in its file."""

    name: str
    source: str  # the configured path, as given
    files: list[Path]
    frame: DataFrame  # canonical columns, KEY, ROW (and FILE for a folder of files)
    columns: list[str]  # canonical columns
    rows: int  # row count (Parquet footers) or an estimate (CSV); sizes the buckets
    warnings: list[str]

    @property
    def one_file(self) -> bool:
        return len(self.files) == 1


def table_files(path: str) -> list[Path]:
    """The files of an input: the file itself, or every data file of a folder of Parquet
    files (names starting with '_' or '.', Spark's markers and checksums, are skipped)."""
    p = Path(path)
    if not p.is_dir():
        return [p]
    files = sorted(
        f
        for f in p.rglob("*")
        if f.is_file() and not any(part[0] in "_." for part in f.relative_to(p).parts)
    )
    if not files:
        raise InputFileError(p, "folder holds no Parquet files")
    for f in files:
        if io.table_format(f) != "parquet":
            raise InputFileError(f, "a folder input must hold Parquet files only")
    return files


def _probe(columns: list[str]) -> pd.DataFrame:
    """A one-row frame whose cells are their own column names: through canonical_tables it
    shows which export column feeds which canonical column."""
    return pd.DataFrame([columns], columns=columns, dtype=object)


@dataclass
class InputStructure:
    """What the whole-file checks found: per table its files, each file's header, and which
    export column feeds each canonical column; the structural warnings."""

    files: dict[str, list[Path]]
    headers: dict[str, list[list[str]]]
    mapping: dict[str, dict[str, str]]
    warnings: list[str]
    schemas: dict[str, pa.Schema]  # Parquet tables: every file's schema, unified


def check_structure(cfg: DataConfig) -> InputStructure:
    """The local reader's file-level checks on every input file, without reading its rows.

    Readable, UTF-8 (CSV), a header without repeated names, every required column (mapped by
    ``data.columns``). Raises InputFileError naming the file, the column and the problem.
    """
    configured = {SESSIONS: cfg.sessions, OUTCOMES: cfg.outcomes, CLIENTS: cfg.clients}
    files = {t: table_files(str(p)) for t, p in configured.items() if p}
    headers = {t: [io.read_columns(f) for f in fs] for t, fs in files.items()}
    mapping: dict[str, dict[str, str]] = {t: {} for t in files}
    found: list[str] = []
    # every file against the first file of the other tables; each distinct header once
    for table in files:
        seen: set[tuple[str, ...]] = set()
        for f, header in zip(files[table], headers[table], strict=True):
            if tuple(header) in seen:
                continue
            seen.add(tuple(header))
            frames = {t: _probe(headers[t][0]) for t in files}
            frames[table] = _probe(header)
            sources = {t: str(files[t][0]) for t in files}
            sources[table] = str(f)
            raw = canonical_tables(frames, sources, cfg)
            probed = getattr(raw, table)
            mapping[table].update({col: str(probed[col].iloc[0]) for col in probed.columns})
            found += [w for w in raw.warnings if w not in found]
    schemas = {
        t: _unified_schema(fs) for t, fs in files.items() if io.table_format(fs[0]) == "parquet"
    }
    return InputStructure(files, headers, mapping, found, schemas)


def _unified_schema(files: list[Path]) -> pa.Schema:
    """One schema for a folder of Parquet files; a column typed differently in two files is
    a file-level problem (Spark would fail on it mid-job, or read it wrong)."""
    unified = pq.read_schema(files[0])
    for f in files[1:]:
        schema = pq.read_schema(f)
        try:
            unified = pa.unify_schemas([unified, schema])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            column = next(
                (
                    n
                    for n in schema.names
                    if n in unified.names and schema.field(n).type != unified.field(n).type
                ),
                None,
            )
            raise InputFileError(
                f,
                f"column typed differently from the folder's other files ({files[0].name})",
                column=column,
            ) from None
    return unified


def _file_rows(files: list[Path]) -> int:
    if io.table_format(files[0]) == "parquet":
        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    with files[0].open("rb") as fh:
        head = fh.read(1 << 20)
    per_row = max(len(head) / max(head.count(b"\n"), 1), 1.0)
    return int(files[0].stat().st_size / per_row)


def _read_spark(
    spark: SparkSession, files: list[Path], header: list[str], schema: pa.Schema | None
) -> DataFrame:
    if schema is not None:
        # the footers' schema (read and unified already): no schema-inference job
        df = spark.read.schema(from_arrow_schema(schema)).parquet(*map(str, files))
        return df.select(
            "*",
            F.col("_metadata.file_path").alias(FILE),
            F.col("_metadata.row_index").alias(ROW),
        )
    # As the local reader: every cell as text, the contract's NA spellings missing, quoted
    # line breaks kept (multiLine: one partition per file, so the row id below is the row's
    # place in the file), a record with too many fields an error, not a silent cut.
    schema = T.StructType([T.StructField(name, T.StringType()) for name in header])
    df = spark.read.csv(
        str(files[0]),
        schema=schema,
        header=True,
        enforceSchema=True,
        multiLine=True,
        escape='"',
        mode="FAILFAST",
    )
    df = df.select(
        *(
            F.when(F.col(f"`{n}`").isin(list(c.NA_VALUES)), None)
            .otherwise(F.col(f"`{n}`"))
            .alias(n)
            for n in header
        ),
        F.col("_metadata.file_path").alias(FILE),
        F.monotonically_increasing_id().bitwiseAND((1 << 33) - 1).alias(ROW),
    )
    return df


def _id_columns(table: str) -> tuple[str, ...]:
    """Identifier and code columns that validation reads as text (``checks._text``)."""
    return {
        SESSIONS: (c.CLIENT_ID, c.THERAPIST_ID, c.ATTENDANCE),
        OUTCOMES: (c.CLIENT_ID, c.STATUS),
        CLIENTS: (c.CLIENT_ID,),
    }[table]


def _as_text_udf() -> Any:
    # what checks.as_text does to a float column that does not hold whole numbers only
    @F.pandas_udf(T.StringType())  # type: ignore[call-overload]
    def float_text(values: pd.Series) -> pd.Series:
        return _typed(values.astype("str"), "str")

    return float_text


def read_table(
    spark: SparkSession, table: str, source: str, structure: InputStructure
) -> InputTable:
    """Read one table with Spark under canonical names, ids as the local reader types them."""
    files, mapping = structure.files[table], structure.mapping[table]
    df = _read_spark(spark, files, structure.headers[table][0], structure.schemas.get(table))
    canonical = list(mapping)
    df = df.select(
        *(F.col(f"`{mapping[col]}`").alias(col) for col in canonical), F.col(FILE), F.col(ROW)
    )
    if len(files) == 1:
        df = df.drop(FILE)
    types = dict(zip(df.schema.names, (f.dataType for f in df.schema.fields), strict=True))
    floats = [
        col for col in _id_columns(table) if isinstance(types.get(col), T.FloatType | T.DoubleType)
    ]
    if floats:
        # Whole-file property: validation reads float ids as whole numbers only when every
        # value of the column is one; a bucket sees part of the column, so decide here.
        whole = df.agg(
            *(
                F.bool_and(
                    F.col(col).isNull()
                    | F.isnan(col)
                    | ((F.abs(col) <= float(2**53 - 1)) & (F.col(col) % 1 == 0))
                ).alias(col)
                for col in floats
            )
        ).first()
        assert whole is not None
        text = _as_text_udf()
        for col in floats:
            if whole[col] is False:
                df = df.withColumn(col, text(F.col(col)))
    df = df.withColumn(KEY, _key_text(df, c.CLIENT_ID))
    return InputTable(table, source, files, df, canonical, _file_rows(files), [])


def _key_text(df: DataFrame, col: str) -> Column:
    """The client key as validation's ``client_keys`` gives it, in Spark (None: no client)."""
    dtype = df.schema[col].dataType
    value = F.col(col)
    if isinstance(dtype, T.FloatType | T.DoubleType):  # whole numbers only (else text above)
        return F.when(value.isNull() | F.isnan(value), None).otherwise(
            value.cast("bigint").cast("string")
        )
    text = value.cast("string")
    blank = text.isNull() | text.isin(list(c.NA_VALUES)) | text.rlike(_BLANK)
    return F.when(blank, None).otherwise(text)


# --- the model, once per worker ------------------------------------------------------------------

_MODELS: dict[tuple[str, str], DropoutRiskModel] = {}


@dataclass
class ModelShipment:
    """The verified model file, broadcast to the workers with its recorded digest."""

    uri: str
    sha256: str
    blob: Any  # pyspark Broadcast[bytes]

    def load(self) -> DropoutRiskModel:
        """The model, unpickled once per Python worker after its digest is checked again."""
        key = (self.uri, self.sha256)
        if key not in _MODELS:
            with tempfile.TemporaryDirectory(prefix="alliance-dropout-model-") as tmp:
                path = Path(tmp) / trk.MODEL_FILE
                path.write_bytes(self.blob.value)
                _MODELS[key] = trk.load_model_file(path, self.sha256, self.uri)
        return _MODELS[key]


# --- one bucket ----------------------------------------------------------------------------------


@dataclass
class BucketJob:
    """Everything a bucket needs, shipped to the workers with the function."""

    model: ModelShipment
    model_id: str
    data: DataConfig
    run: ScoreRunConfig
    columns: dict[str, list[str]]  # table -> canonical columns
    date_columns: dict[str, list[str]]  # table -> Spark DateType columns
    sources: dict[str, str]
    sha256: dict[str, str]
    warnings: list[str]
    one_file: dict[str, bool]
    layout: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> column -> dtype
    # session rows for the report's charts: none, of every client (a page per therapist), or
    # of the bucket's `top` riskiest (the caseload's `top` riskiest are among them)
    histories: str = "none"
    top: int = 0


def _table_frame(
    rows: pd.DataFrame, columns: list[str], dates: list[str], prefix: str = ""
) -> pd.DataFrame:
    """A table's rows as the local reader gives them: canonical columns, dates as datetime64,
    positional index (``row_number - 1`` in the quarantine finds the row again)."""
    out = rows.reindex(columns=[prefix + col for col in columns]).set_axis(columns, axis=1)
    for col in dates:
        out[col] = pd.to_datetime(out[col])  # Spark hands dates to pandas as objects
    return out.reset_index(drop=True)


def _place_quarantine(
    quarantine: pd.DataFrame, places: dict[str, pd.DataFrame], job: BucketJob
) -> pd.DataFrame:
    """Quarantine rows with the file and the 1-based data row they came from."""
    out = quarantine.copy()
    for table, frame in places.items():
        mine = (out["table"] == table).to_numpy()
        if not mine.any():
            continue
        at = out.loc[mine, "row_number"].to_numpy(dtype=np.int64) - 1
        out.loc[mine, "row_number"] = frame[ROW].to_numpy(dtype=np.int64)[at] + 1
        if not job.one_file[table]:
            files = frame[FILE].map(lambda u: unquote(urlparse(u).path)).to_numpy()
            out.loc[mine, "source_file"] = files[at]
    return out


def score_bucket(job: BucketJob, sessions: pd.DataFrame, others: pd.DataFrame) -> pd.DataFrame:
    """Validate and score one bucket of whole clients with the local scorer's functions."""
    started = time.perf_counter()
    model = job.model.load()
    places = {SESSIONS: sessions.reset_index(drop=True)}
    tables = {SESSIONS: _table_frame(sessions, job.columns[SESSIONS], job.date_columns[SESSIONS])}
    for table, prefix in TABLE_PREFIX.items():
        if table in job.columns:
            rows = others.loc[others[TABLE] == table] if len(others) else others
            places[table] = rows.reset_index(drop=True).rename(
                columns={prefix + FILE: FILE, prefix + ROW: ROW}
            )
            tables[table] = _table_frame(rows, job.columns[table], job.date_columns[table], prefix)
    raw = RawTables(
        tables[SESSIONS],
        tables.get(OUTCOMES),
        tables.get(CLIENTS),
        dict(job.sources),
        sha256=dict(job.sha256),
        warnings=list(job.warnings),
    )
    clock = StageClock()
    validated, caseload = validate_and_score(
        raw, job.data, model, job.model_id, job.run.scoring, progress=False, clock=clock
    )
    parts = {
        SCORED: caseload.scored,
        QUARANTINE: _place_quarantine(validated.quarantine, places, job),
    }
    if job.histories == "all":
        parts[HISTORY] = caseload.histories
    elif job.histories == "top":
        riskiest = caseload.scored[c.CLIENT_ID].iloc[: job.top]  # ranked, as the list
        parts[HISTORY] = caseload.histories[caseload.histories[c.CLIENT_ID].isin(riskiest)]
    summary = {
        "validation": validated.report,
        "n_scored": len(caseload.scored),
        "n_skipped_ended": caseload.n_skipped_ended,
        "seconds": {**clock.seconds, "bucket": time.perf_counter() - started},
    }
    parts[REPORT] = pd.DataFrame({REPORT_JSON: [io.to_json(summary)]})
    return bucket_output(parts, job.layout)


# --- the buckets' output: one frame of every kind, its schema derived from the local scorer -------


def _nullable(dtype: Any) -> str:
    kind = np.dtype(dtype).kind if not isinstance(dtype, pd.api.extensions.ExtensionDtype) else ""
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "Int64"
    if pd.api.types.is_float_dtype(dtype):
        return "float64"
    if pd.api.types.is_datetime64_any_dtype(dtype) or kind == "M":
        return "datetime64[us]"
    return "str"


_SPARK_TYPES: dict[str, T.DataType] = {
    "boolean": T.BooleanType(),
    "Int64": T.LongType(),
    "float64": T.DoubleType(),
    "datetime64[us]": T.TimestampNTZType(),
    "str": T.StringType(),
}


def output_layout(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, str]]:
    """Per output kind, its columns and their nullable pandas dtypes, from frames the local
    scorer produced (so columns it gains flow through without a change here)."""
    return {
        kind: {col: _nullable(df[col].dtype) for col in df.columns} for kind, df in frames.items()
    }


def layout_schema(layout: dict[str, dict[str, str]]) -> T.StructType:
    fields = [T.StructField(KIND, T.StringType(), False)]
    for kind, columns in layout.items():
        prefix = KIND_PREFIX[kind]
        fields += [T.StructField(prefix + col, _SPARK_TYPES[d]) for col, d in columns.items()]
    return T.StructType(fields)


def _typed(values: pd.Series, dtype: str) -> pd.Series:
    """``values`` as ``dtype``; text as plain objects (None missing): pyspark's Arrow
    conversion does not take pandas' Arrow-backed strings."""
    if dtype != "str":
        return values.astype(dtype)
    text = values.astype("str").astype(object)
    return text.where(values.notna().to_numpy(), None)


def bucket_output(
    parts: dict[str, pd.DataFrame], layout: dict[str, dict[str, str]]
) -> pd.DataFrame:
    """One frame holding every kind's rows (other kinds' columns empty), typed as the schema."""
    columns = [KIND] + [KIND_PREFIX[k] + col for k, cols in layout.items() for col in cols]
    frames = []
    for kind, df in parts.items():
        frame = pd.DataFrame(
            {KIND_PREFIX[kind] + col: df[col].to_numpy() for col in layout[kind]},
            index=pd.RangeIndex(len(df)),
        )
        frame.insert(0, KIND, kind)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True).reindex(columns=columns)
    for kind, cols in layout.items():
        for col, dtype in cols.items():
            name = KIND_PREFIX[kind] + col
            out[name] = _typed(out[name], dtype)
    out[KIND] = out[KIND].astype(object)
    return out


def sample_frames(
    model: DropoutRiskModel, job: BucketJob, clients_columns: list[str]
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The local scorer's output frames on a tiny synthetic caseload (on the driver), to type
    the buckets' output; and which quarantine column holds which clients column."""
    data = simulate(SimulateConfig(n_clients=6, n_therapists=2, seed=0))
    sessions = data.sessions.copy()
    bad = sessions[c.CLIENT_ID].iloc[0]
    sessions.loc[sessions[c.CLIENT_ID] == bad, c.ALLIANCE_CLIENT] = 9.0  # out of range
    marker = "\x00orphan"
    tables: dict[str, pd.DataFrame | None] = {OUTCOMES: None, CLIENTS: None}
    if OUTCOMES in job.columns:
        tables[OUTCOMES] = pd.DataFrame({c.CLIENT_ID: [marker], c.STATUS: [c.ONGOING]})
    if CLIENTS in job.columns:
        tables[CLIENTS] = pd.DataFrame(
            {col: [marker if col == c.CLIENT_ID else f"\x00{col}"] for col in clients_columns}
        )
    raw = RawTables(
        sessions.reindex(columns=job.columns[SESSIONS]),
        tables[OUTCOMES],
        tables[CLIENTS],
        dict(job.sources),
    )
    data_cfg = dataclasses.replace(job.data, max_quarantine_share=1.0)
    validated, caseload = validate_and_score(
        raw, data_cfg, model, job.model_id, job.run.scoring, progress=False
    )
    assert len(caseload.scored) and len(validated.quarantine), "sample scored nothing"
    frames = {SCORED: caseload.scored, QUARANTINE: validated.quarantine}
    frames[HISTORY] = caseload.histories
    frames[REPORT] = pd.DataFrame({REPORT_JSON: ["{}"]})
    where: dict[str, str] = {}
    if CLIENTS in job.columns:
        row = validated.quarantine.loc[validated.quarantine["table"] == CLIENTS].iloc[0]
        for qcol, value in row.items():
            if isinstance(value, str) and value.startswith("\x00") and value != marker:
                where[value[1:]] = str(qcol)
    return frames, where


# --- the second pass -----------------------------------------------------------------------------


def _kind(buckets: DataFrame, kind: str, columns: list[str]) -> DataFrame:
    prefix = KIND_PREFIX[kind]
    return buckets.where(F.col(KIND) == kind).select(
        *(F.col(f"`{prefix}{col}`").alias(col) for col in columns)
    )


def merged_report(parts: list[dict[str, Any]], data: DataConfig) -> dict[str, Any]:
    """The buckets' validation reports as one: counts summed, the quarantine share anew."""

    def merge(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {key: merge([v[key] for v in values]) for key in first}
        if isinstance(first, int) and not isinstance(first, bool):
            return sum(values)
        return first

    # the sections of counts; the rest (sources, scales, warnings) is the same in every bucket
    report: dict[str, Any] = dict(parts[0])
    for section in ("tables", "checks", "quarantine"):
        report[section] = merge([part[section] for part in parts])
    q = report["quarantine"]
    q["share"] = q["session_clients_quarantined"] / max(q["session_clients"], 1)
    q["limit"] = data.max_quarantine_share
    return report


def _ranks_below(
    scored: DataFrame, n: int, ks: list[int], eps: float, by: str = c.DROPOUT_RISK
) -> list[Column]:
    """For each k: true for the k riskiest of the n clients (by the risk column ``by``), clients
    tied on the cut-off risk taken by client id (the local scorer's stable order); the cut-off
    risks from one approximate-quantile pass, their counts from one more."""
    risk, cid = F.col(by), F.col(c.CLIENT_ID)
    inner = [k for k in ks if 0 < k < n]
    # ascending rank n - k + 1 (1-based) is the k-th riskiest
    cutoffs = scored.approxQuantile(by, [(n - k + 0.5) / n for k in inner], eps)
    at = dict(zip(inner, cutoffs, strict=True))
    counts = (
        scored.agg(
            *(F.sum((risk > v).cast("long")).alias(f"above{i}") for i, v in enumerate(cutoffs)),
            *(F.sum((risk == v).cast("long")).alias(f"tied{i}") for i, v in enumerate(cutoffs)),
        ).first()
        if cutoffs
        else None
    )
    out = []
    for k in ks:
        if k <= 0 or k >= n:
            out.append(F.lit(k > 0))
            continue
        i = inner.index(k)
        assert counts is not None
        cutoff, above, tied = at[k], int(counts[f"above{i}"]), int(counts[f"tied{i}"])
        wanted = k - above
        if wanted <= 0:  # approximate (relative error x clients >= 1): the share is close
            out.append(risk > cutoff)
        elif wanted >= tied:
            out.append(risk >= cutoff)
        else:
            last = scored.where(risk == cutoff).select(cid).orderBy(cid).offset(wanted - 1)
            boundary = last.first()
            assert boundary is not None
            out.append((risk > cutoff) | ((risk == cutoff) & (cid <= boundary[0])))
    return out


def with_tiers(scored: DataFrame, n: int, run: ScoreRunConfig) -> DataFrame:
    """The risk tier of every client, over the whole caseload (the local scorer's rule)."""
    tiers = run.scoring.tiers
    if tiers.mode is TierMode.probability:

        @F.pandas_udf(T.StringType())  # type: ignore[call-overload]
        def fixed(risk: pd.Series) -> pd.Series:
            labels = pd.Series(assign_tiers(risk.to_numpy(dtype=float), tiers), index=risk.index)
            return _typed(labels, "str")

        return scored.withColumn(c.RISK_TIER, fixed(F.col(tiers.risk)))
    eps = run.engine.quantile_relative_error
    ks = [round(tiers.high * n), round(tiers.medium * n)]
    high, medium = _ranks_below(scored, n, ks, eps, tiers.risk)
    return scored.withColumn(
        c.RISK_TIER, F.when(high, "high").when(medium, "medium").otherwise("low")
    )


def reconciled_quarantine(
    quarantine: DataFrame, tables: dict[str, InputTable], where: dict[str, str]
) -> DataFrame:
    """Quarantine cells as the local quarantine reads them over the whole file.

    ``as_text`` writes a float column's values as whole numbers (``4``) only when every
    quarantined value of that column is one, and a time column as dates only when every one
    is at midnight; a bucket decided over its own rows, so the decision is made again here
    over all of them (the text of a whole float is then ``4.0``, of a midnight ``00:00:00``).
    """
    checks: list[tuple[str, str, str]] = []  # (table, quarantine column, kind)
    for name, table in tables.items():
        for fld in table.frame.schema.fields:
            if fld.name not in table.columns or fld.name in _id_columns(name):
                continue
            qcol = where.get(fld.name, fld.name) if name == CLIENTS else fld.name
            if qcol not in quarantine.columns:
                continue
            if isinstance(fld.dataType, T.FloatType | T.DoubleType):
                checks.append((name, qcol, "float"))
            elif isinstance(fld.dataType, T.TimestampType | T.TimestampNTZType):
                checks.append((name, qcol, "time"))
    if not checks:
        return quarantine

    def looks_plain(table: str, qcol: str, kind: str) -> Column:
        value = F.col(f"`{qcol}`")
        plain = value.rlike(_WHOLE_TEXT) if kind == "float" else F.length(value) == 10
        return (F.col("table") == table) & value.isNotNull() & plain

    def is_present(table: str, qcol: str) -> Column:
        return (F.col("table") == table) & F.col(f"`{qcol}`").isNotNull()

    agg = quarantine.agg(
        *(
            F.sum((is_present(t, q) & ~looks_plain(t, q, k)).cast("long")).alias(str(i))
            for i, (t, q, k) in enumerate(checks)
        )
    ).first()
    assert agg is not None
    for i, (name, qcol, kind) in enumerate(checks):
        if not agg[str(i)]:
            continue  # every value plain: each bucket wrote it so already
        suffix = ".0" if kind == "float" else " 00:00:00"
        value = F.col(f"`{qcol}`")
        quarantine = quarantine.withColumn(
            qcol,
            F.when(looks_plain(name, qcol, kind), F.concat(value, F.lit(suffix))).otherwise(value),
        )
    return quarantine


# --- reports -------------------------------------------------------------------------------------


def _report_file_name(therapist: str) -> str:
    """A safe, unique file name for a therapist's report (ids may hold any character)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", therapist)[:60].strip("_") or "therapist"
    return f"{slug}-{hashlib.sha256(therapist.encode()).hexdigest()[:8]}.html"


@dataclass
class ReportJob:
    """What the report pages need besides their rows (shipped to the workers)."""

    run: ScoreRunConfig
    model: ModelShipment
    meta: dict[str, Any]
    validation: dict[str, Any]
    n_skipped_ended: int
    scored_columns: list[str]


def render_page(job: ReportJob, scored: pd.DataFrame, histories: pd.DataFrame, title: str) -> str:
    """One report page from scored rows (ranked) and their session histories."""
    scored = scored.sort_values(
        [job.run.scoring.tiers.risk, c.CLIENT_ID], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)[job.scored_columns]
    tiers = scored[c.RISK_TIER].value_counts().reindex(list(c.RISK_TIERS)).fillna(0)
    counts = {k: int(v) for k, v in tiers.items()}
    caseload = ScoredCaseload(scored, histories, job.n_skipped_ended)
    model = job.model.load()
    meta = report_meta(job.run, job.meta, model, job.validation, caseload, counts)
    return render_caseload_report(scored, histories, dataclasses.replace(meta, title=title))


def therapist_pages(job: ReportJob, scored: pd.DataFrame, histories: pd.DataFrame) -> pd.DataFrame:
    """One therapist's page (a cogroup of their scored clients and those clients' rows)."""
    if not len(scored):
        return pd.DataFrame({"name": pd.Series(dtype=object), "html": pd.Series(dtype=object)})
    therapist = str(scored[c.THERAPIST_ID].iloc[0])
    title = "Dropout risk: caseload review, one therapist's clients"
    html = render_page(job, scored, histories.drop(columns=[KEY, TABLE]), title)
    return pd.DataFrame({"name": [_report_file_name(therapist)], "html": [html]})


# --- the stage -----------------------------------------------------------------------------------


def _others_frame(spark: SparkSession, tables: dict[str, InputTable]) -> DataFrame:
    """Outcomes and clients rows in one frame (prefixed columns), keyed like the sessions."""
    parts = []
    for name, prefix in TABLE_PREFIX.items():
        if name not in tables:
            continue
        df = tables[name].frame
        parts.append(
            df.select(
                *(F.col(f"`{col}`").alias(prefix + col) for col in df.columns if col != KEY),
                F.col(KEY),
                F.lit(name).alias(TABLE),
            )
        )
    if not parts:
        schema = T.StructType(
            [T.StructField(KEY, T.StringType()), T.StructField(TABLE, T.StringType())]
        )
        return spark.createDataFrame([], schema)
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part, allowMissingColumns=True)
    return out


def _bucketed(df: DataFrame, n_buckets: int) -> DataFrame:
    return df.withColumn(BUCKET, F.pmod(F.xxhash64(F.col(KEY)), F.lit(n_buckets)))


def _score_buckets(
    spark: SparkSession, tables: dict[str, InputTable], job: BucketJob, n_buckets: int
) -> DataFrame:
    sessions = _bucketed(tables[SESSIONS].frame, n_buckets).drop(KEY)
    others = _bucketed(_others_frame(spark, tables), n_buckets).drop(KEY)

    def run(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
        return score_bucket(job, left, right)

    return (
        sessions.groupBy(BUCKET)
        .cogroup(others.groupBy(BUCKET))
        .applyInPandas(run, schema=layout_schema(job.layout))
    )


def _raise_spark_input_error(exc: Exception, tables: dict[str, InputTable]) -> None:
    """A malformed CSV record found while Spark reads is a file-level problem (exit 2)."""
    if "MALFORMED" not in str(exc).upper():
        return
    csvs = [t for t in tables.values() if io.table_format(t.files[0]) == "csv"]
    named = [t for t in csvs if str(t.files[0]) in str(exc)] or csvs
    if named:
        raise InputFileError(named[0].source, "not a readable CSV file (a malformed record)")


@dataclass
class SparkRun:
    """One scoring run's fixed parts, on the driver."""

    cfg: ScoreRunConfig
    spark: SparkSession
    model: DropoutRiskModel
    meta: dict[str, Any]
    data: DataConfig
    tables: dict[str, InputTable]
    job: BucketJob
    layout: dict[str, dict[str, str]]  # every kind, histories included
    where: dict[str, str]
    n_buckets: int
    paths: dict[str, Path]
    clock: StageClock


def run_spark_scoring(cfg: ScoreRunConfig) -> ScoringSummary:
    """``run_scoring`` on Spark: validate and score every active client, write the set.

    Before any work, every output is checked (none may be, hold or lie in an input; each
    folder must be writable), the model file's digest is verified, and every input file's
    structure is checked, all before Spark starts. The outputs appear together or not at all.
    """
    started = time.perf_counter()
    clock = StageClock()
    paths = spark_output_paths(Path(cfg.output))
    inputs = input_files(cfg.data)
    io.check_output_folders([paths["scores"], paths["quarantine"], paths["reports"]], inputs)
    io.check_outputs([paths["validation"], paths["report"]], inputs)
    trk.setup_tracking(cfg.tracking.uri, cfg.tracking.experiment, cfg.paths.mlruns_dir)
    with tempfile.TemporaryDirectory(prefix="alliance-dropout-model-") as tmp:
        model_file, digest = trk.download_model_file(cfg.model_uri, tmp)
        model: DropoutRiskModel = trk.load_model_file(model_file, digest, cfg.model_uri)
        blob = model_file.read_bytes()
    assert digest is not None  # load_model_file refuses a model without one
    meta = trk.model_metadata(cfg.model_uri)
    data_cfg = scoring_data_config(cfg.data, model)
    clock.lap("model load")
    structure = check_structure(data_cfg)
    clock.lap("file checks")
    spark, created = spark_session(cfg.engine)
    try:
        clock.lap("spark start")
        run = _prepare(cfg, spark, model, blob, digest, meta, data_cfg, structure, paths, clock)
        return _execute(run, started)
    finally:
        if created:
            spark.stop()


def _prepare(
    cfg: ScoreRunConfig,
    spark: SparkSession,
    model: DropoutRiskModel,
    blob: bytes,
    digest: str,
    meta: dict[str, Any],
    data_cfg: DataConfig,
    structure: InputStructure,
    paths: dict[str, Path],
    clock: StageClock,
) -> SparkRun:
    configured = {
        SESSIONS: data_cfg.sessions,
        OUTCOMES: data_cfg.outcomes,
        CLIENTS: data_cfg.clients,
    }
    tables = {
        name: read_table(spark, name, str(configured[name]), structure) for name in structure.files
    }
    job = BucketJob(
        model=ModelShipment(cfg.model_uri, digest, spark.sparkContext.broadcast(blob)),
        model_id=meta["model_id"],
        # the limit is on the whole caseload: checked on the summed report, not per bucket
        data=dataclasses.replace(data_cfg, max_quarantine_share=1.0),
        run=cfg,
        columns={name: t.columns for name, t in tables.items()},
        date_columns={
            name: [
                f.name
                for f in t.frame.schema.fields
                if f.name in t.columns and isinstance(f.dataType, T.DateType)
            ]
            for name, t in tables.items()
        },
        sources={name: t.source for name, t in tables.items()},
        sha256={name: _digest(t.files) for name, t in tables.items()},
        warnings=structure.warnings,
        one_file={name: t.one_file for name, t in tables.items()},
        histories=_history_scope(cfg),
        top=cfg.engine.report_top_n,
    )
    clients_columns = tables[CLIENTS].columns if CLIENTS in tables else []
    frames, where = sample_frames(model, job, clients_columns)
    layout = output_layout(frames)
    job.layout = {k: v for k, v in layout.items() if k != HISTORY or job.histories != "none"}
    rows = sum(t.rows for t in tables.values())
    n_buckets = max(1, math.ceil(rows / cfg.engine.rows_per_bucket))
    spark.conf.set("spark.sql.shuffle.partitions", str(n_buckets))
    clock.lap("file checks")
    return SparkRun(
        cfg, spark, model, meta, data_cfg, tables, job, layout, where, n_buckets, paths, clock
    )


def _history_scope(cfg: ScoreRunConfig) -> str:
    if not cfg.scoring.report:
        return "none"
    return "all" if cfg.engine.report_scope is ReportScope.therapist else "top"


def _digest(files: list[Path]) -> str:
    """The input's SHA-256 (lineage in the validation report): of the file, or for a folder
    of the list of its files with theirs."""
    if len(files) == 1:
        return io.file_sha256(files[0])
    listing = "".join(f"{f}:{io.file_sha256(f)}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def _execute(run: SparkRun, started: float) -> ScoringSummary:
    cfg, paths, clock = run.cfg, run.paths, run.clock
    work = io.temp_path(paths["scores"], "staging")
    report_path: Path | None = None
    try:
        with io.staged_files(list(paths.values())) as staged:
            buckets_dir = work / "buckets"
            try:
                _score_buckets(run.spark, run.tables, run.job, run.n_buckets).write.partitionBy(
                    KIND
                ).parquet(str(buckets_dir))
            except Exception as exc:
                _raise_spark_input_error(exc, run.tables)
                raise
            clock.lap("validate + score buckets")
            buckets = run.spark.read.parquet(str(buckets_dir))
            summaries = [json.loads(r[0]) for r in _kind(buckets, REPORT, [REPORT_JSON]).collect()]
            summary = _check_caseload(summaries, run.data, run.tables)
            scored_columns = list(run.layout[SCORED])
            n_scored = int(summary["n_scored"])
            scored = _kind(buckets, SCORED, scored_columns)
            with_tiers(scored, n_scored, cfg).select(*scored_columns).orderBy(
                F.desc(cfg.scoring.tiers.risk), F.asc(c.CLIENT_ID)
            ).write.parquet(str(staged[paths["scores"]]))
            clock.lap("tiers + list")
            listed = run.spark.read.parquet(str(staged[paths["scores"]]))
            counts = {r[0]: int(r[1]) for r in listed.groupBy(c.RISK_TIER).count().collect()}
            tier_counts = {k: counts.get(k, 0) for k in c.RISK_TIERS}
            _write_quarantine(run, buckets, staged[paths["quarantine"]])
            io.write_json(summary["validation"], staged[paths["validation"]])
            clock.lap("quarantine + validation")
            if cfg.scoring.report:
                report_job = ReportJob(
                    cfg,
                    run.job.model,
                    run.meta,
                    summary["validation"],
                    int(summary["n_skipped_ended"]),
                    scored_columns,
                )
                if cfg.engine.report_scope is ReportScope.therapist:
                    report_path = paths["reports"]
                    _write_therapist_pages(buckets, listed, report_job, staged[report_path])
                else:
                    report_path = paths["report"]
                    top_n = cfg.engine.report_top_n
                    html = _top_page(buckets, listed, report_job, top_n, n_scored)
                    io.write_text(html, staged[report_path])
                clock.lap("report")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    clock.lap("write")
    n_quarantined = int(summary["validation"]["tables"][SESSIONS]["clients_quarantined"])
    return ScoringSummary(
        output=paths["scores"],
        report=report_path,
        n_scored=n_scored,
        n_skipped_ended=int(summary["n_skipped_ended"]),
        n_quarantined_clients=n_quarantined,
        tier_counts=tier_counts,
        seconds=time.perf_counter() - started,
        stage_seconds=clock.seconds,
    )


def _write_quarantine(run: SparkRun, buckets: DataFrame, folder: Path) -> None:
    columns = list(run.layout[QUARANTINE])
    quarantine = reconciled_quarantine(_kind(buckets, QUARANTINE, columns), run.tables, run.where)
    rank = F.create_map(*(F.lit(x) for i, t in enumerate(TABLE_ORDER) for x in (t, i)))
    ordered = quarantine.orderBy(rank[F.col("table")], F.col("source_file"), F.col("row_number"))
    ordered.select(*(F.col(f"`{col}`") for col in columns)).write.parquet(str(folder))


def _check_caseload(
    summaries: list[dict[str, Any]], data_cfg: DataConfig, tables: dict[str, InputTable]
) -> dict[str, Any]:
    """The whole caseload's summary; file-level problems only the rows could show raise."""
    if not summaries:
        raise InputFileError(tables[SESSIONS].source, "header but no data rows")
    report = merged_report([s["validation"] for s in summaries], data_cfg)
    for name, table in tables.items():
        counts = report["tables"].get(name)
        if counts is not None and counts["rows_in"] == 0:
            raise InputFileError(table.source, "header but no data rows")
    if report["quarantine"]["share"] > data_cfg.max_quarantine_share:
        raise QuarantineLimitExceeded(limit_message(report))
    return {
        "validation": report,
        "n_scored": sum(s["n_scored"] for s in summaries),
        "n_skipped_ended": sum(s["n_skipped_ended"] for s in summaries),
    }


def _top_page(
    buckets: DataFrame, listed: DataFrame, job: ReportJob, top_n: int, n_scored: int
) -> str:
    """The report of the caseload's riskiest clients, from the list and their histories."""
    top = pd.DataFrame(listed.limit(top_n).toPandas())
    prefix = KIND_PREFIX[HISTORY]
    columns = [f.name[len(prefix) :] for f in buckets.schema.fields if f.name.startswith(prefix)]
    keys = top[c.CLIENT_ID].tolist()
    histories = _kind(buckets, HISTORY, columns).where(F.col(c.CLIENT_ID).isin(keys)).toPandas()
    title = "Dropout risk: caseload review"
    if len(top) < n_scored:
        title += f", the {len(top)} riskiest of {n_scored} clients"
    return render_page(job, top, histories, title)


def _write_therapist_pages(
    buckets: DataFrame, listed: DataFrame, job: ReportJob, folder: Path
) -> None:
    """One page per therapist, rendered on the workers, written here one at a time."""
    prefix = KIND_PREFIX[HISTORY]
    columns = [f.name[len(prefix) :] for f in buckets.schema.fields if f.name.startswith(prefix)]
    # the list's therapist of each client, under other names: the list is grouped below too
    therapist_of = listed.select(F.col(c.CLIENT_ID).alias(KEY), F.col(c.THERAPIST_ID).alias(TABLE))
    histories = _kind(buckets, HISTORY, columns)
    histories = histories.join(therapist_of, histories[c.CLIENT_ID] == therapist_of[KEY])

    def render(scored: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        return therapist_pages(job, scored, rows)

    pages = (
        listed.groupBy(c.THERAPIST_ID)
        .cogroup(histories.groupBy(TABLE))
        .applyInPandas(render, schema="name string, html string")
    )
    folder.mkdir(parents=True)
    for page in pages.toLocalIterator():
        io.write_text(page["html"], folder / page["name"])
