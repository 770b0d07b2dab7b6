"""Reference outputs: digests of what reading, validation, features, reasons, the report and
writing produce on one fixed, messy caseload (issue 16: speed changes must not change outputs).

``tests/test_reference_outputs.py`` recomputes them and compares with the stored digests in
``tests/data/reference_outputs.json``, naming each output (and column) that differs. Record them
again only for a change that is *meant* to change outputs, and say so in its commit:

    .venv/bin/python -m tests.reference_outputs --write

The caseload is the simulator's, made to look like a real export: therapists who change within
an episode, extra gaps in session numbers, dates with times of day, the contract's NA spellings,
shuffled rows, an extra column, and a few clients with each kind of bad row (unreadable date,
score out of range, duplicate or invalid session number, dates out of order, a score on a
no-show, unknown attendance, no therapist). Contributions for the reasons are drawn from a fixed
seed (no model is trained: the digests do not depend on modeling).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout.config import DataConfig
from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.features import grouped as g
from alliance_dropout.features.builder import ID_COLUMNS, build_features
from alliance_dropout.features.dictionary import feature_dictionary
from alliance_dropout.features.ruptures import rupture_rows
from alliance_dropout.reasons import phrases, top_reasons
from alliance_dropout.report import ReportMeta, render_caseload_report
from alliance_dropout.simulate import simulate
from alliance_dropout.validation import ValidatedData, load_raw_tables, validate_tables

STORED = Path(__file__).parent / "data" / "reference_outputs.json"
N_CLIENTS = 3000
SEED = 16
# learned features the model adds (expected course); the reasons phrase them too
LEARNED = ("alliance_client_latest_vs_expected", "symptom_latest_vs_expected")


# --- the messy export ---------------------------------------------------------------------------


def messy_export(n_clients: int = N_CLIENTS, seed: int = SEED) -> pd.DataFrame:
    """Session rows as a clinic's CSV export holds them: every cell text, some of them bad."""
    data = simulate(SimulateConfig(n_clients=n_clients, n_therapists=60, seed=seed))
    s = data.sessions.sort_values([c.CLIENT_ID, c.SESSION_NUMBER], ignore_index=True)
    rng = np.random.default_rng(seed)
    codes = pd.factorize(s[c.CLIENT_ID])[0]
    start = g.client_start_from_codes(codes)
    position = g.position_in_client(start)
    # ~10% of episodes change therapist from a random session on
    therapists = np.sort(s[c.THERAPIST_ID].unique())
    moves = rng.random(n_clients) < 0.10
    move_at = rng.integers(1, 8, n_clients)
    moved = moves[codes] & (position >= move_at[codes])
    other = therapists[rng.integers(0, len(therapists), n_clients)][codes]
    therapist = np.where(moved, other, s[c.THERAPIST_ID].to_numpy(dtype=object))
    # ~4% more gaps in the numbering
    gap = rng.random(len(s)) < 0.04
    number = s[c.SESSION_NUMBER].to_numpy() + (np.cumsum(gap) - np.cumsum(gap)[start])
    out = pd.DataFrame(
        {
            c.CLIENT_ID: s[c.CLIENT_ID].astype(str),
            c.THERAPIST_ID: pd.Series(therapist, dtype="str"),
            c.SESSION_NUMBER: pd.Series(number).astype(str),
            c.SESSION_DATE: s[c.SESSION_DATE].dt.strftime("%Y-%m-%d"),
            c.ATTENDANCE: s[c.ATTENDANCE].astype(str),
        }
    )
    for col in c.SESSION_SCORES:
        if col in s:
            out[col] = s[col].map(lambda v: "" if pd.isna(v) else repr(float(v))).astype(str)
    out["room"] = rng.choice(["A", "B", "C"], len(out))  # an extra column, ignored
    # some dates with a time of day, in two ISO spellings
    timed = rng.random(len(out)) < 0.05
    out.loc[timed, c.SESSION_DATE] += "T09:30:00"
    spaced = ~timed & (rng.random(len(out)) < 0.03)
    out.loc[spaced, c.SESSION_DATE] += " 17:05"
    # the contract's NA spellings for some empty scores
    for col in (c.ALLIANCE_CLIENT, c.SYMPTOM_SCORE):
        empty = out[col] == ""
        out.loc[empty, col] = rng.choice(["", "NA", "null", "nan", "NaN"], int(empty.sum()))
    _bad_rows(out, rng, start)
    order = rng.permutation(len(out))
    return out.iloc[order].reset_index(drop=True)


