"""Rupture/repair features: worked examples, causality, and a plain-loop reference."""

from __future__ import annotations

import numpy as np
import pytest

from alliance_dropout.config.features import RuptureConfig, RuptureReference
from alliance_dropout.features.ruptures import (
    feature_specs,
    rupture_features,
    rupture_rows,
)

NAN = np.nan
# One client. Row 3: 4.4 -> 3.5 drops 0.9 (earlier SD 0.06, so the 0.5 floor decides): rupture,
# back to >= 4.4 at row 5 (2nd attended session after it): repaired. Row 8: 4.6 -> 4.0 drops 0.6
# but 2 x SD of earlier ratings (0.44) = 0.88: no rupture. Row 9: 4.0 -> 3.0 drops 1.0 > 0.86:
# rupture, not back to 4.0 within 3 sessions (rows 10-12): unrepaired at row 12; back at row 13.
COURSE = np.array([4.5, 4.5, 4.4, 3.5, 3.8, 4.6, 4.6, NAN, 4.0, 3.0, 3.1, 3.2, 3.3, 4.5])


def _one_client(values: np.ndarray) -> np.ndarray:
    return np.zeros(values.shape[0], dtype=np.int64)


def test_worked_example() -> None:
    f = rupture_features(_one_client(COURSE), COURSE, RuptureConfig())
    assert f["rupture_count"].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    # The repair counts at row 5, where the rating comes back, never earlier.
    assert f["rupture_repaired_count"].tolist() == [0] * 5 + [1] * 9
    assert f["rupture_unrepaired_count"].tolist() == [0] * 12 + [1] * 2
    assert f["rupture_open"].tolist() == [0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    since = f["sessions_since_rupture"]
    assert np.isnan(since[:3]).all() and since[3:].tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4]
    np.testing.assert_allclose(f["rupture_max_drop"], [0] * 3 + [0.9] * 6 + [1.0] * 5)
    assert np.flatnonzero(rupture_rows(_one_client(COURSE), COURSE, RuptureConfig())).tolist() == [
        3,
        9,
    ]
    assert all(v.dtype == np.float64 and v.shape == COURSE.shape for v in f.values())


def test_running_mean_reference_and_floor() -> None:
    # Slow decline: each step is 0.3 below the previous rating (below the 0.5 floor), but the
    # fourth rating is 0.6 below the running mean of the earlier three.
    values = np.array([4.6, 4.3, 4.0, 3.7])
    previous = RuptureConfig(reference=RuptureReference.previous)
    running = RuptureConfig(reference=RuptureReference.running_mean, min_sessions_for_sd=99)
    assert not rupture_rows(_one_client(values), values, previous).any()
    assert rupture_rows(_one_client(values), values, running).tolist() == [0, 0, 0, 1]
    # A bigger floor removes it again.
    strict = RuptureConfig(reference=RuptureReference.running_mean, min_drop_points=0.7)
    assert not rupture_rows(_one_client(values), values, strict).any()


def test_sd_threshold_for_a_fluctuating_client() -> None:
    # A client who swings by a full point routinely: a 1-point drop is no rupture once the SD
    # is known (2 x 0.58 = 1.15 > 1), while the first such drop (too few ratings) is one.
    values = np.array([4.0, 3.0, 4.0, 3.0, 4.0, 3.0])
    ruptures = rupture_rows(_one_client(values), values, RuptureConfig())
    assert ruptures.tolist() == [0, 1, 0, 0, 0, 0]


def test_attended_rows_count_the_repair_window() -> None:
    # Rupture at row 1; rows 2-3 attended without a questionnaire, row 4 cancelled, back at 5.
    alliance = np.array([4.5, 3.5, NAN, NAN, NAN, 4.6])
    attended = np.array([True, True, True, True, False, True])
    cfg = RuptureConfig(repair_window=3)
    f = rupture_features(_one_client(alliance), alliance, cfg, attended)
    # Attended sessions after the rupture: rows 2, 3, 5 -> the return at row 5 is the 3rd.
    assert f["rupture_repaired_count"].tolist() == [0, 0, 0, 0, 0, 1]
    assert f["rupture_unrepaired_count"].tolist() == [0] * 6
    # With a 2-session window the rupture is unrepaired at row 3, and open until row 5.
    f = rupture_features(_one_client(alliance), alliance, RuptureConfig(repair_window=2), attended)
    assert f["rupture_unrepaired_count"].tolist() == [0, 0, 0, 1, 1, 1]
    assert f["rupture_repaired_count"].tolist() == [0] * 6
    assert f["rupture_open"].tolist() == [0, 1, 1, 1, 1, 0]
    assert f["sessions_since_rupture"][1:].tolist() == [0, 1, 2, 3, 4]


def test_clients_are_separate() -> None:
    # Client A ruptures in its last row; client B starts high: B's rows must show nothing.
    alliance = np.array([4.5, 3.5, 4.8, 4.9, 4.8])
    client_start = np.array([0, 0, 2, 2, 2])
    f = rupture_features(client_start, alliance, RuptureConfig())
    assert f["rupture_count"].tolist() == [0, 1, 0, 0, 0]
    assert f["rupture_open"].tolist() == [0, 1, 0, 0, 0]
    assert f["rupture_repaired_count"].tolist() == [0] * 5
    assert np.isnan(f["sessions_since_rupture"][2:]).all()
    assert f["rupture_max_drop"].tolist() == [0, 1, 0, 0, 0]


def _random_caseload(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 25, 60)
    client_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    n = int(lengths.sum())
    attended = rng.random(n) > 0.2
    alliance = np.round(np.clip(4 + rng.normal(0, 0.6, n), 1, 5), 1)
    alliance[~attended | (rng.random(n) < 0.1)] = np.nan
    return client_start, alliance, attended


