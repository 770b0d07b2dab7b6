"""The MLflow pyfunc wrapper: raw session rows in the contract's format -> an answer per client
(its risk, or the validation checks that excluded it).

Logged as "models from code" (``serving_entry.py`` calls ``set_model``), so no pickled wrapper
class travels with the model; the fitted ``DropoutRiskModel`` is an artifact.
"""

from __future__ import annotations

from typing import Any

import joblib
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema

from alliance_dropout import contract as c
from alliance_dropout import tracking as trk
from alliance_dropout.config import DataConfig, ScaleConfig
from alliance_dropout.features.covariates import Covariates
from alliance_dropout.modeling.models import DropoutRiskModel
from alliance_dropout.validation import RawTables, client_keys, validate_tables

EXCLUDED_BECAUSE = "excluded_because"
# a landmark classifier's answer; a hazard model adds dropout_risk_within_<h> for each of its
# horizons after dropout_risk (see output_columns)
OUTPUT_COLUMNS = (*c.SERVED_COLUMNS, c.FLAG_BEYOND_TRAINING_RANGE, EXCLUDED_BECAUSE)


def output_columns(horizons: list[int] | tuple[int, ...] = ()) -> tuple[str, ...]:
    return (
        c.CLIENT_ID,
        c.AS_OF_SESSION,
        *c.risk_columns(tuple(horizons)),
        c.FLAG_BEYOND_TRAINING_RANGE,
        EXCLUDED_BECAUSE,
    )