def _bad_rows(out: pd.DataFrame, rng: np.random.Generator, start: np.ndarray) -> None:
    """One kind of bad row per chosen client (about 2% of clients in all)."""
    firsts, rows_per_client = np.unique(start, return_counts=True)
    long_enough = firsts[rows_per_client >= 3]
    later = rng.choice(long_enough, 13 * 5, replace=False).reshape(13, 5) + 2
    for rows, (col, value) in zip(
        later,
        [
            (c.SESSION_DATE, "2024-02-30"),
            (c.SESSION_DATE, "next week"),
            (c.ALLIANCE_CLIENT, "7"),
            (c.SYMPTOM_SCORE, "inf"),
            (c.ALLIANCE_THERAPIST, "good"),
            (c.SESSION_NUMBER, "2.5"),
            (c.SESSION_NUMBER, "0"),
            (c.ATTENDANCE, "late"),
            (c.THERAPIST_ID, ""),
            (c.CLIENT_ID, ""),
        ],
        strict=False,
    ):
        out.loc[rows, col] = value
    # a duplicated session number, dates out of order, a score on a no-show
    out.loc[later[10], c.SESSION_NUMBER] = out.loc[later[10] - 1, c.SESSION_NUMBER].to_numpy()
    out.loc[later[11], c.SESSION_DATE] = "2001-01-01"
    out.loc[later[12], c.ATTENDANCE] = c.NO_SHOW
    out.loc[later[12], c.ALLIANCE_CLIENT] = "4.0"


def same_rows_two_formats(sessions: pd.DataFrame, workdir: Path) -> dict[str, pd.DataFrame]:
    """Latest-row features of the same rows read from a CSV (ISO dates) and from a Parquet file
    as pyarrow writes it (``date32`` dates), each validated, and of the Parquet file as read."""
    rows = sessions.assign(**{c.SESSION_DATE: sessions[c.SESSION_DATE].dt.floor("D")})
    table = pa.Table.from_pandas(rows, preserve_index=False)
    dates = pa.array(rows[c.SESSION_DATE].dt.date.to_numpy(), pa.date32())
    table = table.set_column(table.schema.get_field_index(c.SESSION_DATE), c.SESSION_DATE, dates)
    paths = {"csv": workdir / "same.csv", "date32_parquet": workdir / "same.parquet"}
    pq.write_table(table, paths["date32_parquet"])
    io.write_table(rows, paths["csv"])
    out = {}
    for source, path in paths.items():
        cfg = DataConfig(sessions=str(path))
        validated = validate_tables(load_raw_tables(cfg, require_outcomes=False), cfg).sessions
        out[source] = build_features(validated, FeaturesConfig(), c.PHQ9, c.WAI_SR)
    out["date32_parquet_as_read"] = build_features(
        io.read_table(paths["date32_parquet"]), FeaturesConfig(), c.PHQ9, c.WAI_SR
    )
    return out


def validated_export(workdir: Path) -> tuple[pd.DataFrame, Path, ValidatedData]:
    """The messy export, its CSV file in ``workdir`` and what validation makes of it."""
    workdir.mkdir(parents=True, exist_ok=True)
    export = messy_export()
    csv_path = io.write_table(export, workdir / "sessions.csv")
    cfg = DataConfig(sessions=str(csv_path), max_quarantine_share=1.0)
    return export, csv_path, validate_tables(load_raw_tables(cfg, require_outcomes=False), cfg)


# --- digests ------------------------------------------------------------------------------------


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:20]


