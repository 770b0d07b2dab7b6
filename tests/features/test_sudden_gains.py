"""Sudden gains checked against the R package suddengains' own documented and tested results.

Expected numbers and their sources (github.com/milanwiedemann/suddengains):
- tests/testthat/test-describe_sg.R and the tutorial vignette (articles/suddengains-tutorial.md):
  on ``sgdata`` with cutoff 7 (bdi_s1..bdi_s12) there are 24 sudden gains in 15 of 43 clients,
  8 clients with more than one; gain magnitude mean 11, SD 3.43 (by gain); first gain per person
  mean 11.4, SD 3.98.
- tests/testthat/test-create_bysg.R: the first 18 clients of sgdata (the same values, copied into
  the test) have gains at pre-gain sessions 1:3, 1:7, 3:8, 4:3, 5:3, 5:8, 9:3, 10:2, 10:4,
  12:3, 13:3, 13:8, 14:2, 18:3 and no others.
- the vignette's count_intervals: 298 intervals could be evaluated (all clients without an
  evaluable interval are the ones select_cases drops).
- tests/testthat/test-identify_sg.R / test-identify_sl.R: small hand-made tables.
- tests/testthat/test-define_crit1_cutoff.R: reliable change 5.747681 for sd 10.5, rel .961.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance_dropout.config.features import SuddenGainConfig
from alliance_dropout.contract import PHQ9, WAI_SR, Scale
from alliance_dropout.features.sudden_gains import (
    evaluable_intervals,
    feature_specs,
    identify_sudden_gains,
    reliable_change_cutoff,
    sudden_gain_features,
)

# a copy of the package's example data (MIT), kept in the repo so this check always runs
SGDATA = Path(__file__).resolve().parents[1] / "data" / "suddengains" / "sgdata.csv"
BDI = [f"bdi_s{i}" for i in range(1, 13)]
BDI_SCALE = Scale("BDI-II", 0, 63, reliable_change=7.0)
# (client id, pre-gain session N, 1-based within bdi_s1..s12), from test-create_bysg.R.
GAINS_FIRST_18 = {
    (1, 3), (1, 7), (3, 8), (4, 3), (5, 3), (5, 8), (9, 3),
    (10, 2), (10, 4), (12, 3), (13, 3), (13, 8), (14, 2), (18, 3),
}  # fmt: skip


@pytest.fixture(scope="module")
def sgdata() -> pd.DataFrame:
    return pd.read_csv(SGDATA)


def _gain_sessions(ids: np.ndarray, gains: np.ndarray) -> set[tuple[int, int]]:
    rows, cols = np.nonzero(gains)
    return {(int(ids[r]), int(c) + 1) for r, c in zip(rows, cols, strict=True)}


def test_reliable_change_cutoff_matches_define_crit1_cutoff() -> None:
    assert reliable_change_cutoff(10.5, 0.961) == pytest.approx(5.747681, abs=1e-5)
    assert reliable_change_cutoff(10.5, 0.931) == pytest.approx(7.645, abs=1e-3)


@pytest.mark.parametrize("cutoff", [7.0, reliable_change_cutoff(10.5, 0.931)])
def test_sgdata_matches_package_results(sgdata: pd.DataFrame, cutoff: float) -> None:
    scores = sgdata[BDI].to_numpy(dtype=float)
    gains = identify_sudden_gains(scores, cutoff)
    ids = sgdata["id"].to_numpy()

    per_client = gains.sum(axis=1)
    assert gains.sum() == 24
    assert (per_client > 0).sum() == 15
    assert (per_client > 1).sum() == 8
    rows, cols = np.nonzero(gains)
    magnitude = scores[rows, cols] - scores[rows, cols + 1]
    assert round(magnitude.mean(), 2) == 11.0
    assert round(magnitude.std(ddof=1), 2) == 3.43
    first = gains.argmax(axis=1)[per_client > 0]
    with_gain = np.flatnonzero(per_client > 0)
    first_magnitude = scores[with_gain, first] - scores[with_gain, first + 1]
    assert round(first_magnitude.mean(), 2) == 11.4
    assert round(first_magnitude.std(ddof=1), 2) == 3.98

    first_18 = {g for g in _gain_sessions(ids, gains) if g[0] <= 18}
    assert first_18 == GAINS_FIRST_18
    # No published numbers exist for cutoff 7.645; BDI scores are integers, so it acts as 8,
    # and every gain found at cutoff 7 has a magnitude of at least 8: both give the same 24.
    assert magnitude.min() >= 8


def test_sgdata_evaluable_intervals_match_count_intervals(sgdata: pd.DataFrame) -> None:
    assert evaluable_intervals(sgdata[BDI].to_numpy(dtype=float)).sum() == 298


def test_one_interval_by_hand() -> None:
    # Client 1 of sgdata, sessions 1-6: 35 37 34 | 23 24 21, interval 3 -> 4.
    # crit 1: 34 - 23 = 11 >= 7; crit 2: 11 >= 0.25 * 34 = 8.5;
    # crit 3: mean pre 35.33 - mean post 22.67 = 12.67 > 2.776 * pooled sd 1.528 = 4.24.
    scores = np.array([[35, 37, 34, 23, 24, 21]], dtype=float)
    assert identify_sudden_gains(scores, 7).tolist() == [[False, False, True, False, False]]
    # Raising the cutoff above the 11-point drop removes it (criterion 1 decides).
    assert not identify_sudden_gains(scores, 11.5).any()
    # A 12-point post-gain spread fails criterion 3: pooled sd 6.03 * 2.776 = 16.7 > 12.67 - 4.
    noisy = np.array([[35, 37, 34, 23, 35, 12]], dtype=float)
    assert not identify_sudden_gains(noisy, 7).any()


def test_identify_sg_testthat_tables() -> None:
    # tests/testthat/test-identify_sg.R, df1 and df2, columns x_2n .. x_n3 (sg_2to3..sg_4to5).
    df1 = np.array(
        [
            [28, 19, 23, 12, 13, np.nan],
            [28, 19, 23, 11, 12, np.nan],
            [28, 19, np.nan, 12, 13, np.nan],
            [28, 19, 23, 12, 13, np.nan],
            [28, 19, 23, 12, 14, np.nan],
            [28, 19, np.nan, 12, 13, np.nan],
            [28, 19, 23, 11, 12, np.nan],
            [28, 25, 28, 11, 12, np.nan],
            [28, 26, 28, 11, 12, np.nan],
            [np.nan, 26, 28, np.nan, 12, 11],
        ]
    )
    got = identify_sudden_gains(df1, 7)[:, 1:4].astype(int)
    assert got[:, 1].tolist() == [0, 1, 0, 0, 0, 0, 1, 1, 1, 0]
    assert not got[:, [0, 2]].any()
    df2 = np.array(
        [
            [35, 37, 23, 23, 24, 21],
            [35, 37, 34, 24, 24, 21],
            [35, 37, 34, 34, 24, 21],
            [35, 37, 34, 37, 37, 37],
        ],
        dtype=float,
    )
    expected = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert identify_sudden_gains(df2, 7)[:, 1:4].astype(int).tolist() == expected
    # tests/testthat/test-identify_sl.R, df2 (losses with cutoff -7 there; positive here).
    sl = np.array(
        [
            [10, 11, 12, 30, 28, 33],
            [10, 11, 12, 10, 28, 33],
            [10, 11, 30, 30, 28, 33],
            [35, 37, 34, 23, 24, 21],
        ],
        dtype=float,
    )
    expected_sl = [[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 0, 0]]
    assert identify_sudden_gains(sl, 7, losses=True)[:, 1:4].astype(int).tolist() == expected_sl


def test_missing_value_patterns_and_critical_values() -> None:
    # Vignette check_interval example: pre (NA, 31, 33), post (5, NA, 7) -> 2 + 2 values, t 4.303.
    scores = np.array([[np.nan, 31, 33, 5, np.nan, 7]])
    assert identify_sudden_gains(scores, 7)[0, 2]
    # Interval 0 has one pre value, interval 1 a missing x[N], interval 4 one post value;
    # 2 and 3 have x[N], x[N+1] and at least two values on each side.
    pattern = evaluable_intervals(np.array([[30, np.nan, 10, 9, 8, 7]]))
    assert pattern.tolist() == [[False, False, True, True, False]]
    assert not evaluable_intervals(np.array([[np.nan, np.nan, 30, 10, 9, 8]]))[0, 2]
    # One value missing on each side: pre (22, 34) mean 28 var 72, post (6, 6) mean 6 var 0,
    # pooled sd sqrt(72 / 2) = 6. Shift 22 < 4.303 * 6 = 25.8 fails; the complete-data
    # t 2.776 (16.7) would pass.
    spread = np.array([[np.nan, 22.0, 34, 6, np.nan, 6], [22, np.nan, 34, 6, 6, np.nan]])
    assert not identify_sudden_gains(spread, 7)[:, 2].any()
    assert identify_sudden_gains(spread, 7, critical_t=(2.776, 2.776, 2.776))[:, 2].all()


# --- per-row features --------------------------------------------------------------------


def _long(sgdata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sgdata as 12 attended rows per client: (client_start, symptom, attended)."""
    scores = sgdata[BDI].to_numpy(dtype=float)
    n_clients, n_sessions = scores.shape
    client_start = np.repeat(np.arange(n_clients) * n_sessions, n_sessions)
    return client_start, scores.ravel(), np.ones(scores.size, dtype=bool)