def not_scorable(message: str) -> MlflowException:
    """The error for a request with nothing to score: MLflow's scoring server answers HTTP 400."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def score_sessions(model: DropoutRiskModel, sessions: pd.DataFrame) -> pd.DataFrame:
    """Validate raw session rows with the contract's schemas, then answer every client sent.

    One row per client of the request, in the order they first appear: a scored client has
    ``as_of_session`` and ``dropout_risk`` and a null ``excluded_because``; a client with a row
    that failed validation has null ``as_of_session``/``dropout_risk`` and the failed checks in
    ``excluded_because`` (as in scoring, one bad row excludes its client: a risk from part of a
    history would be wrong). Nullable columns are objects holding None, so JSON gets ``null``.

    Raises ``not_scorable`` (HTTP 400) naming the checks when no client can be scored, and when
    any row has no ``client_id``: such a row could belong to any client of the request, so no
    client of that request is scored.
    """
    sessions = pd.DataFrame(sessions).reset_index(drop=True)
    missing = [col for col in c.SESSION_MANDATORY if col not in sessions.columns]
    if missing:
        raise not_scorable(f"required column(s) missing: {', '.join(missing)}")
    if sessions.empty:
        return _answer(
            pd.Index([]),
            pd.DataFrame(),
            pd.Series(dtype=object),
            model.served_horizons,
            model.last_trained_session,
        )
    data_cfg = DataConfig(
        sessions="<request>",
        symptom=ScaleConfig(**_scale_fields(model.symptom)),
        alliance=ScaleConfig(**_scale_fields(model.alliance)),
        max_quarantine_share=1.0,
    )
    raw = RawTables(
        sessions=sessions, outcomes=None, clients=None, sources={"sessions": "<request>"}
    )
    validated = validate_tables(raw, data_cfg)
    keys = client_keys(sessions[c.CLIENT_ID])
    requested = pd.Index(keys.dropna().unique())
    n_unattributed = int(keys.isna().sum())
    if n_unattributed:
        raise not_scorable(
            f"{n_unattributed} row(s) without a client_id (empty_client_id): such a row could "
            f"belong to any client of this request, so none of its {len(requested)} client(s) "
            "was scored; send every row with its client_id"
            + _checks_sentence(validated.client_checks, "other failed checks")
        )
    if validated.sessions.empty:
        raise not_scorable(
            f"no client could be scored: all {len(requested)} client(s) of this request have a "
            "row that failed validation"
            + _checks_sentence(validated.client_checks, "failed checks")
        )
    horizons = model.served_horizons
    risks = model.predict_latest(_with_covariates(model, sessions, validated.sessions), horizons)
    risks = risks.set_index(c.CLIENT_ID)
    return _answer(requested, risks, validated.client_checks, horizons, model.last_trained_session)


def _with_covariates(
    model: DropoutRiskModel, request: pd.DataFrame, valid: pd.DataFrame
) -> pd.DataFrame:
    """Valid rows with the model's covariates taken from the request's own columns (a client's
    latest row counts; a covariate not sent is missing for every client)."""
    names = model.settings.covariates.names
    if not names:
        return valid
    clients = request[[c.CLIENT_ID]].assign(
        **{n: request[n] if n in request.columns else None for n in names}
    )
    clients[c.CLIENT_ID] = client_keys(clients[c.CLIENT_ID])
    return model.settings.covariates.attach_to_sessions(valid, clients, "<request>")


def _checks_sentence(client_checks: pd.Series, label: str) -> str:
    if client_checks.empty:
        return ""
    counts = client_checks.str.split(", ").explode().value_counts().sort_index()
    listed = ", ".join(f"{check} ({n} client{'s' if n > 1 else ''})" for check, n in counts.items())
    return f"; {label}: {listed}"


def _answer(
    requested: pd.Index,
    risks: pd.DataFrame,
    client_checks: pd.Series,
    horizons: list[int],
    last_trained_session: int,
) -> pd.DataFrame:
    """One row per requested client: its risks, or the checks that excluded it."""
    scored = risks.reindex(requested) if len(risks) else pd.DataFrame(index=requested)
    as_of = scored.get("landmark_session", pd.Series(np.nan, index=requested))
    risk = scored.get("dropout_risk", pd.Series(np.nan, index=requested))
    because = client_checks.reindex(requested)
    ok = risk.notna().to_numpy()

    def nullable(values: pd.Series, cast: Any) -> pd.Series:
        return pd.Series(
            [cast(v) if k else None for v, k in zip(values, ok, strict=True)], dtype=object
        )

    return pd.DataFrame(
        {
            c.CLIENT_ID: pd.Series(list(requested), dtype=object),
            c.AS_OF_SESSION: nullable(as_of, int),
            **{
                name: nullable(scored.get(name, pd.Series(np.nan, index=requested)), float)
                for name in c.risk_columns(tuple(horizons))
            },
            c.FLAG_BEYOND_TRAINING_RANGE: nullable(as_of > last_trained_session, bool),
            EXCLUDED_BECAUSE: pd.Series(
                [
                    None if k else (str(b) if isinstance(b, str) else "not_scored")
                    for b, k in zip(because, ok, strict=True)
                ],
                dtype=object,
            ),
        }
    )[list(output_columns(horizons))]


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
    """pyfunc: POST raw session rows (dataframe_split) -> per client: client_id, as_of_session,
    dropout_risk, excluded_because (see ``score_sessions``)."""

    def load_context(self, context: Any) -> None:
        # unpickling runs code: check the file against the SHA-256 recorded when it was logged
        # (serve models from your own registry only; see the README)
        expected = (context.model_config or {}).get(trk.MODEL_DIGEST_TAG)
        path = trk.verified_model_file(context.artifacts["risk_model"], expected, "served model")
        self.model: DropoutRiskModel = joblib.load(path)

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


def model_signature(
    covariates: Covariates | None = None, horizons: list[int] | tuple[int, ...] = ()
) -> ModelSignature:
    """Session columns in (plus the model's baseline covariates, repeated on a client's rows,
    optional); out, per client: its risk, or the checks that excluded it.

    ``as_of_session`` and ``dropout_risk`` are null for an excluded client, ``excluded_because``
    is null for a scored one (MLflow's column specs cannot say "nullable": ``required=False``).
    """
    covariates = covariates or Covariates()
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
            *[ColSpec("double", name, required=False) for name in covariates.numeric],
            *[ColSpec("string", name, required=False) for name in covariates.categorical],
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", c.CLIENT_ID),
            ColSpec("long", c.AS_OF_SESSION, required=False),
            ColSpec("double", c.DROPOUT_RISK, required=False),
            *[ColSpec("double", c.dropout_risk_within(h), required=False) for h in horizons],
            ColSpec("boolean", c.FLAG_BEYOND_TRAINING_RANGE, required=False),
            ColSpec("string", EXCLUDED_BECAUSE, required=False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)
