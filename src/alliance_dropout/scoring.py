"""Caseload scoring: each client's calibrated risk as of its latest row, ranked and explained."""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout import tracking as trk
from alliance_dropout.config import DataConfig, ScoreRunConfig
from alliance_dropout.config.scoring import ScoringConfig, TierConfig, TierMode
from alliance_dropout.errors import ConfigError
from alliance_dropout.features.builder import ID_COLUMNS
from alliance_dropout.features.ruptures import rupture_rows
from alliance_dropout.modeling.models import DropoutRiskModel
from alliance_dropout.reasons import phrases, top_reasons
from alliance_dropout.report import ReportMeta, render_caseload_report
from alliance_dropout.validation import (
    SESSIONS,
    RawTables,
    ValidatedData,
    input_files,
    load_raw_tables,
    sessions_in_order,
    validate_tables,
)

OUTPUT_COLUMNS = c.RISK_LIST_COLUMNS  # with the default horizons; see c.risk_list_columns


@dataclass
class ScoredCaseload:
    scored: pd.DataFrame  # OUTPUT_COLUMNS, ranked by risk
    histories: pd.DataFrame  # session rows of scored clients, with a 'rupture' marker
    n_skipped_ended: int


def active_sessions(
    sessions: pd.DataFrame, outcomes: pd.DataFrame | None
) -> tuple[pd.DataFrame, int]:
    """Drop clients whose episode already ended (completed or dropout); count them."""
    if outcomes is None:
        return sessions, 0
    ended = outcomes.loc[outcomes[c.STATUS].isin([c.COMPLETED, c.DROPOUT]), c.CLIENT_ID]
    mask = sessions[c.CLIENT_ID].isin(ended)
    return sessions[~mask], int(sessions.loc[mask, c.CLIENT_ID].nunique())


def assign_tiers(risk: np.ndarray, cfg: TierConfig) -> np.ndarray:
    """'high', 'medium' or 'low' per client (risk order already known to the caller)."""
    if cfg.mode is TierMode.probability:
        return np.where(risk >= cfg.high, "high", np.where(risk >= cfg.medium, "medium", "low"))
    n = len(risk)
    rank = np.empty(n, dtype=float)
    rank[np.argsort(-risk, kind="stable")] = np.arange(n)
    return np.where(
        rank < round(cfg.high * n), "high", np.where(rank < round(cfg.medium * n), "medium", "low")
    )


def _flags(
    X: pd.DataFrame, as_of: np.ndarray, model: DropoutRiskModel, cfg: ScoringConfig
) -> pd.DataFrame:
    def col(name: str) -> pd.Series:
        return X[name] if name in X else pd.Series(np.nan, index=X.index)

    low_cutoff = model.features.alliance.low_cutoff
    return pd.DataFrame(
        {
            c.FLAG_UNREPAIRED_RUPTURE: col("rupture_open").fillna(0) > 0,
            c.FLAG_LOW_ALLIANCE: col("alliance_client_latest") < low_cutoff,
            c.FLAG_OFF_EXPECTED_COURSE: col("symptom_latest_vs_expected") >= cfg.off_course_points,
            c.FLAG_RECENT_MISSED: col("attendance_recent_missed_share").fillna(0) > 0,
            c.FLAG_BEYOND_TRAINING_RANGE: as_of > model.last_trained_session,
        },
        index=X.index,
    )


