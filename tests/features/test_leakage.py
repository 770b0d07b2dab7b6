"""Leakage: a feature at a landmark depends only on the client's rows up to that landmark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.features.builder import ID_COLUMNS, build_features
from tests.features.histories import random_sessions

KEY = ["client_id", "landmark_session"]


def _features(sessions: pd.DataFrame, landmarks: list[int] | None) -> pd.DataFrame:
    return build_features(sessions, FeaturesConfig(), c.PHQ9, c.WAI_SR, landmarks=landmarks)


@pytest.fixture(scope="module")
def base() -> tuple[pd.DataFrame, pd.Series]:
    """Random sessions and, per row, whether it lies after its client's cut (the 'future')."""
    sessions = random_sessions(120, seed=7)
    rng = np.random.default_rng(11)
    position = sessions.groupby(c.CLIENT_ID).cumcount()
    length = sessions.groupby(c.CLIENT_ID)[c.SESSION_NUMBER].transform("size")
    cut = np.floor(rng.random(len(sessions)) * length).astype(int)  # one draw per row ...
    cut = pd.Series(cut).groupby(sessions[c.CLIENT_ID]).transform("first")  # ... one per client
    return sessions, position > cut


def _earlier(features: pd.DataFrame, sessions: pd.DataFrame, future: pd.Series) -> pd.DataFrame:
    """Feature rows at landmarks up to each client's cut, sorted by key."""
    cut = sessions[~future].groupby(c.CLIENT_ID)[c.SESSION_NUMBER].max()
    keep = features["landmark_session"] <= features["client_id"].map(cut)
    return features[keep].sort_values(KEY).reset_index(drop=True)


def _landmarks() -> list[int]:
    return list(range(1, 40))


def _modify_future(sessions: pd.DataFrame, future: pd.Series, seed: int) -> pd.DataFrame:
    """Change every later row: scores, attendance and (still non-decreasing) dates."""
    rng = np.random.default_rng(seed)
    changed = sessions.copy()
    n = int(future.sum())
    attendance = rng.choice([c.ATTENDED, c.CANCELLED, c.NO_SHOW], n)
    changed.loc[future, c.ATTENDANCE] = attendance
    for column in c.SESSION_SCORES:
        high = 27 if column == c.SYMPTOM_SCORE else 5
        low = 0 if column == c.SYMPTOM_SCORE else 1
        values = rng.uniform(low, high, n)
        changed.loc[future, column] = np.where(attendance == c.ATTENDED, values, np.nan)
    shift = pd.Series(0, index=sessions.index)
    shift[future] = rng.integers(0, 30, n)
    shift = shift.groupby(sessions[c.CLIENT_ID]).cumsum()  # later rows move by at least as much
    changed[c.SESSION_DATE] = sessions[c.SESSION_DATE] + pd.to_timedelta(shift, unit="D")
    return changed


def _append_rows(sessions: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Three more sessions after every client's last one."""
    rng = np.random.default_rng(seed)
    last = sessions.groupby(c.CLIENT_ID, sort=False).tail(1)
    extra = []
    for k in range(1, 4):  # three appended sessions, not a loop over clients
        rows = last.copy()
        rows[c.SESSION_NUMBER] = rows[c.SESSION_NUMBER] + k
        rows[c.SESSION_DATE] = rows[c.SESSION_DATE] + pd.Timedelta(days=7 * k)
        rows[c.ATTENDANCE] = c.ATTENDED
        for column in c.SESSION_SCORES:
            rows[column] = rng.uniform(1, 5, len(rows))
        extra.append(rows)
    return pd.concat([sessions, *extra], ignore_index=True)


def test_changing_later_rows_leaves_earlier_landmarks_identical(base) -> None:
    sessions, future = base
    before = _earlier(_features(sessions, _landmarks()), sessions, future)
    after = _earlier(_features(_modify_future(sessions, future, 3), _landmarks()), sessions, future)
    assert len(before) > 200
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_deleting_later_rows_leaves_earlier_landmarks_identical(base) -> None:
    sessions, future = base
    drop = future & (np.random.default_rng(5).random(len(sessions)) < 0.6)
    before = _earlier(_features(sessions, _landmarks()), sessions, future)
    after = _earlier(_features(sessions[~drop], _landmarks()), sessions, future)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_appending_rows_leaves_earlier_landmarks_identical(base) -> None:
    sessions, _ = base
    nothing_later = pd.Series(False, index=sessions.index)
    before = _earlier(_features(sessions, _landmarks()), sessions, nothing_later)
    after = _earlier(_features(_append_rows(sessions, 9), _landmarks()), sessions, nothing_later)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_landmark_row_equals_latest_row_of_the_truncated_history(base) -> None:
    """Features at landmark L are the scoring features of the history cut after L."""
    sessions, future = base
    at_landmarks = _earlier(_features(sessions, _landmarks()), sessions, future)
    cut = sessions[~future].groupby(c.CLIENT_ID)[c.SESSION_NUMBER].max()
    at_cut = at_landmarks[at_landmarks["landmark_session"] == at_landmarks["client_id"].map(cut)]
    truncated = _features(sessions[~future], None).sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(at_cut.reset_index(drop=True), truncated, check_exact=True)


def test_a_clients_features_do_not_depend_on_other_clients(base) -> None:
    sessions, _ = base
    everyone = _features(sessions, _landmarks())
    one_client = sessions[c.CLIENT_ID] == sessions[c.CLIENT_ID].iloc[-1]
    alone = _features(sessions[one_client], _landmarks())
    mine = everyone[everyone["client_id"] == sessions[c.CLIENT_ID].iloc[-1]]
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), alone, check_exact=True)
    assert list(alone.columns[: len(ID_COLUMNS)]) == list(ID_COLUMNS)
