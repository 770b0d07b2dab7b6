"""Alliance level and course, subscales and dual perspective on hand-worked histories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.features.builder import build_features
from tests.features.histories import A, N, history

NAN = np.nan


def _at(frame: pd.DataFrame, landmark: int) -> pd.Series:
    return frame.set_index("landmark_session").loc[landmark]


@pytest.fixture
def course() -> pd.DataFrame:
    # session 3 is a no-show: no ratings; client 4, 3, -, 3.5, 2.5; therapist 4, 4, -, 4.5, 4
    sessions = history(
        [A, A, N, A, A],
        alliance_client=[4.0, 3.0, NAN, 3.5, 2.5],
        alliance_therapist=[4.0, 4.0, NAN, 4.5, 4.0],
    )
    return build_features(sessions, FeaturesConfig(), c.PHQ9, c.WAI_SR, landmarks=[1, 2, 3, 4, 5])


def test_client_alliance_level_and_course(course: pd.DataFrame) -> None:
    f = _at(course, 5)
    # rated sessions x = 1, 2, 4, 5; y = 4, 3, 3.5, 2.5
    assert f["alliance_client_rated_sessions"] == 4
    assert f["alliance_client_latest"] == 2.5
    assert f["alliance_client_mean"] == pytest.approx(13 / 4)
    assert f["alliance_client_min"] == 2.5
    assert f["alliance_client_first"] == 4.0
    assert f["alliance_client_change"] == pytest.approx(-1.5)
    # centred x = -2, -1, 1, 2; y - 3.25 = .75, -.25, .25, -.75: Sxy = -2.5, Sxx = 10
    assert f["alliance_client_slope"] == pytest.approx(-0.25)
    # latest 3 ratings: x = 2, 4, 5; y = 3, 3.5, 2.5: Sxy = -1/2, Sxx = 42/9
    assert f["alliance_client_recent_slope"] == pytest.approx(-3 / 28)
    # squared deviations sum to 1.25 over n - 1 = 3
    assert f["alliance_client_sd"] == pytest.approx(np.sqrt(1.25 / 3))
    # |3 - 4|, |3.5 - 3|, |2.5 - 3.5|
    assert f["alliance_client_masd"] == pytest.approx(2.5 / 3)
    # only 2.5 lies below the 3.0 cutoff (3.0 itself does not)
    assert f["alliance_client_low_sessions"] == 1


def test_missed_session_carries_the_earlier_values(course: pd.DataFrame) -> None:
    at_2, at_3 = _at(course, 2), _at(course, 3)
    assert at_3["alliance_client_latest"] == 3.0
    assert at_3["alliance_client_slope"] == pytest.approx(-1.0)
    assert at_3["alliance_client_sd"] == pytest.approx(np.sqrt(0.5))
    feature_names = [n for n in course.columns if n.startswith("alliance_")]
    pd.testing.assert_series_equal(at_2[feature_names], at_3[feature_names], check_names=False)


def test_single_rating_has_no_slope_or_spread(course: pd.DataFrame) -> None:
    f = _at(course, 1)
    assert f["alliance_client_change"] == 0.0
    for name in ("slope", "recent_slope", "sd", "masd"):
        assert np.isnan(f[f"alliance_client_{name}"]), name


def test_therapist_ratings_are_a_separate_course(course: pd.DataFrame) -> None:
    f = _at(course, 5)
    assert f["alliance_therapist_mean"] == pytest.approx(16.5 / 4)
    assert f["alliance_therapist_min"] == 4.0
    assert f["alliance_therapist_low_sessions"] == 0


def test_dual_perspective(course: pd.DataFrame) -> None:
    f = _at(course, 5)
    # gap = client - therapist: 0, -1, -1, -1.5 at x = 1, 2, 4, 5
    assert f["alliance_gap_latest"] == pytest.approx(-1.5)
    assert f["alliance_gap_mean"] == pytest.approx(-0.875)
    assert f["alliance_gap_slope"] == pytest.approx(-0.3)
    # client dev .75 -.25 .25 -.75; therapist dev -.125 -.125 .375 -.125
    assert f["alliance_rater_correlation"] == pytest.approx(0.125 / np.sqrt(1.25 * 0.1875))
    # steps: client -1, +.5, -1; therapist 0, +.5, -.5 -> same direction twice of 3
    assert f["alliance_rater_change_agreement"] == pytest.approx(2 / 3)
    assert _at(course, 4)["alliance_rater_change_agreement"] == pytest.approx(1 / 2)
    # fewer than 3 sessions rated by both: no correlation yet
    assert np.isnan(_at(course, 3)["alliance_rater_correlation"])


def test_weakest_subscale() -> None:
    sessions = history(
        [A, A],
        alliance_client=[4.0, 3.5],
        alliance_goal=[4.0, 3.0],
        alliance_task=[3.5, 4.0],
    )
    features = build_features(sessions, FeaturesConfig(), c.PHQ9, c.WAI_SR, landmarks=[1, 2])
    f = _at(features, 2)
    assert (f["alliance_goal_latest"], f["alliance_task_latest"]) == (3.0, 4.0)
    assert np.isnan(f["alliance_bond_latest"])  # the export has no bond subscale
    assert f["alliance_weakest_subscale"] == 3.0
    assert f["alliance_weakest_subscale_gap"] == pytest.approx(0.5)


def test_without_subscales_the_subscale_features_are_missing(course: pd.DataFrame) -> None:
    subscale = [n for n in course.columns if "subscale" in n or n.endswith(("goal_latest",))]
    assert course[subscale].isna().all().all()


def test_low_cutoff_must_lie_on_the_alliance_scale() -> None:
    cfg = FeaturesConfig()
    cfg.alliance.low_cutoff = 6.0
    with pytest.raises(ValueError, match="low_cutoff"):
        build_features(history([A], alliance_client=[4.0]), cfg, c.PHQ9, c.WAI_SR)