class StageClock:
    """Seconds spent per named stage (summed over chunks), for the summary and the benchmark."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


def score_chunk(
    sessions: pd.DataFrame,
    model: DropoutRiskModel,
    cfg: ScoringConfig,
    clock: StageClock | None = None,
) -> pd.DataFrame:
    """Risk, reasons and flags for the clients of one chunk of validated session rows."""
    clock = clock or StageClock()
    clock.lap("score (other)")
    X = model.landmark_frame(sessions, None)
    clock.lap("features")
    risks = model.predict_horizons(X, list(cfg.horizons))
    risk = risks[0]
    clock.lap("model")
    values = model.transform_features(X)  # incl. learned context, as the model sees them
    contrib = model.contributions(X)
    definitions = {s.name: s.definition for s in model.feature_specs()}
    f = model.features
    phrase_for = phrases(
        f.alliance.recent_window,
        f.attendance.recent_window,
        model.symptom,
        f.symptoms.early_response_session,
        recent_symptom=f.symptoms.recent_window,
        low_cutoff=f.alliance.low_cutoff,
        repair_window=f.ruptures.repair_window,
    )
    out = X[list(ID_COLUMNS)].rename(
        columns={"landmark_session": "as_of_session", "landmark_date": "as_of_date"}
    )
    for name, r in zip(c.risk_columns(cfg.horizons), risks, strict=True):
        out[name] = r
    out["top_reasons"] = top_reasons(
        contrib, values, definitions, phrase_for, cfg.n_reasons, risk=risk
    )
    as_of = X["landmark_session"].to_numpy()
    flagged = pd.concat([out, _flags(values, as_of, model, cfg)], axis=1)
    clock.lap("reasons")
    return flagged


def client_chunks(sessions: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    codes = pd.factorize(sessions[c.CLIENT_ID])[0]
    n_chunks = max(1, int(np.ceil((codes.max() + 1) / size))) if len(codes) else 1
    if n_chunks == 1:
        return [sessions]
    chunk_of_row = codes // size
    if np.all(np.diff(chunk_of_row) >= 0):  # rows grouped by client: slices, not masks
        edges = np.searchsorted(chunk_of_row, np.arange(n_chunks + 1))
        return [sessions.iloc[a:b] for a, b in itertools.pairwise(edges.tolist())]
    return [sessions[chunk_of_row == k] for k in range(n_chunks)]


def score_caseload(
    sessions: pd.DataFrame,
    outcomes: pd.DataFrame | None,
    *,
    model: DropoutRiskModel,
    model_id: str,
    cfg: ScoringConfig,
    progress: bool = True,
    clock: StageClock | None = None,
) -> ScoredCaseload:
    """Score every active client as of its latest row; rank by risk, highest first (the risk
    the tiers follow: ``scoring.tiers.risk``)."""
    columns = list(c.risk_list_columns(cfg.horizons))
    by = cfg.tiers.risk
    if by != c.DROPOUT_RISK and not model.has_horizons:
        raise ConfigError(
            f"scoring.tiers.risk={by}: this model ({model.model_kind}) answers the eventual "
            "risk only; use a hazard model (model.framing=hazard) or "
            "scoring.tiers.risk=dropout_risk"
        )
    active, n_skipped = active_sessions(sessions, outcomes)
    chunks = client_chunks(active, cfg.chunk_clients)
    parts = [
        score_chunk(chunk, model, cfg, clock)
        for chunk in tqdm(
            chunks, desc="scoring", unit="chunk", disable=not progress or len(chunks) < 2
        )
        if len(chunk)
    ]
    scored = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    scored = scored.sort_values(
        [by, c.CLIENT_ID], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    scored["risk_tier"] = assign_tiers(scored[by].to_numpy(dtype=float), cfg.tiers)
    scored["model_id"] = model_id
    scored = scored[columns]
    return ScoredCaseload(scored, caseload_histories(active, model), n_skipped)


def caseload_histories(sessions: pd.DataFrame, model: DropoutRiskModel) -> pd.DataFrame:
    """Session rows for the report's charts, with rupture rows marked by the model's own rule."""
    s = sessions_in_order(sessions)
    codes = pd.factorize(s[c.CLIENT_ID])[0]
    first = np.r_[0, np.flatnonzero(np.diff(codes)) + 1] if len(codes) else np.array([], int)
    client_start = np.repeat(first, np.diff(np.r_[first, len(codes)])).astype(np.int64)
    alliance = s[c.ALLIANCE_CLIENT].to_numpy(dtype=float)
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
    out["rupture"] = rupture_rows(client_start, alliance, model.features.ruptures)
    return out


def scoring_data_config(data: DataConfig, model: DropoutRiskModel) -> DataConfig:
    """The data config to read a caseload with: the model's covariates are client features."""
    names = model.settings.covariates.names
    return dataclasses.replace(data, client_features=sorted({*data.client_features, *names}))


def validate_and_score(
    raw: RawTables,
    data_cfg: DataConfig,
    model: DropoutRiskModel,
    model_id: str,
    cfg: ScoringConfig,
    progress: bool = True,
    clock: StageClock | None = None,
) -> tuple[ValidatedData, ScoredCaseload]:
    """Validate the raw tables, then score their active clients (everything after reading;
    the Spark engine runs it on each bucket of clients)."""
    clock = clock or StageClock()
    validated = validate_tables(raw, data_cfg)
    sessions = model.settings.covariates.attach_to_sessions(
        validated.sessions, validated.clients, raw.sources[SESSIONS]
    )
    clock.lap("validate")
    caseload = score_caseload(
        sessions,
        validated.outcomes,
        model=model,
        model_id=model_id,
        cfg=cfg,
        progress=progress,
        clock=clock,
    )
    return validated, caseload


@dataclass
class ScoringSummary:
    output: Path
    report: Path | None
    n_scored: int
    n_skipped_ended: int
    n_quarantined_clients: int
    tier_counts: dict[str, int]
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        tiers = ", ".join(f"{k} {v}" for k, v in self.tier_counts.items())
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stage_seconds.items())
        return (
            f"scored {self.n_scored} clients; skipped {self.n_skipped_ended} already ended; "
            f"quarantined {self.n_quarantined_clients}; tiers: {tiers}; {self.seconds:.1f} s"
            + (f" ({stages} s)" if stages else "")
        )


