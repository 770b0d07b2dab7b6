"""Attendance features on a hand-worked history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.features.builder import build_features
from tests.features.histories import A, C, N, history


@pytest.fixture
def features() -> pd.DataFrame:
    # days 0, 7, 14 (cancelled), 21 (no-show), 35, 42 (no-show)
    sessions = history([A, A, C, N, A, N], day=[0, 7, 14, 21, 35, 42])
    return build_features(
        sessions, FeaturesConfig(), c.PHQ9, c.WAI_SR, landmarks=[1, 2, 3, 4, 5, 6]
    ).set_index("landmark_session")


def test_counts_and_recent_misses(features: pd.DataFrame) -> None:
    f = features.loc[6]
    assert (f["attendance_scheduled"], f["attendance_attended"]) == (6, 3)
    assert (f["attendance_cancelled"], f["attendance_no_shows"]) == (1, 2)
    # latest 4 appointments: cancelled, no-show, attended, no-show
    assert f["attendance_recent_missed_share"] == 0.75
    assert features.loc[4, "attendance_recent_missed_share"] == 0.5
    # early on the window is shorter: 1 missed of 3
    assert features.loc[3, "attendance_recent_missed_share"] == pytest.approx(1 / 3)


def test_consecutive_misses_and_days_since_attended(features: pd.DataFrame) -> None:
    assert features["attendance_consecutive_missed"].tolist() == [0, 0, 1, 2, 0, 1]
    assert features["attendance_days_since_attended"].tolist() == [0, 0, 7, 14, 0, 7]


def test_gaps_and_rhythm(features: pd.DataFrame) -> None:
    f = features.loc[6]
    # attended on days 0, 7, 35: gaps 7 and 28
    assert (f["attendance_mean_gap_days"], f["attendance_max_gap_days"]) == (17.5, 28)
    # 2 sessions after the first in 42 days = 6 weeks
    assert f["attendance_sessions_per_week"] == pytest.approx(1 / 3)
    first = features.loc[1]
    assert np.isnan(first["attendance_mean_gap_days"])
    assert np.isnan(first["attendance_sessions_per_week"])


def test_never_attended() -> None:
    f = build_features(history([N, C]), FeaturesConfig(), c.PHQ9, c.WAI_SR).iloc[0]
    assert f["attendance_consecutive_missed"] == 2
    assert f["attendance_attended"] == 0
    assert np.isnan(f["attendance_days_since_attended"])
