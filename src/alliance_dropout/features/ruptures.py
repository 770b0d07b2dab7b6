"""Alliance rupture and repair features from session-by-session client alliance ratings.

Definition (every quantity uses only the client's earlier rows):

- **Rupture** at an attended session with a rating a_i: the reference level L_i (the previous
  valid rating, or the mean of all earlier valid ratings) minus a_i is at least
  ``max(threshold_sd * s_i, min_drop_points)``, where s_i is the SD of the client's earlier valid
  ratings; while fewer than ``min_sessions_for_sd`` earlier ratings exist, the fixed
  ``min_drop_points`` floor alone applies. L_i is the rupture's pre-rupture level.
- **Repair**: the first later session whose rating is back at or above L_i. It counts as a repair
  (``rupture_repaired_count``) when it comes within ``repair_window`` attended sessions after
  the rupture, at the row where it happens.
- **Unrepaired**: the ``repair_window``-th attended session after the rupture has passed without a
  repair; it counts at that session's row.
- **Open**: from the rupture row until the row of its return to L_i, however late; a rupture
  whose window has passed stays open until then.

Why: Stiles et al. (2004) identified rupture-repair sequences as a marked drop of a client's
session alliance rating relative to the client's own variability, followed by a return to the
previous level; Strauss et al. (2006) used a less strict drop. Gumz et al. (2012) showed the counts
depend strongly on the threshold and proposed combining the within-client SD with a fixed minimum
and using the stricter one, which ``max(k * s, floor)`` does. Eubanks, Muran & Safran (2018,
meta-analysis) link repaired ruptures to better outcome; McLaughlin et al. (2014) found
unrepaired ruptures predict worse outcome, which is why repaired and unrepaired are separate.
"""

from __future__ import annotations

import numpy as np

from alliance_dropout.config.features import RuptureConfig, RuptureReference
from alliance_dropout.features.grouped import (
    AT_LEAST_SLACK,
    at_least,
    events_known_by_row,
    first_valid_index,
    first_value,
    grouped_cummax,
    grouped_cumsum,
)
from alliance_dropout.features.spec import FeatureSpec

FAMILY = "ruptures"
_REFERENCE = (
    "Stiles et al. 2004, J Couns Psychol 51:81-92; Strauss et al. 2006, J Consult Clin Psychol "
    "74:337-345; Gumz et al. 2012, BMC Med Res Methodol 12:10; Eubanks, Muran & Safran 2018, "
    "Psychotherapy 55:508-519"
)


def _client_index(client_start: np.ndarray) -> np.ndarray:
    rows = np.arange(client_start.shape[0])
    return np.cumsum(client_start == rows) - 1


def _sum_before(values: np.ndarray, client_start: np.ndarray) -> np.ndarray:
    """Per row: sum of ``values`` over the client's earlier rows (exclusive cumulative sum).

    Summed per client (never a running total over the whole file minus its value at the
    client's start), so rounding cannot carry over from other clients' rows.
    """
    return grouped_cumsum(values, client_start) - values


