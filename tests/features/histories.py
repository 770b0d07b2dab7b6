"""Small session histories for the feature tests: hand-built and randomly generated."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alliance_dropout import contract as c

A, C, N = c.ATTENDED, c.CANCELLED, c.NO_SHOW
_START = pd.Timestamp("2024-01-01")


def history(
    attendance: Sequence[str],
    client_id: str = "client-1",
    therapist_id: str = "therapist-1",
    session_number: Sequence[int] | None = None,
    day: Sequence[int] | None = None,
    **scores: Sequence[float],
) -> pd.DataFrame:
    """One client's sessions frame; ``day`` offsets from 2024-01-01 (weekly by default)."""
    n = len(attendance)
    numbers = list(range(1, n + 1)) if session_number is None else list(session_number)
    days = [7 * k for k in range(n)] if day is None else list(day)
    frame = pd.DataFrame(
        {
            c.CLIENT_ID: [client_id] * n,
            c.THERAPIST_ID: [therapist_id] * n,
            c.SESSION_NUMBER: np.asarray(numbers, dtype=np.int64),
            c.SESSION_DATE: _START + pd.to_timedelta(days, unit="D"),
            c.ATTENDANCE: list(attendance),
        }
    )
    for column in c.SESSION_SCORES:
        frame[column] = np.asarray(scores.get(column, [np.nan] * n), dtype=np.float64)
    return frame


def random_sessions(n_clients: int, seed: int, max_sessions: int = 14) -> pd.DataFrame:
    """A contract-following sessions frame: gaps in session numbers, missing scores, misses."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_sessions + 1, n_clients)
    client = np.repeat(np.arange(n_clients), lengths)
    n = client.shape[0]
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    # session numbers rise by 1 or 2 (an occasional gap)
    step = np.where(rng.random(n) < 0.1, 2, 1)
    step[starts == np.arange(n)] = 1
    number = np.cumsum(step) - np.concatenate(([0], np.cumsum(step)))[starts]
    elapsed = np.cumsum(rng.integers(0, 15, n))  # non-decreasing dates within each client
    day = elapsed - elapsed[starts] + rng.integers(0, 365, n_clients)[client]
    attendance = rng.choice([A, C, N], size=n, p=[0.8, 0.1, 0.1])
    attended = attendance == A
    frame = pd.DataFrame(
        {
            c.CLIENT_ID: pd.array([f"c{k:04d}" for k in client], dtype="str"),
            c.THERAPIST_ID: pd.array([f"t{k % 7}" for k in client], dtype="str"),
            c.SESSION_NUMBER: number.astype(np.int64),
            c.SESSION_DATE: _START + pd.to_timedelta(day, unit="D"),
            c.ATTENDANCE: pd.array(attendance, dtype="str"),
        }
    )
    for column in c.SESSION_SCORES:
        low, high, step_ = (0, 27, 1.0) if column == c.SYMPTOM_SCORE else (1, 5, 0.25)
        values = rng.integers(0, int((high - low) / step_) + 1, n) * step_ + low
        keep = attended & (rng.random(n) < 0.85)
        frame[column] = np.where(keep, values, np.nan)
    return frame
