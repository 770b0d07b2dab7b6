"""Grouped cumulative primitives on two tiny clients."""

from __future__ import annotations

import numpy as np
import pytest

from alliance_dropout.features import grouped as g

NAN = np.nan
# client 0: rows 0-2; client 1: rows 3-6
CODES = np.array([5, 5, 5, 9, 9, 9, 9])
VALUES = np.array([2.0, NAN, 4.0, NAN, 1.0, 3.0, 2.0])


@pytest.fixture
def start() -> np.ndarray:
    return g.client_start_from_codes(CODES)


def test_client_start(start: np.ndarray) -> None:
    assert start.tolist() == [0, 0, 0, 3, 3, 3, 3]
    assert g.is_client_end(start).tolist() == [False, False, True, False, False, False, True]


def test_sums_and_counts_restart_per_client(start: np.ndarray) -> None:
    valid = ~np.isnan(VALUES)
    assert g.grouped_cumsum(np.nan_to_num(VALUES), start).tolist() == [2, 2, 6, 0, 1, 4, 6]
    assert g.grouped_cumcount(valid, start).tolist() == [1, 1, 2, 0, 1, 2, 3]
    assert g.window_count(valid, start, 2).tolist() == [1, 1, 1, 0, 1, 2, 2]


def test_carry_forward_first_and_previous(start: np.ndarray) -> None:
    np.testing.assert_array_equal(g.carry_forward(VALUES, start), [2, 2, 4, NAN, 1, 3, 2])
    np.testing.assert_array_equal(g.first_value(VALUES, start), [2, 2, 2, NAN, 1, 1, 1])
    np.testing.assert_array_equal(
        g.successive_difference(VALUES, start), [NAN, NAN, 2, NAN, NAN, 2, -1]
    )


def test_expanding_extremes_skip_missing(start: np.ndarray) -> None:
    np.testing.assert_array_equal(g.expanding_min(VALUES, start), [2, 2, 2, NAN, 1, 1, 1])
    np.testing.assert_array_equal(g.expanding_max(VALUES, start), [2, 2, 4, NAN, 1, 3, 3])


def test_trend(start: np.ndarray) -> None:
    x = np.array([1.0, 2, 3, 1, 2, 3, 4])
    trend = g.expanding_trend(x, VALUES, start)
    np.testing.assert_allclose(trend.mean, [2, 2, 3, NAN, 1, 2, 2])
    # client 1 at row 6: x 2,3,4 / y 1,3,2 -> slope 0.5, sd 1
    assert trend.slope[6] == pytest.approx(0.5)
    assert trend.sd[6] == pytest.approx(1.0)
    assert np.isnan(trend.slope[4]) and np.isnan(trend.sd[4])


def test_flat_series_has_exactly_zero_spread() -> None:
    start = np.zeros(4, dtype=np.int64)
    trend = g.expanding_trend(np.arange(4.0), np.full(4, 0.1 + 0.2), start)
    assert trend.sd[-1] == 0.0 and trend.slope[-1] == 0.0


def test_recent_index_and_window_slope(start: np.ndarray) -> None:
    recent = g.recent_index(~np.isnan(VALUES), start, 2)
    assert recent.tolist() == [[0, -1], [0, -1], [2, 0], [-1, -1], [4, -1], [5, 4], [6, 5]]
    x = np.arange(7.0)
    slope = g.window_slope(g.take(x, recent), g.take(VALUES, recent))
    np.testing.assert_array_equal(slope, [NAN, NAN, 1.0, NAN, NAN, 2.0, -1.0])


def test_correlation(start: np.ndarray) -> None:
    other = np.array([1.0, 5, 2, 0, 3, 1, 2])
    r = g.expanding_correlation(VALUES, other, start)
    assert r[2] == pytest.approx(1.0)  # two pairs, both rising
    assert r[5] == pytest.approx(-1.0)
    assert np.isnan(r[0]) and np.isnan(r[4])


@pytest.mark.parametrize("how", ["cumsum", "cummin", "cummax"])
def test_grouped_kernels_give_the_public_groupby_bit_for_bit(how: str) -> None:
    """The builder calls pandas' grouped loops directly (issue 16: a groupby per call cost more
    than the loop); on this pandas they must be what the public groupby gives, NaNs included."""
    import pandas as pd

    rng = np.random.default_rng(16)
    start = g.client_start_from_codes(np.sort(rng.integers(0, 900, 10_000)))
    block = rng.normal(0, 50, (3, 10_000))
    block[0, ::7] = np.nan
    block[1, ::11] = -0.0
    public = getattr(pd.DataFrame(block.T).groupby(start, sort=False), how)().to_numpy().T
    fast = g._grouped_running(how, block, start)
    assert fast.flags.c_contiguous
    np.testing.assert_array_equal(fast.view(np.int64), public.view(np.int64))
    # the kernel itself answers on this pandas (the fallback is for another one)
    labels, ngroups = g._group_labels(start)
    out = np.empty((10_000, 3))
    kernel = getattr(g._pandas_groupby, f"group_{how}")
    kernel(
        out=out, values=block.T, labels=labels, ngroups=ngroups, is_datetimelike=False, skipna=True
    )
    np.testing.assert_array_equal(out.T.view(np.int64), public.view(np.int64))