def _rupture_levels(
    client_start: np.ndarray, alliance: np.ndarray, cfg: RuptureConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the reference level L and the drop L - a (NaN where not computable)."""
    rows = np.arange(alliance.shape[0])
    valid = ~np.isnan(alliance)
    if cfg.reference is RuptureReference.previous:
        last_valid = np.maximum.accumulate(np.where(valid, rows, -1))
        prev = np.concatenate([[-1], last_valid])[:-1]
        level = np.where(prev >= client_start, alliance[np.maximum(prev, 0)], np.nan)
    else:
        n_before = _sum_before(valid.astype(np.float64), client_start)
        sum_before = _sum_before(np.where(valid, alliance, 0.0), client_start)
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.where(n_before > 0, sum_before / n_before, np.nan)
    return level, level - alliance


def _drop_threshold(
    client_start: np.ndarray,
    alliance: np.ndarray,
    cfg: RuptureConfig,
) -> np.ndarray:
    """max(k * SD of earlier valid ratings, floor); the floor alone while too few ratings."""
    valid = ~np.isnan(alliance)
    n = _sum_before(valid.astype(np.float64), client_start)
    # Centre on the client's first rating before squaring, to keep the sums well conditioned.
    # The SD is shift-invariant and only used once >= 2 earlier ratings exist, so the first
    # rating is always an earlier one: no later information enters.
    first = first_value(alliance, client_start)
    centred = np.where(valid, alliance - first, 0.0)
    c1 = _sum_before(centred, client_start)
    c2 = _sum_before(centred**2, client_start)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.maximum(c2 - c1**2 / n, 0.0) / (n - 1)
    sd_rule = np.maximum(cfg.threshold_sd * np.sqrt(var), cfg.min_drop_points)
    return np.where(n >= cfg.min_sessions_for_sd, sd_rule, cfg.min_drop_points)


def rupture_rows(
    client_start: np.ndarray,
    alliance: np.ndarray,
    cfg: RuptureConfig,
    attended: np.ndarray | None = None,
) -> np.ndarray:
    """Rows where a rupture occurs (a rated session that drops far enough below its reference)."""
    client_start = np.asarray(client_start, dtype=np.int64)
    alliance = np.asarray(alliance, dtype=np.float64)
    _, drop = _rupture_levels(client_start, alliance, cfg)
    return _rupture_mask(client_start, alliance, cfg, attended, drop)


def _rupture_mask(
    client_start: np.ndarray,
    alliance: np.ndarray,
    cfg: RuptureConfig,
    attended: np.ndarray | None,
    drop: np.ndarray,
) -> np.ndarray:
    """:func:`rupture_rows` given the drops its caller already has."""
    threshold = _drop_threshold(client_start, alliance, cfg)
    # a drop of exactly the threshold (4.5 - 4.0) counts; a NaN drop (no rating or reference) not
    rupture = at_least(drop, threshold)
    if attended is not None:
        rupture &= np.asarray(attended, dtype=bool)
    return rupture


def _first_return(
    values: np.ndarray, start: np.ndarray, end: np.ndarray, level: np.ndarray
) -> np.ndarray:
    """First index in [start, end] with values >= level, else -1 (vectorised over queries).

    Binary lifting over a sparse table of block maxima: log2(longest client) steps.
    """
    n = values.shape[0]
    if start.shape[0] == 0 or n == 0:
        return np.full(start.shape[0], -1, dtype=np.int64)
    longest = int(max(1, (end - start + 1).max()))
    depth = max(1, int(np.ceil(np.log2(longest + 1))))
    table = [values]
    for k in range(1, depth + 1):
        prev, half = table[-1], 2 ** (k - 1)
        block = prev.copy()
        block[: n - half] = np.maximum(prev[: n - half], prev[half:])
        table.append(block)
    pos = start.copy()
    for k in range(depth, -1, -1):
        size = 2**k
        inside = pos + size - 1 <= end
        below = table[k][np.minimum(pos, n - 1)] < level
        pos = np.where(inside & below, pos + size, pos)
    found = (pos <= end) & (values[np.minimum(pos, n - 1)] >= level)
    return np.where(found, pos, -1)


def rupture_features(
    client_start: np.ndarray,
    alliance: np.ndarray,
    cfg: RuptureConfig,
    attended: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-row rupture/repair features as of that row (see the module docstring).

    ``attended`` marks the attended rows, which count the repair window; without it, rows with
    a rating are the attended sessions.
    """
    client_start = np.asarray(client_start, dtype=np.int64)
    alliance = np.asarray(alliance, dtype=np.float64)
    n = alliance.shape[0]
    rows = np.arange(n)
    level, drop = _rupture_levels(client_start, alliance, cfg)
    client_index = _client_index(client_start)
    rupture = _rupture_mask(client_start, alliance, cfg, attended, drop)
    rupture_at = np.flatnonzero(rupture)

    # Attended sessions ("occasions") count the repair window.
    occasion = ~np.isnan(alliance) if attended is None else np.asarray(attended, dtype=bool)
    occasion = occasion | rupture
    occ_rows = np.flatnonzero(occasion)
    occ_client = client_index[occ_rows]
    # last occasion of each occasion's client: occasions are grouped by client, so repeat each
    # client's last occasion over its run (linear, where a searchsorted is n log n)
    occ_last = np.flatnonzero(np.diff(occ_client, append=occ_client[-1:] + 1))
    occ_end = np.repeat(occ_last, np.diff(occ_last, prepend=-1))
    occ_of_row = np.cumsum(occasion) - 1
    r = occ_of_row[rupture_at]
    ratings = np.nan_to_num(alliance[occ_rows], nan=-np.inf)
    # The same float slack as for the drop: a mean of 4.2 is regained by a rating of 4.2.
    back = _first_return(ratings, r + 1, occ_end[r], level[rupture_at] - AT_LEAST_SLACK)

    m = cfg.repair_window
    repaired = (back >= 0) & (back - r <= m)
    unrepaired = ~repaired & (r + m <= occ_end[r])
    closed = back >= 0

    last = np.maximum.accumulate(np.where(rupture, rows, -1))
    has_rupture = (last >= 0) & (last >= client_start)
    opened = events_known_by_row(client_start, rupture_at)
    still_open = opened - events_known_by_row(client_start, occ_rows[back[closed]])
    depth = np.where(rupture, drop, 0.0)
    # Before the client's first rating nothing could be detected: missing, not "no rupture"
    # (an export without client ratings must not look like a run of stable alliances).
    rated = first_valid_index(~np.isnan(alliance), client_start) >= 0
    counts = {
        "rupture_count": opened,
        "rupture_repaired_count": events_known_by_row(client_start, occ_rows[back[repaired]]),
        "rupture_unrepaired_count": events_known_by_row(
            client_start, occ_rows[(r + m)[unrepaired]]
        ),
        "rupture_open": (still_open > 0).astype(np.float64),
        "rupture_max_drop": grouped_cummax(depth, client_start),
    }
    out = {name: np.where(rated, values, np.nan) for name, values in counts.items()}
    out["sessions_since_rupture"] = np.where(has_rupture, rows - last, np.nan).astype(np.float64)
    return out


def feature_specs(cfg: RuptureConfig) -> list[FeatureSpec]:
    """Dictionary entries of the rupture/repair features."""
    ref = (
        "the previous rated session"
        if cfg.reference is RuptureReference.previous
        else "the mean of all earlier rated sessions"
    )
    rupture = (
        f"a rated session whose client alliance is below {ref} by at least "
        f"max({cfg.threshold_sd:g} x the SD of the client's earlier ratings, "
        f"{cfg.min_drop_points:g} points) (the floor alone before "
        f"{cfg.min_sessions_for_sd} earlier ratings)"
    )
    m = cfg.repair_window
    specs = [
        ("rupture_count", f"Number of ruptures so far; a rupture is {rupture}.", "count"),
        (
            "rupture_repaired_count",
            f"Ruptures followed within {m} attended sessions by a rating back at or above the "
            "pre-rupture level, counted at the row of that return.",
            "count",
        ),
        (
            "rupture_unrepaired_count",
            f"Ruptures with no return to the pre-rupture level within {m} attended sessions, "
            f"counted {m} attended sessions after the rupture.",
            "count",
        ),
        (
            "rupture_open",
            "1 while at least one rupture has not yet been followed by a rating back at or above "
            "its pre-rupture level (however late), else 0.",
            "flag",
        ),
        (
            "sessions_since_rupture",
            "Scheduled sessions (rows) since the latest rupture; missing when there has been none.",
            "sessions",
        ),
        (
            "rupture_max_drop",
            "Largest drop below the reference level among the ruptures so far; 0 when none yet.",
            "WAI-SR points (1-5 item mean)",
        ),
    ]
    unrated = " Missing before the client's first alliance rating."
    return [
        FeatureSpec(
            name,
            FAMILY,
            text + ("" if name == "sessions_since_rupture" else unrated),
            unit,
            _REFERENCE,
        )
        for name, text, unit in specs
    ]
