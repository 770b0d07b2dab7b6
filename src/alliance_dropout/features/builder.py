"""The landmark builder: one feature row per prediction point (client x landmark session).

Every family computes, for every session row, its features as of that row (from that row and
the client's earlier rows only). The builder sorts once, computes all rows family by family and
keeps the landmark rows (training) or each client's latest row (scoring).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.contract import Scale
from alliance_dropout.features import alliance as alliance_family
from alliance_dropout.features import attendance, ruptures, sudden_gains, symptoms
from alliance_dropout.features import grouped as g
from alliance_dropout.features.covariates import Covariates
from alliance_dropout.features.dictionary import feature_dictionary
from alliance_dropout.progress import progress
from alliance_dropout.schemas import sorted_text_codes

FEATURE_DTYPE = np.float32
ID_COLUMNS = ("client_id", "therapist_id", "landmark_session", "landmark_date")
_SECONDS_PER_DAY = 86_400.0
# Clients are processed a chunk of about this many rows at a time: the per-row intermediates of
# a chunk (a few MB each) then stay in cache and reuse freed memory instead of faulting in new
# pages. Measured on 2.8M rows: 2M-row chunks 3.3 s, 250k-row chunks 2.65 s, 50k 2.85 s.
CHUNK_ROWS = 250_000
# Chunks built at once, in threads (the project's machines have 2 cores).
WORKERS = min(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class FeatureSettings:
    """What building features needs besides the rows: the families' config and the two scales.

    They travel together from the config to the builder, the fitted model and the reasons.
    """

    features: FeaturesConfig
    symptom: Scale
    alliance: Scale
    covariates: Covariates = field(default_factory=Covariates)

    def build(self, sessions: pd.DataFrame, landmarks: Sequence[int] | None = None) -> pd.DataFrame:
        """:func:`build_features` under these settings, plus the baseline covariate columns
        (from the session rows' covariate columns: see ``Covariates.attach_to_sessions``)."""
        X = build_features(sessions, self.features, self.symptom, self.alliance, landmarks)
        return self.covariates.features(X, sessions)


def feature_columns(cfg: FeaturesConfig) -> list[str]:
    """Names of the feature columns :func:`build_features` returns under ``cfg``, in order."""
    return [spec.name for spec in feature_dictionary(cfg)]


def _sort_order(sessions: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray]:
    """Row order by (client, session_number) (None if already sorted) and sorted client codes."""
    codes = sorted_text_codes(sessions[c.CLIENT_ID])
    if codes is None:
        codes, _ = pd.factorize(sessions[c.CLIENT_ID], sort=True)
    number = sessions[c.SESSION_NUMBER].to_numpy(dtype=np.int64)
    step_client, step_number = np.diff(codes), np.diff(number)
    if np.all((step_client > 0) | ((step_client == 0) & (step_number > 0))):
        return None, codes
    order = np.lexsort((number, codes))  # stable
    sorted_codes, sorted_number = codes[order], number[order]
    if np.any((np.diff(sorted_codes) == 0) & (np.diff(sorted_number) == 0)):
        raise ValueError("sessions: session_number repeats within a client (validate first)")
    return order, sorted_codes


def _column(sessions: pd.DataFrame, name: str, order: np.ndarray | None) -> np.ndarray:
    """A float64 column in sorted order; all-NaN where the export lacks the column."""
    if name not in sessions.columns:
        return np.full(len(sessions), np.nan)
    values = sessions[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return values if order is None else values[order]


def session_arrays(
    sessions: pd.DataFrame, order: np.ndarray | None, codes: np.ndarray
) -> g.SessionArrays:
    """The per-row arrays of ``sessions`` in (client, session_number) order."""

    def sorted_(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    attendance_ = sessions[c.ATTENDANCE]
    attended = sorted_(attendance_.eq(c.ATTENDED).to_numpy(dtype=bool, na_value=False))
    dates = sessions[c.SESSION_DATE].to_numpy().astype("datetime64[s]")
    day = np.where(np.isnat(dates), np.nan, dates.astype(np.int64) / _SECONDS_PER_DAY)

    def score(name: str) -> np.ndarray:
        # the contract puts scores on attended rows only; enforce it rather than trust it
        return np.where(attended, _column(sessions, name, order), np.nan)

    return g.SessionArrays(
        client_start=g.client_start_from_codes(codes),
        session_number=sorted_(sessions[c.SESSION_NUMBER].to_numpy(dtype=np.float64)),
        day=sorted_(day),
        attended=attended,
        cancelled=sorted_(attendance_.eq(c.CANCELLED).to_numpy(dtype=bool, na_value=False)),
        no_show=sorted_(attendance_.eq(c.NO_SHOW).to_numpy(dtype=bool, na_value=False)),
        alliance_client=score(c.ALLIANCE_CLIENT),
        alliance_therapist=score(c.ALLIANCE_THERAPIST),
        alliance_goal=score(c.ALLIANCE_GOAL),
        alliance_task=score(c.ALLIANCE_TASK),
        alliance_bond=score(c.ALLIANCE_BOND),
        symptom=score(c.SYMPTOM_SCORE),
    )


def _families(
    rows: g.SessionArrays, cfg: FeaturesConfig, symptom: Scale, at: np.ndarray
) -> Iterator[dict[str, np.ndarray]]:
    """Features at the rows ``at``, family by family (one at a time, to bound memory)."""
    on = cfg.enabled
    if on.alliance:
        yield alliance_family.rater_features(
            "alliance_client", rows, rows.alliance_client, cfg.alliance, at
        )
        yield alliance_family.rater_features(
            "alliance_therapist", rows, rows.alliance_therapist, cfg.alliance, at
        )
        yield alliance_family.subscale_features(rows, at)
    if on.dual_perspective:
        yield alliance_family.dual_perspective_features(rows, cfg.dual_perspective, at)
    if on.ruptures:
        per_row = ruptures.rupture_features(
            rows.client_start, rows.alliance_client, cfg.ruptures, attended=rows.attended
        )
        yield {name: values[at] for name, values in per_row.items()}
    if on.symptoms:
        yield symptoms.symptom_features(rows, cfg.symptoms, symptom, at)
    if on.sudden_gains:
        per_row = sudden_gains.sudden_gain_features(
            rows.client_start, rows.symptom, cfg.sudden_gains, symptom, attended=rows.attended
        )
        yield {name: values[at] for name, values in per_row.items()}
    if on.alliance_symptom:
        yield symptoms.alliance_symptom_features(rows, cfg.alliance_symptom, at)
    if on.attendance:
        yield attendance.attendance_features(rows, cfg.attendance, at)


def _prediction_rows(rows: g.SessionArrays, landmarks: Sequence[int] | None) -> np.ndarray:
    """Sorted-row indices of the prediction points."""
    if landmarks is None:
        return np.flatnonzero(g.is_client_end(rows.client_start))
    # a client without a row at session L has no example at L: selection needs no later rows
    return np.flatnonzero(np.isin(rows.session_number, np.asarray(landmarks, dtype=np.float64)))


def _client_chunks(client_start: np.ndarray, chunk_rows: int) -> list[tuple[int, int]]:
    """Row ranges [first, end) of about ``chunk_rows`` rows that never split a client."""
    n = client_start.shape[0]
    cuts = np.unique(client_start[np.arange(chunk_rows, n, max(chunk_rows, 1))])
    edges = [0, *(int(cut) for cut in cuts if cut > 0), n]
    return list(itertools.pairwise(edges))


def _check_scales(cfg: FeaturesConfig, alliance_scale: Scale) -> None:
    if not alliance_scale.min <= cfg.alliance.low_cutoff <= alliance_scale.max:
        raise ValueError(
            f"features.alliance.low_cutoff {cfg.alliance.low_cutoff} lies outside the "
            f"{alliance_scale.name} range [{alliance_scale.min}, {alliance_scale.max}]"
        )


def _empty_features(sessions: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    ids = {
        "client_id": sessions[c.CLIENT_ID].iloc[:0].reset_index(drop=True),
        "therapist_id": sessions[c.THERAPIST_ID].iloc[:0].reset_index(drop=True),
        "landmark_session": np.empty(0, dtype=np.int64),
        "landmark_date": sessions[c.SESSION_DATE].iloc[:0].reset_index(drop=True),
    }
    return pd.DataFrame(ids | {name: np.empty(0, dtype=FEATURE_DTYPE) for name in columns})


def build_features(
    sessions: pd.DataFrame,
    cfg: FeaturesConfig,
    symptom: Scale,
    alliance: Scale,
    landmarks: Sequence[int] | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
    workers: int = WORKERS,
) -> pd.DataFrame:
    """Feature rows of validated sessions: one per (client, landmark) or per client (latest row).

    With ``landmarks``, a client gets a row at landmark L only where it has a session row with
    ``session_number == L``; without, each client is taken as of its latest row. Returns
    :data:`ID_COLUMNS` then float32 features (0/1 flags, NaN where not computable), ordered by
    client and landmark. ``sessions`` is not modified. Clients are processed in chunks of
    about ``chunk_rows`` session rows (for memory and cache), ``workers`` chunks at a time; the
    result depends on neither.
    """
    _check_scales(cfg, alliance)
    columns = feature_columns(cfg)
    if sessions.empty:
        return _empty_features(sessions, columns)
    order, codes = _sort_order(sessions)
    rows = session_arrays(sessions, order, codes)
    picked = _prediction_rows(rows, landmarks)

    # pandas keeps a float block as (columns, rows): fill it in that layout, wrap without copy.
    # float32: 7 significant digits are ample for these scales, and it halves the memory of
    # features at every landmark (1M clients x 12 landmarks x 66 features: 3 GB, not 6)
    block = np.empty((len(columns), picked.shape[0]), dtype=FEATURE_DTYPE)
    slot = {name: k for k, name in enumerate(columns)}

    def fill(chunk: tuple[int, int]) -> set[str]:
        """The feature rows of one chunk of whole clients, written into their own columns."""
        first_row, end_row = chunk
        lo, hi = np.searchsorted(picked, [first_row, end_row])
        part = rows.window(first_row, end_row)
        names = set()
        for family in _families(part, cfg, symptom, picked[lo:hi] - first_row):
            for name, values in family.items():
                block[slot[name], lo:hi] = values
                names.add(name)
        return names

    filled: set[str] = set()
    # whole clients at a time, so that the per-row intermediates stay small; chunks are
    # independent (disjoint rows of ``block``) and numpy and pandas' grouped loops release the
    # GIL, so ``workers`` threads build them side by side
    chunks = _client_chunks(rows.client_start, chunk_rows)
    threads = min(workers, len(chunks))
    with ThreadPoolExecutor(max_workers=max(threads, 1)) as pool:
        built = pool.map(fill, chunks) if threads > 1 else map(fill, chunks)
        for names in progress(built, "features (client chunks)", len(chunks)):
            filled |= names
    if filled != set(columns):
        raise RuntimeError(f"feature families and dictionary disagree: {set(columns) ^ filled}")

    source = picked if order is None else order[picked]
    # one float block, wrapped without a copy; the ID columns go in front as their own blocks
    features = pd.DataFrame(block.T, columns=columns, copy=False)
    features.insert(0, "landmark_date", _taken(sessions[c.SESSION_DATE], source))
    features.insert(0, "landmark_session", sessions[c.SESSION_NUMBER].to_numpy(np.int64)[source])
    features.insert(0, "therapist_id", _taken(sessions[c.THERAPIST_ID], source))
    features.insert(0, "client_id", _taken(sessions[c.CLIENT_ID], source))
    return features


def _taken(column: pd.Series, rows: np.ndarray) -> pd.Series:
    return column.take(rows).reset_index(drop=True)