def column_digest(values: pd.Series) -> str:
    """Digest of one column's dtype and values (bit for bit for numbers and dates)."""
    kind = str(values.dtype)
    if values.dtype.kind in "biufcmM":
        data = np.ascontiguousarray(values.to_numpy())
        return _digest([kind.encode(), data.dtype.str.encode(), data.tobytes()])
    text = ["\x00" if pd.isna(v) else str(v) for v in values.tolist()]
    return _digest([kind.encode(), "\x1f".join(text).encode("utf-8")])


def frame_digests(df: pd.DataFrame) -> dict[str, str]:
    """Per-column digests, plus the shape and the index."""
    out = {"_shape": f"{df.shape[0]}x{df.shape[1]}", "_index": column_digest(df.index.to_series())}
    out |= {str(col): column_digest(df[col]) for col in df.columns}
    return out


def text_digest(text: str | bytes) -> str:
    return _digest([text if isinstance(text, bytes) else text.encode("utf-8")])


# --- the outputs --------------------------------------------------------------------------------


def _contributions(X: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Values as a model sees them (features + learned), fixed-seed contributions and risks."""
    rng = np.random.default_rng(seed)
    values = X.drop(columns=list(ID_COLUMNS)).astype("float64")
    for name in LEARNED:
        values[name] = np.round(rng.normal(0, 1.5, len(values)), 2)
    values["therapist_dropout_rate"] = rng.uniform(0.1, 0.3, len(values))
    scale = rng.uniform(0.0, 0.6, values.shape[1])
    contrib = rng.normal(0, 1, values.shape) * scale * (rng.random(values.shape) < 0.6)
    contributions = pd.DataFrame(contrib, columns=values.columns, index=values.index)
    risk = 1 / (1 + np.exp(-(contrib.sum(axis=1) - 1.5)))
    return values, contributions, risk


def compute(workdir: Path) -> dict[str, Any]:
    """Every reference output's digests; files are written into ``workdir``."""
    export, csv_path, validated = validated_export(workdir)
    report = {**validated.report, "sources": "(paths left out)"}
    # the file's path (a temporary folder) is not an output of the code
    quarantine = validated.quarantine.assign(source_file=csv_path.name)
    out: dict[str, Any] = {
        "validated_sessions": frame_digests(validated.sessions),
        "quarantine": frame_digests(quarantine),
        "validation_report": text_digest(io.to_json(report)),
    }

    features_cfg = FeaturesConfig()
    scales = (c.PHQ9, c.WAI_SR)
    sessions = validated.sessions
    latest = build_features(sessions, features_cfg, *scales)
    out["features_latest"] = frame_digests(latest)
    out["features_landmarks"] = frame_digests(
        build_features(sessions, features_cfg, *scales, landmarks=features_cfg.landmarks)
    )
    for source, features in same_rows_two_formats(sessions, workdir).items():
        if source != "date32_parquet_as_read":  # not a stage's output: the features benchmark's
            out[f"features_latest_from_{source}"] = frame_digests(features)

    values, contributions, risk = _contributions(latest, SEED)
    f = features_cfg
    phrase_for = phrases(
        f.alliance.recent_window,
        f.attendance.recent_window,
        c.PHQ9,
        f.symptoms.early_response_session,
        recent_symptom=f.symptoms.recent_window,
        low_cutoff=f.alliance.low_cutoff,
        repair_window=f.ruptures.repair_window,
    )
    definitions = {spec.name: spec.definition for spec in feature_dictionary(features_cfg)}
    reasons = top_reasons(contributions, values, definitions, phrase_for, 3, risk=risk)
    out["reasons"] = text_digest("\n".join(reasons))
    out["reasons_without_risk"] = text_digest(
        "\n".join(top_reasons(contributions, values, definitions, phrase_for, 3))
    )

    scored = _scored(latest, risk, reasons, values)
    histories = _histories(sessions, features_cfg)
    meta = ReportMeta(
        title="Dropout risk: caseload review",
        generated_at=datetime(2026, 1, 5, 9, 30),
        model_name="alliance-dropout",
        model_version="7",
        model_uri="models:/alliance-dropout@champion",
        test_metrics={"ROC AUC": (0.74, 0.71, 0.78), "Brier score": (0.12, None, None)},
        data_start=date(2020, 1, 6),
        data_end=date(2026, 1, 2),
        validation_summary={"session rows in": len(export), "clients scored": len(scored)},
        tier_definition="high = the riskiest 10% of this caseload",
        tier_mode="share",
        max_charts=1500,
    )
    out["report_html"] = text_digest(render_caseload_report(scored, histories, meta))
    for name, frame in (("risk_list_csv", scored), ("quarantine_csv", quarantine)):
        out[name] = text_digest(io.write_table(frame, workdir / f"{name}.csv").read_bytes())
    parquet = io.write_table(scored, workdir / "risk.parquet")
    out["risk_list_parquet_frame"] = frame_digests(pd.read_parquet(parquet))
    return out


def _scored(
    latest: pd.DataFrame, risk: np.ndarray, reasons: list[str], values: pd.DataFrame
) -> pd.DataFrame:
    """A risk list as scoring writes it (columns, ranking, tiers), from the fixed risks."""
    out = latest[list(ID_COLUMNS)].rename(
        columns={"landmark_session": c.AS_OF_SESSION, "landmark_date": c.AS_OF_DATE}
    )
    out[c.DROPOUT_RISK] = risk
    # horizon risks as fixed shares of the eventual one (the digests do not depend on modeling)
    out[c.dropout_risk_within(1)] = risk * 0.1
    out[c.dropout_risk_within(4)] = risk * 0.4
    out[c.TOP_REASONS] = reasons
    out[c.FLAG_UNREPAIRED_RUPTURE] = values["rupture_open"].fillna(0).to_numpy() > 0
    out[c.FLAG_LOW_ALLIANCE] = values["alliance_client_latest"].to_numpy() < 3.0
    out[c.FLAG_OFF_EXPECTED_COURSE] = values["symptom_latest_vs_expected"].to_numpy() >= 3
    out[c.FLAG_RECENT_MISSED] = values["attendance_recent_missed_share"].fillna(0).to_numpy() > 0
    out[c.FLAG_BEYOND_TRAINING_RANGE] = out[c.AS_OF_SESSION].to_numpy() > 12
    out = out.sort_values([c.DROPOUT_RISK, c.CLIENT_ID], ascending=[False, True], kind="stable")
    out = out.reset_index(drop=True)
    rank = np.arange(len(out))
    out[c.RISK_TIER] = np.where(
        rank < round(0.1 * len(out)),
        "high",
        np.where(rank < round(0.3 * len(out)), "medium", "low"),
    )
    out[c.MODEL_ID] = "m-reference"
    return out[list(c.RISK_LIST_COLUMNS)]


def _histories(sessions: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    """Session rows for the report's charts, with rupture rows marked (as scoring does)."""
    s = sessions.sort_values([c.CLIENT_ID, c.SESSION_NUMBER], kind="stable").reset_index(drop=True)
    start = g.client_start_from_codes(pd.factorize(s[c.CLIENT_ID])[0])
    keep = [
        c.CLIENT_ID,
        c.SESSION_NUMBER,
        c.SESSION_DATE,
        c.ATTENDANCE,
        c.ALLIANCE_CLIENT,
        c.ALLIANCE_THERAPIST,
        c.SYMPTOM_SCORE,
    ]
    out = s[keep].copy()
    out["rupture"] = rupture_rows(start, s[c.ALLIANCE_CLIENT].to_numpy(dtype=float), cfg.ruptures)
    return out


def differences(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """'output' or 'output.column' for every digest that is not the stored one."""
    found = []
    for name in sorted(set(stored) | set(now)):
        a, b = stored.get(name), now.get(name)
        if isinstance(a, dict) and isinstance(b, dict):
            found += [f"{name}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            found.append(name)
    return found


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the digests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        now = compute(Path(tmp))
    if args.write:
        STORED.parent.mkdir(parents=True, exist_ok=True)
        STORED.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"recorded {STORED}")
        return
    changed = differences(json.loads(STORED.read_text(encoding="utf-8")), now)
    print("identical" if not changed else "changed: " + ", ".join(changed))


if __name__ == "__main__":
    main()
