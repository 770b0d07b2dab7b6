"""The MLflow pyfunc wrapper: raw session rows in the contract's format -> one risk per client.

Logged as "models from code" (``serving_entry.py`` calls ``set_model``), so no pickled wrapper
class travels with the model; the fitted ``DropoutRiskModel`` is an artifact.
"""

from __future__ import annotations

from typing import Any

import joblib
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema

from alliance_dropout import contract as c
from alliance_dropout.config import DataConfig, ScaleConfig
from alliance_dropout.modeling.models import DropoutRiskModel
from alliance_dropout.validation import RawTables, validate_tables

OUTPUT_COLUMNS = c.SERVED_COLUMNS


def score_sessions(model: DropoutRiskModel, sessions: pd.DataFrame) -> pd.DataFrame:
    """Validate raw session rows with the contract's schemas, then score each valid client.

    Clients with rows that fail validation get no risk (they are left out, as in scoring);
    contract-conformant input passes unchanged.
    """
    data_cfg = DataConfig(
        sessions="<request>",
        symptom=ScaleConfig(**_scale_fields(model.symptom)),
        max_quarantine_share=1.0,
    )
    raw = RawTables(
        sessions=sessions, outcomes=None, clients=None, sources={"sessions": "<request>"}
    )
    validated = validate_tables(raw, data_cfg)
    if validated.sessions.empty:
        return pd.DataFrame({col: [] for col in OUTPUT_COLUMNS})
    risks = model.predict_latest(validated.sessions)
    return risks.rename(columns={"landmark_session": "as_of_session"})[list(OUTPUT_COLUMNS)]


def _scale_fields(scale: c.Scale) -> dict[str, Any]:
    return {
        "name": scale.name,
        "min": scale.min,
        "max": scale.max,
        "clinical_cutoff": scale.clinical_cutoff,
        "reliable_change": scale.reliable_change,
        "higher_is_worse": scale.higher_is_worse,
    }


class DropoutPyfunc(PythonModel):
    """pyfunc: POST raw session rows (dataframe_split) -> client_id, as_of_session, dropout_risk."""

    def load_context(self, context: Any) -> None:
        self.model: DropoutRiskModel = joblib.load(context.artifacts["risk_model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return score_sessions(self.model, pd.DataFrame(model_input))


def synthetic_input_example() -> pd.DataFrame:
    """A made-up two-client history in the contract's format (never rows of real input)."""
    return pd.DataFrame(
        {
            c.CLIENT_ID: ["example-A"] * 3 + ["example-B"] * 2,
            c.THERAPIST_ID: ["example-T1"] * 3 + ["example-T2"] * 2,
            c.SESSION_NUMBER: np.array([1, 2, 3, 1, 2], dtype="int64"),
            c.SESSION_DATE: ["2025-01-06", "2025-01-13", "2025-01-20", "2025-02-03", "2025-02-10"],
            c.ATTENDANCE: [c.ATTENDED, c.ATTENDED, c.NO_SHOW, c.ATTENDED, c.ATTENDED],
            c.ALLIANCE_CLIENT: [3.9, 3.2, np.nan, 4.4, 4.5],
            c.ALLIANCE_THERAPIST: [3.6, 3.5, np.nan, 4.0, 4.1],
            c.SYMPTOM_SCORE: [17.0, 16.0, np.nan, 12.0, 10.0],
        }
    )


def model_signature() -> ModelSignature:
    """Session columns in, one risk per client out; subscale columns optional."""
    inputs = Schema(
        [
            ColSpec("string", c.CLIENT_ID),
            ColSpec("string", c.THERAPIST_ID),
            ColSpec("long", c.SESSION_NUMBER),
            ColSpec("string", c.SESSION_DATE),
            ColSpec("string", c.ATTENDANCE),
            ColSpec("double", c.ALLIANCE_CLIENT),
            ColSpec("double", c.ALLIANCE_THERAPIST),
            ColSpec("double", c.SYMPTOM_SCORE),
            *[ColSpec("double", name, required=False) for name in c.ALLIANCE_SUBSCALES],
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", c.CLIENT_ID),
            ColSpec("long", "as_of_session"),
            ColSpec("double", "dropout_risk"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)
