"""The model registry: register a run's model and decide whether it becomes @champion."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from alliance_dropout import contract as c
from alliance_dropout import tracking as trk
from alliance_dropout.modeling.fitting import Examples
from alliance_dropout.modeling.models import DropoutRiskModel

CHAMPION = "champion"


@dataclass
class PromotionDecision:
    promoted: bool
    reason: str
    version: str | None = None
    previous_champion: str | None = None


def register_and_promote(
    model_uri: str,
    registered_name: str,
    run_id: str,
    new_auc: float,
    best_rule_auc: float,
    champion_auc: float | None,
    champion_version: str | None,
    margin: float,
) -> PromotionDecision:
    """Register the run's model; move the champion alias only if it beats rules and champion."""
    client = MlflowClient()
    version = str(mlflow.register_model(model_uri, registered_name).version)
    client.set_model_version_tag(registered_name, version, "run_id", run_id)
    if new_auc < best_rule_auc + margin:
        decision = PromotionDecision(
            False,
            f"test AUC {new_auc:.4f} does not beat the best reference rule "
            f"({best_rule_auc:.4f}) by the margin {margin}",
            version,
            champion_version,
        )
    elif champion_auc is not None and new_auc < champion_auc + margin:
        decision = PromotionDecision(
            False,
            f"test AUC {new_auc:.4f} does not beat champion v{champion_version} "
            f"({champion_auc:.4f} on the same test set) by the margin {margin}",
            version,
            champion_version,
        )
    else:
        against = (
            "no champion yet"
            if champion_auc is None
            else f"champion v{champion_version} had {champion_auc:.4f} on the same test set"
        )
        decision = PromotionDecision(
            True,
            f"test AUC {new_auc:.4f} beats the best reference rule ({best_rule_auc:.4f}); "
            f"{against}; margin {margin}",
            version,
            champion_version,
        )
        client.set_registered_model_alias(registered_name, CHAMPION, version)
    client.set_model_version_tag(registered_name, version, "promotion", decision.reason)
    return decision


def current_champion(registered_name: str) -> tuple[str, str] | None:
    """(version, model uri) of the champion, or None if there is none yet."""
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(registered_name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
    return str(mv.version), f"models:/{registered_name}@{CHAMPION}"


def champion_test_auc(champion_uri: str, test: Examples, sessions: pd.DataFrame) -> float:
    """The champion's ROC AUC on exactly this run's test rows, with its own feature settings."""
    champion: DropoutRiskModel = trk.load_risk_model(champion_uri)
    clients = test.X[c.CLIENT_ID].unique()
    rows_of = sessions[sessions[c.CLIENT_ID].isin(clients)]
    landmarks = sorted(test.X["landmark_session"].unique().tolist())
    X = champion.landmark_frame(rows_of, landmarks)
    keys = [c.CLIENT_ID, "landmark_session"]
    rows = (
        test.X[keys]
        .assign(label=test.y)
        .merge(X.assign(risk=champion.predict_proba(X))[[*keys, "risk"]], on=keys, how="inner")
    )
    return float(roc_auc_score(rows["label"], rows["risk"]))