def output_paths(output: Path) -> dict[str, Path]:
    """Where scoring writes: the list (by its suffix), and beside it report and quarantine."""
    stem = output.with_suffix("")
    return {
        "scores": output,
        "report": Path(f"{stem}.html"),
        "quarantine": Path(f"{stem}.quarantine.csv"),
        "validation": Path(f"{stem}.validation.json"),
    }


def run_scoring(cfg: ScoreRunConfig, progress: bool = True) -> ScoringSummary:
    """Validate a sessions export, score its active clients, write the list and the report.

    Before any work, every output is checked: none may be an input file, and each must be
    writable (OutputPathError otherwise). Every file is written to a temporary name and the
    set is moved into place only once all of them are complete, so a failed run changes
    nothing; a previous run's report is removed when this run writes none.
    """
    started = time.perf_counter()
    clock = StageClock()
    output = Path(cfg.output)
    io.table_format(output)  # fail on a bad suffix before any work
    paths = output_paths(output)
    io.check_outputs(paths.values(), input_files(cfg.data))
    # scoring only reads the registry: a read-only account (an analyst, a reviewer) may score
    trk.setup_tracking(
        cfg.tracking.uri, cfg.tracking.experiment, cfg.paths.mlruns_dir, writes=False
    )
    # the model first: it fails fast, and it names the covariates the clients table must hold
    model = trk.load_risk_model(cfg.model_uri)
    meta = trk.model_metadata(cfg.model_uri)
    data_cfg = scoring_data_config(cfg.data, model)
    clock.lap("model load")
    raw = load_raw_tables(data_cfg, require_outcomes=False)
    clock.lap("read")
    validated, caseload = validate_and_score(
        raw, data_cfg, model, meta["model_id"], cfg.scoring, progress, clock
    )
    tiers = caseload.scored["risk_tier"].value_counts().reindex(["high", "medium", "low"])
    tier_counts = {k: int(v) for k, v in tiers.fillna(0).items()}
    n_quarantined = int(validated.report["tables"]["sessions"]["clients_quarantined"])
    with io.staged_files(list(paths.values())) as staged:
        io.write_table(caseload.scored, staged[paths["scores"]])
        io.write_table(validated.quarantine, staged[paths["quarantine"]])
        io.write_json(validated.report, staged[paths["validation"]])
        clock.lap("write")
        if cfg.scoring.report:
            html = render_caseload_report(
                caseload.scored,
                caseload.histories,
                report_meta(cfg, meta, model, validated.report, caseload, tier_counts),
            )
            clock.lap("report")
            io.write_text(html, staged[paths["report"]])
    clock.lap("write")
    return ScoringSummary(
        output=output,
        report=paths["report"] if cfg.scoring.report else None,
        n_scored=len(caseload.scored),
        n_skipped_ended=caseload.n_skipped_ended,
        n_quarantined_clients=n_quarantined,
        tier_counts=tier_counts,
        seconds=time.perf_counter() - started,
        stage_seconds=clock.seconds,
    )


def report_meta(
    cfg: ScoreRunConfig,
    meta: dict[str, Any],
    model: DropoutRiskModel,
    validation_report: dict[str, Any],
    caseload: ScoredCaseload,
    tier_counts: dict[str, int],
) -> ReportMeta:
    """The report header: model, its test-set performance, data range, validation summary."""
    dates = caseload.histories[c.SESSION_DATE]
    sessions = validation_report["tables"]["sessions"]
    summary = {
        "session rows in": sessions["rows_in"],
        "session rows validated": sessions["rows_validated"],
        "session rows quarantined": sessions["rows_quarantined"],
        "clients scored": len(caseload.scored),
        "clients skipped (episode already ended)": caseload.n_skipped_ended,
        "clients quarantined": sessions["clients_quarantined"],
        **{
            f"failed check: {name}": n
            for name, n in validation_report.get("checks", {}).items()
            if n
        },
    }
    today = datetime.now()
    return ReportMeta(
        title="Dropout risk: caseload review",
        generated_at=today,
        model_name=meta["model_name"],
        model_version=meta["model_version"],
        model_uri=cfg.model_uri,
        test_metrics=meta["test_metrics"],
        data_start=(dates.min() if len(dates) else today).date(),
        data_end=(dates.max() if len(dates) else today).date(),
        symptom_scale=model.symptom,
        alliance_scale=model.alliance,
        validation_summary=summary,
        tier_counts=tier_counts,
        tier_definition=cfg.scoring.tiers.describe(),
        tier_mode=cfg.scoring.tiers.mode.value,
        test_set_note=meta.get("test_set_note", ""),
        max_charts=cfg.scoring.report_max_charts,
    )
