"""Reference rules with no learning, evaluated beside every model on the same test rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout.config.modeling import ReferenceRulesConfig
from alliance_dropout.contract import Scale
from alliance_dropout.features.grouped import at_least

LATEST_ALLIANCE = "rule_latest_alliance"
PCOMS_ALERT = "rule_pcoms_alert"
RULES = (LATEST_ALLIANCE, PCOMS_ALERT)


def latest_alliance_as_of_rows(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per session row: the latest and the previous rated client alliance at or before it.

    ``sessions`` must be sorted by (client_id, session_number); uses only earlier rows.
    """
    rated = sessions[c.ALLIANCE_CLIENT].notna()
    latest = sessions[c.ALLIANCE_CLIENT].where(rated)
    previous = latest[rated].groupby(sessions.loc[rated, c.CLIENT_ID]).shift()
    out = pd.DataFrame(
        {"latest": latest, "previous": previous.reindex(sessions.index)}, index=sessions.index
    )
    # carry the last rating (and the one before it) forward over unrated rows of the client
    return out.groupby(sessions[c.CLIENT_ID], sort=False).ffill()


def reference_scores(
    sessions: pd.DataFrame,
    rows: pd.DataFrame,
    alliance: Scale,
    cfg: ReferenceRulesConfig,
) -> pd.DataFrame:
    """Scores of the reference rules for prediction rows (client_id, landmark_session).

    Higher score = riskier. The latest-alliance rule scores ``max - alliance`` (a client with
    no rating yet sits at the scale's midpoint); the PCOMS-style alert is 0/1.
    """
    s = sessions.sort_values([c.CLIENT_ID, c.SESSION_NUMBER], kind="stable")
    asof = latest_alliance_as_of_rows(s)
    asof[c.CLIENT_ID] = s[c.CLIENT_ID].to_numpy()
    asof["landmark_session"] = s[c.SESSION_NUMBER].to_numpy()
    merged = rows[[c.CLIENT_ID, "landmark_session"]].merge(
        asof, on=[c.CLIENT_ID, "landmark_session"], how="left", validate="one_to_one"
    )
    latest = merged["latest"].to_numpy(dtype=float)
    midpoint = (alliance.min + alliance.max) / 2
    latest_score = alliance.max - np.where(np.isnan(latest), midpoint, latest)
    drop = merged["previous"].to_numpy(dtype=float) - latest
    # the same float slack as the features' "at least" rules: 2.05 -> 1.80 is a 0.25-point drop
    alert = (latest < cfg.alert_cutoff) | at_least(drop, cfg.alert_drop)
    return pd.DataFrame(
        {LATEST_ALLIANCE: latest_score, PCOMS_ALERT: alert.astype(float)}, index=rows.index
    )