def _reference_loop(alliance: np.ndarray, attended: np.ndarray, cfg: RuptureConfig) -> dict:
    """Plain per-session implementation of the documented definition, one client."""
    n = alliance.shape[0]
    out = {k: np.zeros(n) for k in ("count", "repaired", "unrepaired", "open")}
    events = []  # (rupture row, level)
    for i in range(n):
        earlier = alliance[:i][~np.isnan(alliance[:i])]
        if attended[i] and not np.isnan(alliance[i]) and earlier.size:
            level = earlier[-1] if cfg.reference is RuptureReference.previous else earlier.mean()
            threshold = cfg.min_drop_points
            if earlier.size >= cfg.min_sessions_for_sd:
                threshold = max(cfg.threshold_sd * earlier.std(ddof=1), cfg.min_drop_points)
            if level - alliance[i] >= threshold - 1e-9:
                events.append((i, level))
        for r, level in events:
            if r > i:
                continue
            later = [j for j in range(r + 1, i + 1) if attended[j]]
            back = [j for j in later if alliance[j] >= level - 1e-9]
            out["count"][i] += 1
            window = later[: cfg.repair_window]
            out["repaired"][i] += bool(back) and back[0] in window
            out["unrepaired"][i] += len(window) == cfg.repair_window and not (
                back and back[0] in window
            )
            out["open"][i] += not back
    out["open"] = (out["open"] > 0).astype(float)
    unrated = np.cumsum(~np.isnan(alliance)) == 0  # nothing detectable before the first rating
    return {name: np.where(unrated, np.nan, values) for name, values in out.items()}


@pytest.mark.parametrize("reference", list(RuptureReference))
def test_matches_plain_loop_reference(reference: RuptureReference) -> None:
    client_start, alliance, attended = _random_caseload(1)
    cfg = RuptureConfig(reference=reference, threshold_sd=1.5, repair_window=2)
    f = rupture_features(client_start, alliance, cfg, attended)
    assert np.nansum(f["rupture_count"]) > 0 and np.isnan(f["rupture_count"]).any()
    for start in np.unique(client_start):
        rows = client_start == start
        expected = _reference_loop(alliance[rows], attended[rows], cfg)
        np.testing.assert_array_equal(f["rupture_count"][rows], expected["count"])
        np.testing.assert_array_equal(f["rupture_repaired_count"][rows], expected["repaired"])
        np.testing.assert_array_equal(f["rupture_unrepaired_count"][rows], expected["unrepaired"])
        np.testing.assert_array_equal(f["rupture_open"][rows], expected["open"])


def test_features_never_use_later_rows() -> None:
    client_start, alliance, attended = _random_caseload(2)
    cfg = RuptureConfig()
    full = rupture_features(client_start, alliance, cfg, attended)
    rng = np.random.default_rng(3)
    position = np.arange(alliance.shape[0]) - client_start
    for cut in (2, 5, 10):
        later = position > cut
        changed = alliance.copy()
        changed[later & attended] = np.round(rng.uniform(1, 5, (later & attended).sum()), 1)
        part = rupture_features(client_start, changed, cfg, attended)
        for name, values in full.items():
            np.testing.assert_array_equal(values[~later], part[name][~later], err_msg=name)


def test_feature_specs_cover_features() -> None:
    cfg = RuptureConfig()
    names = set(rupture_features(_one_client(COURSE), COURSE, cfg))
    specs = feature_specs(cfg)
    assert {s.name for s in specs} == names
    assert all(s.family == "ruptures" and s.definition and s.unit for s in specs)


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="repair_window"):
        RuptureConfig(repair_window=0)
    with pytest.raises(ValueError, match="min_sessions_for_sd"):
        RuptureConfig(min_sessions_for_sd=1)


def test_empty_input_and_unrated_client() -> None:
    empty = rupture_features(np.array([], dtype=np.int64), np.array([]), RuptureConfig())
    assert all(v.shape == (0,) for v in empty.values())
    f = rupture_features(np.zeros(3, np.int64), np.full(3, NAN), RuptureConfig(), np.ones(3, bool))
    # nothing could be detected without a rating: missing, not "no rupture"
    assert all(np.isnan(values).all() for values in f.values())
    late = rupture_features(np.zeros(3, np.int64), np.array([NAN, 4.0, 3.0]), RuptureConfig())
    assert np.isnan(late["rupture_count"][0]) and late["rupture_count"][1:].tolist() == [0, 1]
    assert np.isnan(late["rupture_max_drop"][0]) and late["rupture_max_drop"][1] == 0


def test_a_clients_rupture_features_do_not_depend_on_other_clients_in_the_file() -> None:
    """Sums run per client, so rounding cannot carry over from clients earlier in the file
    (scoring one client alone must give what scoring it within a caseload gives)."""
    rng = np.random.default_rng(7)
    mine = np.round(rng.uniform(1, 5, 12) * 12) / 12  # WAI-SR item means
    others = rng.uniform(1, 5, 5000) * np.pi  # large, irrational running totals before mine
    cfg = RuptureConfig(reference=RuptureReference.running_mean)
    alone = rupture_features(np.zeros(12, dtype=np.int64), mine, cfg)
    together_values = np.concatenate([others, mine])
    client_start = np.concatenate([np.zeros(5000, dtype=np.int64), np.full(12, 5000)])
    together = rupture_features(client_start, together_values, cfg)
    for name, values in alone.items():
        np.testing.assert_array_equal(together[name][5000:], values, err_msg=name)
    np.testing.assert_array_equal(
        rupture_rows(client_start, together_values, cfg)[5000:],
        rupture_rows(np.zeros(12, dtype=np.int64), mine, cfg),
    )