def test_features_count_each_gain_once_known(sgdata: pd.DataFrame) -> None:
    client_start, symptom, attended = _long(sgdata)
    cfg = SuddenGainConfig(cutoff=7)
    feats = sudden_gain_features(client_start, symptom, cfg, BDI_SCALE, attended=attended)
    counts = feats["sudden_gain_count"].reshape(-1, 12)
    # All 24 package gains have N+3 within session 12, so every one is counted by the end.
    assert counts[:, -1].sum() == 24
    # missing exactly until the client's first score (some sgdata clients lack session 0)
    unscored = np.cumsum(~np.isnan(symptom.reshape(-1, 12)), axis=1) == 0
    np.testing.assert_array_equal(np.isnan(counts), unscored)
    # Client 1: gain 3 -> 4 becomes known at session 6 (N+3), gain 7 -> 8 at session 10.
    assert counts[0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    since = feats["sessions_since_sudden_gain"].reshape(-1, 12)[0]
    assert np.isnan(since[:5]).all()
    assert since[5:].tolist() == [2, 3, 4, 5, 2, 3, 4]


def test_features_never_use_later_rows(sgdata: pd.DataFrame) -> None:
    client_start, symptom, attended = _long(sgdata)
    cfg = SuddenGainConfig(cutoff=7)
    full = sudden_gain_features(client_start, symptom, cfg, BDI_SCALE, attended=attended)
    rng = np.random.default_rng(0)
    session = np.arange(symptom.size) % 12
    for cut in (3, 6, 9):
        later = session > cut
        scrambled = symptom.copy()
        scrambled[later] = rng.integers(0, 63, later.sum())
        part = sudden_gain_features(client_start, scrambled, cfg, BDI_SCALE, attended=attended)
        for name, values in full.items():
            np.testing.assert_array_equal(values[~later], part[name][~later], err_msg=name)


def test_cancelled_rows_are_not_occasions() -> None:
    scores = [35, 37, 34, 23, 24, 21]
    # One client, a cancelled row inserted between the gain's sessions N and N+1.
    symptom = np.array([*scores[:3], np.nan, *scores[3:]])
    attended = np.array([True, True, True, False, True, True, True])
    client_start = np.zeros(7, dtype=np.int64)
    feats = sudden_gain_features(client_start, symptom, SuddenGainConfig(cutoff=7), PHQ9, attended)
    assert feats["sudden_gain_count"].tolist() == [0, 0, 0, 0, 0, 0, 1]
    # Treated as attended with a missing questionnaire, N+1 is missing: no gain.
    feats = sudden_gain_features(
        client_start, symptom, SuddenGainConfig(cutoff=7), PHQ9, np.ones(7, bool)
    )
    assert feats["sudden_gain_count"].tolist() == [0] * 7


def test_losses_and_scale_direction() -> None:
    worsening = np.array([10, 11, 12, 30, 28, 33, 10, 11, 12, 30, 28, 33], dtype=float)
    client_start = np.repeat([0, 6], 6).astype(np.int64)
    cfg = SuddenGainConfig(cutoff=7)
    feats = sudden_gain_features(client_start, worsening, cfg, PHQ9)
    assert feats["sudden_loss_count"].tolist() == [0, 0, 0, 0, 0, 1] * 2
    assert feats["sudden_gain_count"].tolist() == [0] * 12
    # The same rise is a gain on a higher-is-better scale, and clients stay separate.
    better = Scale("better", 0, 40, reliable_change=7, higher_is_worse=False)
    feats = sudden_gain_features(client_start, worsening, cfg, better)
    assert feats["sudden_gain_count"].tolist() == [0, 0, 0, 0, 0, 1] * 2
    no_losses = sudden_gain_features(
        client_start, worsening, SuddenGainConfig(7, detect_losses=False), PHQ9
    )
    assert "sudden_loss_count" not in no_losses


def test_cutoff_defaults_to_scale_reliable_change() -> None:
    # A 6-point drop: a gain on PHQ-9 (reliable change 6), none when the cutoff is 7.
    symptom = np.array([20, 21, 20, 14, 14, 13], dtype=float)
    client_start = np.zeros(6, dtype=np.int64)
    assert (
        sudden_gain_features(client_start, symptom, SuddenGainConfig(), PHQ9)["sudden_gain_count"][
            -1
        ]
        == 1
    )
    assert (
        sudden_gain_features(client_start, symptom, SuddenGainConfig(cutoff=7), PHQ9)[
            "sudden_gain_count"
        ][-1]
        == 0
    )
    with pytest.raises(ValueError, match="reliable_change"):
        sudden_gain_features(client_start, symptom, SuddenGainConfig(), WAI_SR)


def test_feature_specs_cover_features() -> None:
    cfg = SuddenGainConfig()
    client_start = np.zeros(3, dtype=np.int64)
    feats = sudden_gain_features(client_start, np.array([1.0, 2, 3]), cfg, PHQ9)
    specs = feature_specs(cfg)
    assert {s.name for s in specs} == set(feats)
    assert all(s.family == "sudden_gains" and s.reference for s in specs)
