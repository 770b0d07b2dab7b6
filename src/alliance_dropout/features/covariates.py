"""Baseline covariates (``data.client_features``) as model inputs, one value per episode.

Client characteristics known at intake predict dropout beside the session signals: in the
meta-analysis of Swift & Greenberg (2012, J Consult Clin Psychol 80:547-559) younger age, lower
education and minority status raised dropout, and routine-care studies add employment status
and referral route (e.g. Saxon, Barkham et al. 2017). Audit attributes are never covariates
(the config refuses the overlap).

A covariate is numeric when its training column is numeric, else categorical. What the model
keeps is aggregate: for a categorical covariate, the levels held by at least
``min_level_clients`` training clients (rarer levels and unseen ones count as "other", so a
free-text or id-like column cannot smuggle a single client's value into the model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout.errors import ConfigError
from alliance_dropout.features.spec import FeatureSpec

PREFIX = "client_"
_REFERENCE = (
    "Baseline predictors of dropout: Swift & Greenberg 2012, J Consult Clin Psychol 80:547-559"
)


@dataclass(frozen=True)
class Covariates:
    """Which baseline covariates the model uses and how each becomes feature columns."""

    numeric: tuple[str, ...] = ()
    # categorical covariate -> its kept levels (each becomes a 0/1 column)
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def learn(
        cls, clients: pd.DataFrame, names: list[str], min_level_clients: int = 10
    ) -> Covariates:
        """The covariates' kinds and kept levels from the training clients table."""
        numeric, categorical = [], {}
        for name in names:
            column = clients[name]
            if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
                numeric.append(name)
                continue
            counts = column.dropna().astype(str).value_counts()
            categorical[name] = tuple(sorted(counts.index[counts >= min_level_clients]))
        return cls(tuple(numeric), categorical)

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def columns(self) -> list[str]:
        cols = [f"{PREFIX}{name}" for name in self.numeric]
        for name, levels in self.categorical.items():
            cols += [f"{PREFIX}{name}_{k}" for k in range(len(levels))]
        return cols

    def attach_to_sessions(
        self, sessions: pd.DataFrame, clients: pd.DataFrame | None, source: str
    ) -> pd.DataFrame:
        """Session rows with each covariate of their client as a column (for the builder)."""
        if not self.names:
            return sessions
        if clients is None:
            raise ConfigError(
                f"{source}: this model uses baseline covariates {self.names}: give the clients "
                "table (data.clients=PATH)"
            )
        missing = [n for n in self.names if n not in clients.columns]
        if missing:
            raise ConfigError(f"{source}: the clients table lacks covariates {missing}")
        table = clients.drop_duplicates(c.CLIENT_ID, keep="last").set_index(c.CLIENT_ID)
        out = sessions.drop(columns=[n for n in self.names if n in sessions.columns])
        for name in self.names:
            out[name] = sessions[c.CLIENT_ID].map(table[name]).to_numpy()
        return out

    def features(self, X: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
        """``X`` (one row per prediction point) with the covariate feature columns appended.

        Values come from the session rows' covariate columns (constant within a client: the
        client's latest row counts); a missing covariate is NaN (numeric) or all-0 (levels).
        """
        if not self.names:
            return X
        present = [n for n in self.names if n in sessions.columns]
        per_client = sessions.drop_duplicates(c.CLIENT_ID, keep="last").set_index(c.CLIENT_ID)
        ids = X[c.CLIENT_ID]
        new: dict[str, np.ndarray] = {}
        for name in self.numeric:
            values = (
                pd.to_numeric(ids.map(per_client[name]), errors="coerce")
                if name in present
                else pd.Series(np.nan, index=X.index)
            )
            new[f"{PREFIX}{name}"] = values.to_numpy(dtype=np.float32, na_value=np.nan)
        for name, levels in self.categorical.items():
            text = (
                ids.map(per_client[name]).astype("string")
                if name in present
                else pd.Series(pd.NA, index=X.index, dtype="string")
            )
            for k, level in enumerate(levels):
                new[f"{PREFIX}{name}_{k}"] = (text == level).fillna(False).to_numpy(np.float32)
        return pd.concat([X, pd.DataFrame(new, index=X.index)], axis=1)

    def specs(self) -> list[FeatureSpec]:
        out = [
            FeatureSpec(
                f"{PREFIX}{name}",
                "baseline_covariates",
                f"Baseline covariate '{name}' as recorded in the clients table (missing: empty).",
                "as recorded",
                _REFERENCE,
            )
            for name in self.numeric
        ]
        for name, levels in self.categorical.items():
            out += [
                FeatureSpec(
                    f"{PREFIX}{name}_{k}",
                    "baseline_covariates",
                    f"1 if the client's '{name}' is '{level}', else 0.",
                    "0/1",
                    _REFERENCE,
                )
                for k, level in enumerate(levels)
            ]
        return out
