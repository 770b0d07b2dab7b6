"""What counts as dropout: the label of each labeled episode, by the configured definition."""

from __future__ import annotations

import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout.config.modeling import LabelConfig, LabelDefinition


def episode_labels(outcomes: pd.DataFrame, sessions: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """1/0 label per labeled episode (index client_id). Ongoing and unlisted clients get none.

    ``dropout``: the recorded status (dropout = 1, completed = 0).
    ``early_termination``: an ended episode (completed or dropout) with fewer than
    ``cfg.min_attended`` attended sessions = 1, other ended episodes = 0.
    """
    ended = outcomes[outcomes[c.STATUS].isin([c.COMPLETED, c.DROPOUT])]
    ended = ended[ended[c.CLIENT_ID].isin(sessions[c.CLIENT_ID])]
    if cfg.definition is LabelDefinition.dropout:
        label = (ended[c.STATUS] == c.DROPOUT).astype("int8")
    else:
        attended = (
            sessions[sessions[c.ATTENDANCE] == c.ATTENDED].groupby(c.CLIENT_ID, sort=False).size()
        )
        n = ended[c.CLIENT_ID].map(attended).fillna(0)
        label = (n < cfg.min_attended).astype("int8")
    return pd.Series(
        label.to_numpy(), index=pd.Index(ended[c.CLIENT_ID], name=c.CLIENT_ID), name="label"
    )


def describe_label(cfg: LabelConfig) -> str:
    """The label in plain words, as the run's tags and the model card state it."""
    if cfg.definition is LabelDefinition.dropout:
        return "dropout: outcome status 'dropout' = 1, 'completed' = 0; 'ongoing' unlabeled"
    # the training stage drops the decided landmarks (training._open_label_rows): the card
    # must say so, or its test figures read as if they covered every landmark
    k = cfg.min_attended
    return (
        f"early_termination: an ended episode with fewer than {k} attended "
        "sessions = 1, other ended episodes = 0; 'ongoing' unlabeled; trained and evaluated "
        f"only at landmarks where the client has attended fewer than {k} sessions so far, "
        f"where the label is still open (once {k} are attended it is already 0)"
    )
