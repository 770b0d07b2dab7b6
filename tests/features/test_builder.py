"""The landmark builder: prediction points, ordering, dtypes, purity and configuration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from alliance_dropout import contract as c
from alliance_dropout.config.features import EarlyResponseCriterion, FeaturesConfig
from alliance_dropout.features.builder import ID_COLUMNS, build_features, feature_columns
from tests.features.histories import A, C, history, random_sessions


def _build(sessions: pd.DataFrame, landmarks: list[int] | None = None, **kw) -> pd.DataFrame:
    cfg = kw.pop("cfg", FeaturesConfig())
    return build_features(sessions, cfg, c.PHQ9, c.WAI_SR, landmarks=landmarks)


@pytest.fixture
def two_clients() -> pd.DataFrame:
    first = history([A, A, C, A], client_id="b", session_number=[1, 2, 4, 5])
    second = history([A, A], client_id="a", therapist_id="t-9")
    second.loc[1, c.THERAPIST_ID] = "t-10"  # therapist changes within the episode
    return pd.concat([first, second], ignore_index=True)


def test_landmarks_only_where_the_client_has_that_session(two_clients: pd.DataFrame) -> None:
    features = _build(two_clients, landmarks=[1, 2, 3, 4])
    got = list(zip(features["client_id"], features["landmark_session"], strict=True))
    assert got == [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("b", 4)]  # no ("b", 3): a gap


def test_scoring_takes_each_client_as_of_its_latest_row(two_clients: pd.DataFrame) -> None:
    features = _build(two_clients)
    assert features["client_id"].tolist() == ["a", "b"]
    assert features["landmark_session"].tolist() == [2, 5]
    assert features["therapist_id"].tolist() == ["t-10", "therapist-1"]
    assert features["landmark_date"].tolist() == [
        pd.Timestamp("2024-01-08"),
        pd.Timestamp("2024-01-22"),
    ]


def test_columns_and_dtypes() -> None:
    cfg = FeaturesConfig()
    features = _build(random_sessions(20, seed=1), landmarks=cfg.landmarks)
    assert list(features.columns) == [*ID_COLUMNS, *feature_columns(cfg)]
    assert (features.dtypes.iloc[len(ID_COLUMNS) :] == np.float32).all()
    assert features["landmark_session"].dtype == np.int64


def test_row_order_of_the_input_does_not_matter() -> None:
    sessions = random_sessions(30, seed=2)
    shuffled = sessions.sample(frac=1.0, random_state=0)
    untouched = shuffled.copy()
    pd.testing.assert_frame_equal(_build(sessions, [1, 3, 5]), _build(shuffled, [1, 3, 5]))
    pd.testing.assert_frame_equal(shuffled, untouched)  # the input is never modified


def test_disabled_family_has_no_columns() -> None:
    cfg = FeaturesConfig()
    cfg.enabled.attendance = False
    cfg.enabled.sudden_gains = False
    features = _build(random_sessions(5, seed=3), cfg=cfg)
    assert not any(name.startswith(("attendance_", "sudden_")) for name in features.columns)
    assert list(features.columns[len(ID_COLUMNS) :]) == feature_columns(cfg)


def test_duplicate_session_numbers_are_refused() -> None:
    sessions = history([A, A], session_number=[2, 2])
    with pytest.raises(ValueError, match="repeats"):
        _build(sessions.iloc[::-1])


def test_empty_sessions_give_an_empty_frame() -> None:
    features = _build(history([A]).iloc[:0])
    assert len(features) == 0
    assert list(features.columns) == [*ID_COLUMNS, *feature_columns(FeaturesConfig())]


@pytest.mark.parametrize("bad", [{"landmarks": []}, {"landmarks": [0, 1]}, {"landmarks": [2, 2]}])
def test_config_range_checks(bad: dict) -> None:
    with pytest.raises(ValueError, match="landmarks"):
        FeaturesConfig(**bad)


def test_yaml_composes_onto_the_schema(compose_cfg) -> None:
    cfg = compose_cfg("train", ["features.symptoms.recent_window=4"])
    features_cfg = OmegaConf.to_object(cfg.features)
    assert isinstance(features_cfg, FeaturesConfig)
    assert features_cfg.landmarks == list(range(1, 13))
    assert features_cfg.symptoms.recent_window == 4
    assert features_cfg.symptoms.early_response_criterion is EarlyResponseCriterion.share


def test_chunked_build_in_threads_equals_a_single_pass() -> None:
    sessions = random_sessions(40, seed=6)
    whole = build_features(sessions, FeaturesConfig(), c.PHQ9, c.WAI_SR, landmarks=[2, 4, 6])
    for workers in (1, 2, 3):
        chunked = build_features(
            sessions,
            FeaturesConfig(),
            c.PHQ9,
            c.WAI_SR,
            landmarks=[2, 4, 6],
            chunk_rows=7,
            workers=workers,
        )
        pd.testing.assert_frame_equal(whole, chunked, check_exact=True)
