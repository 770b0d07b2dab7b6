"""Symptom course, reliable and clinical change, early response, alliance-symptom coupling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout.config.features import EarlyResponseCriterion, FeaturesConfig
from alliance_dropout.features.builder import build_features
from tests.features.histories import A, C, history

NAN = np.nan


def _features(sessions: pd.DataFrame, cfg: FeaturesConfig | None = None) -> pd.DataFrame:
    cfg = cfg or FeaturesConfig()
    landmarks = sessions[c.SESSION_NUMBER].tolist()
    frame = build_features(sessions, cfg, c.PHQ9, c.WAI_SR, landmarks=landmarks)
    return frame.set_index("landmark_session")


@pytest.fixture
def improving() -> pd.DataFrame:
    # PHQ-9 18, 16, (cancelled), 11, (questionnaire missing), 8
    return history([A, A, C, A, A, A], symptom_score=[18, 16, NAN, 11, NAN, 8])


def test_symptom_level_and_course(improving: pd.DataFrame) -> None:
    f = _features(improving).loc[6]
    assert f["symptom_rated_sessions"] == 4  # the missing questionnaire is skipped, not zero
    assert (f["symptom_first"], f["symptom_latest"], f["symptom_change"]) == (18, 8, -10)
    # x = 1, 2, 4, 6 (mean 3.25), y = 18, 16, 11, 8: Sxy = -30.25, Sxx = 14.75
    assert f["symptom_slope"] == pytest.approx(-30.25 / 14.75)
    # latest 3: x = 2, 4, 6; y = 16, 11, 8: Sxy = -16, Sxx = 8
    assert f["symptom_recent_slope"] == pytest.approx(-2.0)


def test_reliable_and_clinically_significant_change(improving: pd.DataFrame) -> None:
    features = _features(improving)
    # 18 -> 16: 2 points; 18 -> 11: 7 >= 6 points (PHQ-9 reliable change)
    assert features.loc[2, "symptom_reliable_improvement"] == 0
    assert features.loc[4, "symptom_reliable_improvement"] == 1
    assert features.loc[6, "symptom_reliable_deterioration"] == 0
    # 11 is still >= 10 (clinical range); 8 is below it: recovered and reliably recovered
    assert features.loc[4, "symptom_in_clinical_range"] == 1
    assert features.loc[4, "symptom_recovered"] == 0
    assert features.loc[6, "symptom_in_clinical_range"] == 0
    assert features.loc[6, "symptom_recovered"] == 1
    assert features.loc[6, "symptom_reliable_recovery"] == 1


def test_reliable_change_boundary_and_deterioration() -> None:
    exactly_six = _features(history([A, A], symptom_score=[12, 6])).loc[2]
    assert exactly_six["symptom_reliable_improvement"] == 1
    assert exactly_six["symptom_recovered"] == 1
    worse = _features(history([A, A], symptom_score=[8, 15])).loc[2]
    assert worse["symptom_reliable_deterioration"] == 1
    assert worse["symptom_in_clinical_range"] == 1
    # started below the cutoff: recovery is not defined
    assert np.isnan(worse["symptom_recovered"])
    assert np.isnan(worse["symptom_reliable_recovery"])


def test_exact_thresholds_hold_on_decimal_scores() -> None:
    """Exports may carry one-decimal scores (e.g. prorated totals): 10.2 - 4.2 is
    5.999999999999999 in floating point, yet it is a fall of exactly 6 points."""
    better = _features(history([A, A], symptom_score=[10.2, 4.2])).loc[2]
    assert better["symptom_reliable_improvement"] == 1
    assert better["symptom_reliable_recovery"] == 1
    worse = _features(history([A, A], symptom_score=[4.2, 10.2])).loc[2]
    assert worse["symptom_reliable_deterioration"] == 1
    # 12.4 -> 9.3 is a fall of exactly 25% of 12.4 (3.1; 3.0999999999999996 in floating point)
    early = _features(history([A, A, A, A], symptom_score=[12.4, 11, 10, 9.3])).loc[4]
    assert early["symptom_early_response"] == 1
    just_short = _features(history([A, A, A, A], symptom_score=[12.4, 11, 10, 9.4])).loc[4]
    assert just_short["symptom_early_response"] == 0


def test_early_response(improving: pd.DataFrame) -> None:
    features = _features(improving)
    # unknown before session 4; by session 4: 18 -> 11 = 7 >= 25% of 18 = 4.5
    assert features.loc[[1, 2, 3], "symptom_early_response"].isna().all()
    assert features.loc[4, "symptom_early_response"] == 1
    assert features.loc[6, "symptom_early_response"] == 1
    slow = _features(history([A, A, A, A], symptom_score=[20, 19, 18, 16])).loc[4]
    assert slow["symptom_early_response"] == 0  # 4 < 5 points


def test_early_response_by_reliable_change(improving: pd.DataFrame) -> None:
    cfg = FeaturesConfig()
    cfg.symptoms.early_response_criterion = EarlyResponseCriterion.reliable_change
    assert _features(improving, cfg).loc[4, "symptom_early_response"] == 1  # 7 >= 6
    slow = history([A, A, A, A], symptom_score=[20, 18, 16, 15])
    assert _features(slow, cfg).loc[4, "symptom_early_response"] == 0  # 5 < 6


def test_no_symptom_scores_means_missing_not_zero() -> None:
    f = _features(history([A, A], alliance_client=[4, 4])).loc[2]
    assert f["symptom_rated_sessions"] == 0
    for name in ("first", "latest", "change", "slope", "reliable_improvement", "in_clinical_range"):
        assert np.isnan(f[f"symptom_{name}"]), name
    # nothing could be detected without a score: missing, not "no sudden gain"
    assert np.isnan(f["sudden_gain_count"]) and np.isnan(f["sudden_loss_count"])


def test_alliance_symptom_coupling() -> None:
    # alliance 3, 4, 3, 5 precedes symptom changes -2, -1, -3, -1
    sessions = history(
        [A] * 5,
        alliance_client=[3, 4, 3, 5, 4],
        symptom_score=[20, 18, 17, 14, 13],
    )
    features = _features(sessions)
    assert np.isnan(features.loc[4, "alliance_symptom_coupling"])  # 3 pairs < 4
    # alliance dev -.75 .25 -.75 1.25; change dev -.25 .75 -1.25 .75: 2.25 / sqrt(2.75 * 2.75)
    assert features.loc[5, "alliance_symptom_coupling"] == pytest.approx(2.25 / 2.75)


def test_alliance_symptom_pair_needs_both_scores() -> None:
    sessions = history(
        [A] * 6,
        alliance_client=[3, NAN, 3, 5, 4, 4],
        symptom_score=[20, 18, 17, 14, 13, 12],
    )
    # the pair started by session 2 has no alliance: pairs by session 6 are 4 (not 5)
    features = _features(sessions)
    assert np.isnan(features.loc[5, "alliance_symptom_coupling"])
    assert not np.isnan(features.loc[6, "alliance_symptom_coupling"])
