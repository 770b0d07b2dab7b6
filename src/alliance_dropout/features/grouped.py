"""Grouped cumulative primitives over session rows sorted by (client, session_number).

Every function takes per-row arrays of one sorted frame plus ``client_start`` (int64: the index
of the first row of each row's client) and returns, for every row, a value *as of that row*:
computed from that row and the earlier rows of the same client only. Features built from
these primitives are leakage-free by construction.

Float sums are pandas' grouped cumulative sums (each client summed on its own, in row order),
so a client's values are bit-identical whatever other clients share the frame; integer counts
use one global cumulative sum minus its value before the client's first row (exact). Values are
centred on the client's first observation so that a constant series sums to exactly zero.
Missing values are explicit: callers pass a validity mask, and statistics with too few valid
points are NaN, never zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas._libs import groupby as _pandas_groupby  # pandas' grouped loops


def client_start_from_codes(codes: np.ndarray) -> np.ndarray:
    """``client_start`` from per-row client codes of a frame sorted by client."""
    n = codes.shape[0]
    new_client = np.ones(n, dtype=bool)
    new_client[1:] = codes[1:] != codes[:-1]
    return np.maximum.accumulate(np.where(new_client, np.arange(n, dtype=np.int64), 0))


def position_in_client(client_start: np.ndarray) -> np.ndarray:
    """0-based row position within the client (0 on the client's first row)."""
    return np.arange(client_start.shape[0], dtype=np.int64) - client_start


def is_client_end(client_start: np.ndarray) -> np.ndarray:
    """True on each client's last row."""
    end = np.ones(client_start.shape[0], dtype=bool)
    end[:-1] = client_start[1:] != client_start[:-1]
    return end


def grouped_cumsum(values: np.ndarray, client_start: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over the client's rows up to each row (values must be finite)."""
    if np.issubdtype(values.dtype, np.integer):
        # integer sums are exact, so the global running total can be differenced safely
        total = np.cumsum(values, dtype=np.int64)
        return total - np.concatenate((np.zeros(1, dtype=np.int64), total))[client_start]
    return grouped_cumsums([values], client_start)[0]


def grouped_cumsums(columns: list[np.ndarray], client_start: np.ndarray) -> list[np.ndarray]:
    """:func:`grouped_cumsum` of several float columns in one grouped pass."""
    block = np.empty((len(columns), client_start.shape[0]))
    for k, column in enumerate(columns):  # a handful of columns
        block[k] = column
    return _grouped_cumsum_block(block, client_start)


def _grouped_cumsum_block(block: np.ndarray, client_start: np.ndarray) -> list[np.ndarray]:
    """Grouped cumulative sums of the rows of a (columns, rows) float64 block."""
    return list(_grouped_running("cumsum", block, client_start))


def _group_labels(client_start: np.ndarray) -> tuple[np.ndarray, int]:
    """Group number of each row (0 for the first client) and the number of groups."""
    first = client_start == np.arange(client_start.shape[0])
    labels = np.cumsum(first, dtype=np.intp) - 1
    return labels, int(labels[-1]) + 1 if labels.shape[0] else 0


def _grouped_running(how: str, block: np.ndarray, client_start: np.ndarray) -> np.ndarray:
    """pandas' grouped ``cumsum`` (compensated), ``cummin`` or ``cummax`` of each row of a
    (columns, rows) float64 block, as a C-ordered (columns, rows) array.

    pandas' own kernels, called with the group labels the caller already knows: building a
    groupby (factorizing the key) cost about 4 ms per call against 1-2 ms for the loop itself,
    and the builder makes hundreds of such calls. Where the kernels are not as expected (another
    pandas), the public groupby gives the same numbers.
    """
    values = np.asarray(block, dtype=np.float64).T  # (rows, columns), pandas' layout
    labels, ngroups = _group_labels(client_start)
    out = np.empty(values.shape, dtype=np.float64)
    try:
        getattr(_pandas_groupby, f"group_{how}")(
            out=out,
            values=values,
            labels=labels,
            ngroups=ngroups,
            is_datetimelike=False,
            skipna=True,
        )
    except (AttributeError, TypeError, ValueError):
        grouped = pd.DataFrame(values, copy=False).groupby(client_start, sort=False)
        return np.ascontiguousarray(getattr(grouped, how)().to_numpy().T)
    return np.ascontiguousarray(out.T)


def grouped_cumcount(
    mask: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """Number of the client's rows up to each row where ``mask`` holds (int64, exact).

    At the rows ``at`` only (all rows when None): the running total is needed for every row,
    but the per-client differencing only where it is read.
    """
    total = np.zeros(client_start.shape[0] + 1, dtype=np.int64)  # total[i + 1]: rows <= i
    np.cumsum(mask, dtype=np.int64, out=total[1:])
    if at is None:
        return total[1:] - total[client_start]
    return total[at + 1] - total[client_start[at]]


def window_count(mask: np.ndarray, client_start: np.ndarray, window: int) -> np.ndarray:
    """Rows where ``mask`` holds among the latest ``window`` rows of the client (int64)."""
    total = np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(mask, dtype=np.int64)))
    rows = np.arange(1, client_start.shape[0] + 1, dtype=np.int64)
    first = np.maximum(rows - window, client_start)
    return total[rows] - total[first]


def last_valid_index(
    valid: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """Index of the client's latest valid row up to each row (or the rows ``at``); -1 if none."""
    rows = np.arange(valid.shape[0], dtype=np.int64)
    latest = pick(np.maximum.accumulate(np.where(valid, rows, -1)), at)
    return np.where(latest >= pick(client_start, at), latest, -1)


def previous_valid_index(valid: np.ndarray, client_start: np.ndarray) -> np.ndarray:
    """Index of the client's latest valid row strictly before each row; -1 where none."""
    latest = np.maximum.accumulate(np.where(valid, np.arange(valid.shape[0], dtype=np.int64), -1))
    before = np.empty_like(latest)
    before[:1] = -1
    before[1:] = latest[:-1]
    return np.where(before >= client_start, before, -1)


def first_valid_index(
    valid: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """Index of the client's first valid row, where it lies at or before each row; else -1.

    At the rows ``at`` only (all rows when None).
    """
    # valid rows counted over all clients: the client's first valid row is the valid row that
    # follows the count before the client, and it is seen once the count has grown past it
    seen = np.zeros(valid.shape[0] + 1, dtype=np.int64)  # seen[i + 1]: valid rows <= i
    np.cumsum(valid, dtype=np.int64, out=seen[1:])
    valid_rows = np.append(np.flatnonzero(valid), -1)  # -1: the index read when none is left
    before = seen[pick(client_start, at)]
    upto = seen[1:] if at is None else seen[at + 1]
    return np.where(upto > before, valid_rows[before], -1)


# Float slack for "at least" rules on scores: 10.2 - 4.2 is 5.999999999999999 in binary floating
# point, yet a 6-point fall meets "improves by at least 6". Far below any scale's resolution.
AT_LEAST_SLACK = 1e-9


def at_least(values: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """``values >= threshold`` up to :data:`AT_LEAST_SLACK` (False where either is NaN)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(values >= np.subtract(threshold, AT_LEAST_SLACK))


def take(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[index]`` as float64, NaN where ``index`` is -1."""
    # the fancy index already copies: convert without a second copy when already float64
    out = values[np.maximum(index, 0)].astype(np.float64, copy=False)
    np.copyto(out, np.nan, where=index < 0)  # cheaper than boolean-index assignment
    return out


def pick(values: np.ndarray, at: np.ndarray | None) -> np.ndarray:
    """``values`` at the rows ``at`` (all rows when ``at`` is None)."""
    return values if at is None else values[at]


def carry_forward(
    values: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """The client's latest non-missing value up to each row (NaN before the first)."""
    return take(values, last_valid_index(~np.isnan(values), client_start, at))


def first_value(
    values: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """The client's first non-missing value, from that row on (NaN before it)."""
    return take(values, first_valid_index(~np.isnan(values), client_start, at))


def expanding_min(
    values: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """Smallest non-missing value of the client up to each row (NaN before the first)."""
    filled = np.where(np.isnan(values), np.inf, values)
    low = pick(_grouped_running("cummin", filled[None, :], client_start)[0], at)
    return np.where(low == np.inf, np.nan, low)


def grouped_cummax(values: np.ndarray, client_start: np.ndarray) -> np.ndarray:
    """Largest value of the client up to each row (pandas' grouped cummax, NaN skipped)."""
    return _grouped_running("cummax", values[None, :], client_start)[0]


def expanding_max(
    values: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """Largest non-missing value of the client up to each row (NaN before the first)."""
    return -expanding_min(-values, client_start, at)


def successive_difference(values: np.ndarray, client_start: np.ndarray) -> np.ndarray:
    """On each row with a value: the change from the client's previous value; else NaN."""
    previous = take(values, previous_valid_index(~np.isnan(values), client_start))
    return values - previous


@dataclass(frozen=True)
class Trend:
    """Expanding level and least-squares course of a series, as of each row."""

    count: np.ndarray  # valid observations so far (float64)
    mean: np.ndarray
    sd: np.ndarray  # sample SD (ddof=1), NaN below 2 observations
    slope: np.ndarray  # least-squares slope of value on x, NaN below 2 distinct x


def _ratio(numerator: np.ndarray, denominator: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` where ``valid``, NaN elsewhere (no division warnings)."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=valid)
    return out


def _centred_sums(
    a: np.ndarray, b: np.ndarray, client_start: np.ndarray, at: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean of ``b``, and centred sums of squares/products (aa, ab, bb) of the pairs.

    Sums run over the client's rows so far where both are present; the last five values are
    returned at the rows ``at``. Values are first centred on the client's first pair, so that
    a constant series gives exactly zero.
    """
    valid = ~(np.isnan(a) | np.isnan(b))
    first = first_valid_index(valid, client_start)
    a0, b0 = take(a, first), take(b, first)
    # rows: da, db, da*da, da*db, db*db, written in place to spare temporaries
    block = np.empty((5, a.shape[0]))
    da, db = block[0], block[1]
    np.subtract(a, a0, out=da)
    np.subtract(b, b0, out=db)
    invalid = ~valid
    np.copyto(da, 0.0, where=invalid)  # cheaper than boolean-index assignment
    np.copyto(db, 0.0, where=invalid)
    np.multiply(da, da, out=block[2])
    np.multiply(da, db, out=block[3])
    np.multiply(db, db, out=block[4])
    sums = _grouped_cumsum_block(block, client_start)
    del block, da, db
    sa, sb, saa, sab, sbb = (pick(column, at) for column in sums)
    n = grouped_cumcount(valid, client_start, at).astype(np.float64)
    has = n > 0
    mean_b = pick(b0, at) + _ratio(sb, n, has)
    saa = saa - _ratio(sa * sa, n, has)
    sab = sab - _ratio(sa * sb, n, has)
    sbb = sbb - _ratio(sb * sb, n, has)
    return n, mean_b, saa, sab, sbb, sa


def expanding_trend(
    x: np.ndarray, y: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> Trend:
    """Mean, SD and least-squares slope of ``y`` on ``x`` over rows where both are present."""
    n, mean, sxx, sxy, syy, _ = _centred_sums(x, y, client_start, at)
    variance = np.maximum(_ratio(syy, n - 1, n >= 2), 0.0)
    slope = _ratio(sxy, sxx, (n >= 2) & (sxx > 0))
    return Trend(count=n, mean=mean, sd=np.sqrt(variance), slope=slope)


def expanding_correlation(
    a: np.ndarray, b: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """Pearson correlation of ``a`` and ``b`` over rows where both are present, as of each row.

    NaN below 2 pairs or where either series is still constant.
    """
    _, _, saa, sab, sbb, _ = _centred_sums(a, b, client_start, at)
    ok = (saa > 0) & (sbb > 0)
    return _ratio(sab, np.sqrt(np.where(ok, saa * sbb, 1.0)), ok)


def paired_count(
    a: np.ndarray, b: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """Rows so far where both ``a`` and ``b`` are present (float64)."""
    valid = ~(np.isnan(a) | np.isnan(b))
    return grouped_cumcount(valid, client_start, at).astype(np.float64)


def expanding_mean(
    values: np.ndarray, client_start: np.ndarray, at: np.ndarray | None = None
) -> np.ndarray:
    """Mean of the client's non-missing values up to each row (NaN before the first)."""
    valid = ~np.isnan(values)
    first = first_valid_index(valid, client_start)
    deviation = np.where(valid, values - take(values, first), 0.0)
    n = grouped_cumcount(valid, client_start, at)
    total = pick(grouped_cumsum(deviation, client_start), at)
    return take(values, pick(first, at)) + _ratio(total, n, n > 0)


def recent_index(
    valid: np.ndarray, client_start: np.ndarray, window: int, at: np.ndarray | None = None
) -> np.ndarray:
    """(rows, window) indices of the client's latest ``window`` valid rows up to each row.

    Column 0 is the latest; -1 where the client has fewer valid rows so far.
    """
    valid_rows = np.flatnonzero(valid)
    seen = np.cumsum(valid, dtype=np.int64)  # valid rows up to each row, over all clients
    seen_before_client = np.concatenate((np.zeros(1, dtype=np.int64), seen))[client_start]
    seen, seen_before_client = pick(seen, at), pick(seen_before_client, at)
    out = np.full((seen.shape[0], window), -1, dtype=np.int64)
    for lag in range(window):  # the window width, not rows or clients
        rank = seen - 1 - lag
        ok = rank >= seen_before_client
        out[ok, lag] = valid_rows[rank[ok]]
    return out


def window_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise least-squares slope of ``y`` on ``x`` over (rows, k) matrices, NaN-aware.

    NaN where a row has fewer than 2 points with distinct x.
    """
    valid = ~(np.isnan(x) | np.isnan(y))
    n = valid.sum(axis=1).astype(np.float64)
    xs = np.where(valid, x, 0.0)
    ys = np.where(valid, y, 0.0)
    has = n > 0
    x_mean = _ratio(xs.sum(axis=1), n, has)
    y_mean = _ratio(ys.sum(axis=1), n, has)
    dx = np.where(valid, x - x_mean[:, None], 0.0)
    dy = np.where(valid, y - y_mean[:, None], 0.0)
    sxx = (dx * dx).sum(axis=1)
    return _ratio((dx * dy).sum(axis=1), sxx, (n >= 2) & (sxx > 0))


@dataclass(frozen=True)
class SessionArrays:
    """Per-row arrays of a sessions frame sorted by (client, session_number).

    Scores are float64 with NaN where missing and on every row that was not attended.
    """

    client_start: np.ndarray  # int64
    session_number: np.ndarray  # float64
    day: np.ndarray  # float64 days since the epoch
    attended: np.ndarray  # bool
    cancelled: np.ndarray  # bool
    no_show: np.ndarray  # bool
    alliance_client: np.ndarray
    alliance_therapist: np.ndarray
    alliance_goal: np.ndarray
    alliance_task: np.ndarray
    alliance_bond: np.ndarray
    symptom: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(self.client_start.shape[0])

    def window(self, first_row: int, end_row: int) -> SessionArrays:
        """Rows [first_row, end_row) as their own frame; must not split a client."""
        return SessionArrays(
            **{
                name: getattr(self, name)[first_row:end_row]
                for name in self.__dataclass_fields__
                if name != "client_start"
            },
            client_start=self.client_start[first_row:end_row] - first_row,
        )


def events_known_by_row(client_start: np.ndarray, event_rows: np.ndarray) -> np.ndarray:
    """Per row i: number of events of i's client known at a row <= i (float, 0 when none).

    ``event_rows`` holds the row at which each event became known, one entry per event.
    """
    # events per row, cumulated: an exact integer count, linear in rows (a searchsorted of every
    # row into the event rows was the slowest step of the rupture and sudden-gain families)
    n = client_start.shape[0]
    known = np.zeros(n + 1, dtype=np.int64)  # known[i + 1]: events at rows <= i, all clients
    np.cumsum(np.bincount(np.asarray(event_rows, dtype=np.int64), minlength=n), out=known[1:])
    return (known[1:] - known[client_start]).astype(np.float64)
