"""Typed config schemas of the modeling stage (model, label, split, calibration, evaluation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any

from omegaconf import MISSING

from alliance_dropout.config.base import refuse_password


class ModelKind(Enum):
    logreg = "logreg"
    lightgbm = "lightgbm"


class Framing(Enum):
    # one classifier of "this episode eventually ends in dropout", trained at landmark sessions
    # on ended episodes only
    landmark = "landmark"
    # discrete-time competing risks over sessions (modeling/hazard.py): every session row of
    # every episode, ongoing ones censored
    hazard = "hazard"


class LabelDefinition(Enum):
    # the outcome status as recorded by the clinic (the contract's definition)
    dropout = "dropout"
    # an ended episode with fewer than `min_attended` attended sessions (NHS Talking Therapies
    # counts fewer than 2 attended treatment sessions as not having finished a course)
    early_termination = "early_termination"


class GroupBy(Enum):
    client = "client"
    therapist = "therapist"


class SplitBy(Enum):
    # whole groups (clients or therapists) drawn at random, stratified by outcome
    random = "random"
    # temporal validation (TRIPOD+AI): train on episodes that start before a date, test on later
    time = "time"


class CalibrationMethod(Enum):
    sigmoid = "sigmoid"
    isotonic = "isotonic"


@dataclass
class ModelConfig:
    """One estimator and its hyperparameters, as ``conf/model/<kind>.yaml`` sets them.

    The YAML files are the one source of every value: this schema gives types, no defaults,
    so a model built without its config file fails at once instead of running on other values.
    ``params`` go to the estimator unchanged.
    """

    kind: ModelKind = MISSING
    # 'balanced' re-weights classes inside the estimator; probabilities are calibrated after
    class_weight: str | None = MISSING
    # LightGBM only: pick n_estimators by early stopping on grouped CV folds (0: off)
    early_stopping_rounds: int = MISSING
    framing: Framing = MISSING
    # hazard framing: project risks no further than this session number
    last_session: int = MISSING
    # hazard framing: (client, landmark, later session) rows kept; non-event rows above it are
    # subsampled and weighted (modeling/hazard.py)
    max_person_periods: int = MISSING
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unset = [
            n
            for n in (
                "kind",
                "class_weight",
                "early_stopping_rounds",
                "framing",
                "last_session",
                "max_person_periods",
            )
            if getattr(self, n) == MISSING
        ]
        if unset:
            raise ValueError(f"model config without {unset}: compose it from conf/model/")
        if self.max_person_periods < 1000:
            raise ValueError("model.max_person_periods must be at least 1000")
        if self.early_stopping_rounds < 0:
            raise ValueError("model.early_stopping_rounds must be >= 0")


@dataclass
class LabelConfig:
    definition: LabelDefinition = LabelDefinition.dropout
    min_attended: int = 2

    def __post_init__(self) -> None:
        if self.min_attended < 1:
            raise ValueError("label.min_attended must be at least 1")


@dataclass
class SplitConfig:
    test_size: float = 0.25
    n_folds: int = 5
    # group folds (and the test split) by client, or by therapist to estimate performance
    # for therapists the model has never seen
    group_by: GroupBy = GroupBy.client
    by: SplitBy = SplitBy.random
    # split.by=time: episodes starting on or after this ISO date are the test set; unset, the
    # latest-starting `test_size` share of labeled episodes is
    time_cutoff: str | None = None

    def __post_init__(self) -> None:
        if self.time_cutoff is not None:
            try:
                date.fromisoformat(self.time_cutoff)
            except ValueError:
                raise ValueError(
                    f"split.time_cutoff must be an ISO date (YYYY-MM-DD), got {self.time_cutoff!r}"
                ) from None
        if not 0.05 <= self.test_size <= 0.5:
            raise ValueError("split.test_size must be within [0.05, 0.5]")
        if self.n_folds < 2:
            raise ValueError("split.n_folds must be at least 2")


@dataclass
class CalibrationConfig:
    method: CalibrationMethod = CalibrationMethod.sigmoid


@dataclass
class ReferenceRulesConfig:
    # PCOMS-style alert: latest client alliance below `alert_cutoff` (WAI-SR item mean), or
    # any drop since the previous rated session of at least `alert_drop` points
    alert_cutoff: float = 3.5
    alert_drop: float = 0.25


@dataclass
class EvaluationConfig:
    n_bootstrap: int = 200
    ci_level: float = 0.95
    alert_budgets: list[float] = field(default_factory=lambda: [0.1, 0.2])
    ece_bins: int = 10
    # decision curve thresholds
    threshold_min: float = 0.05
    threshold_max: float = 0.5
    threshold_step: float = 0.01
    # models fitted beside the main one and compared on the same test set
    comparators: list[ModelKind] = field(default_factory=lambda: [ModelKind.logreg])
    min_subgroup_size: int = 30
    # hazard framing: also evaluate the risk of dropout within the next h sessions
    horizons: list[int] = field(default_factory=lambda: [1, 4])

    def __post_init__(self) -> None:
        if any(h < 1 for h in self.horizons):
            raise ValueError("evaluation.horizons must be whole numbers of sessions >= 1")
        if not 0.5 < self.ci_level < 1:
            raise ValueError("evaluation.ci_level must be within (0.5, 1)")
        if any(not 0 < b < 1 for b in self.alert_budgets):
            raise ValueError("evaluation.alert_budgets must be shares within (0, 1)")
        if self.n_bootstrap < 0:
            raise ValueError("evaluation.n_bootstrap must be >= 0")


@dataclass
class TuneConfig:
    """Optuna search over ``search_space`` (one child run per trial under a parent run)."""

    n_trials: int = 0
    timeout_s: float | None = None
    # param name -> {type: float|int|categorical, low, high, log, choices}
    search_space: dict[str, Any] = field(default_factory=dict)
    # a shared study: a name and an Optuna RDB URL without a password (e.g.
    # postgresql+psycopg2://user@host:port/db; its password in TUNE_STORAGE_PASSWORD), by
    # default tracking.optuna_storage (conf/tune/); any number of processes on any machines
    # join the same study with the same command. Without a study name the storage is unused.
    # With n_trials=0 a run trains the study's best trial (no search).
    storage: str | None = None
    study_name: str | None = None
    # trials are pruned on CV folds (Optuna's median pruner) after this many complete trials
    prune_after_trials: int = 3

    def __post_init__(self) -> None:
        if self.study_name and not self.storage:
            raise ValueError(
                "tune.study_name needs tune.storage, an Optuna RDB URL (tracking=server gives "
                "the team server's)"
            )
        refuse_password("tune.storage", self.storage)
        if self.n_trials < 0:
            raise ValueError("tune.n_trials must be >= 0")

    @property
    def active(self) -> bool:
        """Search, or train the best trial of a shared study."""
        return self.n_trials > 0 or bool(self.study_name)
