"""Estimator pipelines and the fitted risk model that maps validated session rows to risks.

The scikit-learn pipeline starts from the landmark feature frame (one row per prediction
point): its first steps are the feature transformers that learn from training data (expected
course, therapist context), so cross-validation never lets a fold see its own outcomes. Turning
session rows into landmark rows changes the number of rows, so it is a plain function
(``build_features``) that ``DropoutRiskModel`` applies before the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.config.modeling import ModelConfig, ModelKind
from alliance_dropout.contract import Scale
from alliance_dropout.features.builder import ID_COLUMNS, FeatureSettings
from alliance_dropout.features.dictionary import feature_dictionary
from alliance_dropout.features.learned import ExpectedCourseDeviation, TherapistContext
from alliance_dropout.features.spec import FeatureSpec


def make_estimator(
    cfg: ModelConfig, seed: int, clock_columns: tuple[str, ...] = ()
) -> BaseEstimator:
    """The final estimator of the pipeline, from config.

    ``cfg.params`` go to the estimator as they are: their defaults live in ``conf/model/`` only.
    ``clock_columns`` (a hazard's session number and sessions ahead) enter a logistic model as
    cubic B-splines held constant beyond the data: the baseline hazard of a discrete-time model
    needs a flexible shape of time (Singer & Willett 1993 use a dummy per period), and a linear
    term would extrapolate its trend over every projected session. Trees need neither.
    """
    if cfg.kind is ModelKind.lightgbm:
        params = dict(cfg.params)
        # determinism: fixed threads and row-wise histogram building (library-notes, LightGBM)
        return LGBMClassifier(
            **params,
            class_weight=cfg.class_weight,
            random_state=seed,
            deterministic=True,
            force_row_wise=True,
            n_jobs=2,
            verbose=-1,
        )
    params = dict(cfg.params)
    clock = []
    if clock_columns:
        splines = SplineTransformer(n_knots=6, degree=3, knots="quantile", extrapolation="constant")
        clock = [
            (
                "clock",
                ColumnTransformer(
                    [("splines", splines, list(clock_columns))],
                    remainder="passthrough",
                    verbose_feature_names_out=False,
                ).set_output(transform="pandas"),
            )
        ]
    return Pipeline(
        [
            *clock,
            (
                "impute",
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
            ("logreg", LogisticRegression(class_weight=cfg.class_weight, **params)),
        ]
    )


def learned_steps(seed: int, exposure_column: str | None = None) -> list[tuple[str, Any]]:
    """The transformers that learn features from training data (before the estimator)."""
    return [
        ("expected_course", ExpectedCourseDeviation(step_column="attendance_attended")),
        (
            "therapist_context",
            TherapistContext(random_state=seed, exposure_column=exposure_column),
        ),
    ]


def make_pipeline(
    cfg: ModelConfig,
    seed: int,
    exposure_column: str | None = None,
    clock_columns: tuple[str, ...] = (),
) -> Pipeline:
    """Landmark feature frame -> learned context features -> estimator.

    Hazard framing: ``exposure_column`` makes the therapist's dropout rate one per session at
    risk; ``clock_columns`` are the hazard's time (see :func:`make_estimator`).
    """
    drop_ids = ColumnTransformer(
        [("ids", "drop", list(ID_COLUMNS))],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    pipe = Pipeline(
        [
            *learned_steps(seed, exposure_column),
            ("drop_ids", drop_ids),
            ("model", make_estimator(cfg, seed, clock_columns)),
        ]
    )
    return pipe.set_output(transform="pandas")


def learned_feature_specs(pipe: Pipeline) -> list[FeatureSpec]:
    """Dictionary entries of the columns the pipeline's learned transformers add."""
    return pipe["expected_course"].feature_specs() + pipe["therapist_context"].feature_specs()


def contributions(pipe: Pipeline, X: pd.DataFrame) -> pd.DataFrame:
    """Per-row additive contributions to the log-odds of one fitted pipeline, per feature.

    LightGBM: its own SHAP values (``pred_contrib``). Logistic regression: coefficient times the
    standardised value (the exact additive decomposition of a linear model); a feature's
    missing-indicator term is added to the feature's own.
    """
    Xt = pipe[:-1].transform(X)
    model = pipe[-1]
    if isinstance(model, LGBMClassifier):
        contrib = np.asarray(model.predict(Xt, pred_contrib=True))[:, :-1]
        return pd.DataFrame(contrib, columns=Xt.columns, index=X.index)
    impute, scale, logreg = model["impute"], model["scale"], model["logreg"]
    Xm = model["clock"].transform(Xt) if "clock" in model.named_steps else Xt
    Z = scale.transform(impute.transform(Xm))
    names = impute.get_feature_names_out(Xm.columns)
    terms = pd.DataFrame(np.asarray(Z) * logreg.coef_[0], columns=names, index=X.index)
    out = pd.DataFrame(0.0, index=X.index, columns=list(Xt.columns))
    for name in names:
        base = str(name).removeprefix("missingindicator_")
        if base not in out.columns:  # a spline column of a clock column: "<column>_sp_<k>"
            base = base.rsplit("_sp_", 1)[0]
        out[base] = out[base] + terms[name]
    return out


@dataclass
class DropoutRiskModel:
    """A fitted, calibrated model with the feature settings it was trained with.

    ``predict_latest`` maps validated session rows to one calibrated risk per client as of its
    latest row; ``predict_proba`` scores a landmark feature frame.
    """

    settings: FeatureSettings
    classifier: CalibratedClassifierCV
    model_kind: str
    feature_names: list[str] = field(default_factory=list)

    @property
    def features(self) -> FeaturesConfig:
        return self.settings.features

    @property
    def symptom(self) -> Scale:
        return self.settings.symptom

    @property
    def alliance(self) -> Scale:
        return self.settings.alliance

    def landmark_frame(
        self, sessions: pd.DataFrame, landmarks: list[int] | None = None
    ) -> pd.DataFrame:
        return self.settings.build(sessions, landmarks)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classifier.predict_proba(X)[:, 1], dtype=float)

    # a landmark classifier answers the eventual risk only; hazard models also each horizon
    has_horizons = False

    @property
    def served_horizons(self) -> list[int]:
        """The horizons the served model answers (those it was evaluated at)."""
        return []

    def predict_horizons(self, X: pd.DataFrame, horizons: list[int]) -> list[np.ndarray]:
        """[eventual risk, risk of dropout within each horizon]; a classifier of the eventual
        outcome has no horizon risks (NaN)."""
        risk = self.predict_proba(X)
        return [risk, *(np.full(len(X), np.nan) for _ in horizons)]

    @property
    def last_trained_session(self) -> int:
        """The latest landmark session the model learned from; later ones are out of range."""
        return max(self.features.landmarks)

    def predict_latest(self, sessions: pd.DataFrame, horizons: Sequence[int] = ()) -> pd.DataFrame:
        """Risks per client as of its latest row (one column per horizon)."""
        X = self.landmark_frame(sessions, None)
        out = X[list(ID_COLUMNS)].copy()
        risks = self.predict_horizons(X, list(horizons))
        out["dropout_risk"] = risks[0]
        for h, r in zip(horizons, risks[1:], strict=True):
            out[f"dropout_risk_within_{h}"] = r
        return out

    def _pipelines(self) -> list[Pipeline]:
        return [cc.estimator for cc in self.classifier.calibrated_classifiers_]

    def transform_features(self, X: pd.DataFrame) -> pd.DataFrame:
        """The features as the estimator sees them: the landmark frame plus the learned context
        features (from the pipeline fitted on all training data), without the ID columns."""
        return self._pipelines()[0][:-1].transform(X)

    def feature_specs(self) -> list[FeatureSpec]:
        """Dictionary of every feature the model sees, learned ones with its own settings."""
        return (
            feature_dictionary(self.features)
            + self.settings.covariates.specs()
            + learned_feature_specs(self._pipelines()[0])
        )

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Log-odds contribution per feature (mean over the fitted pipelines, if several)."""
        parts = [contributions(p, X) for p in self._pipelines()]
        return sum(parts[1:], parts[0]) / len(parts)
