"""Primary config of each entry point, and their registration in Hydra's ConfigStore.

The YAML files under ``conf/`` extend these schemas, so a misspelled key or a wrongly typed
override fails at once with Hydra's own message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from alliance_dropout.config.base import DataConfig, PathsConfig, ScaleConfig, TrackingConfig
from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.config.modeling import (
    CalibrationConfig,
    EvaluationConfig,
    LabelConfig,
    ModelConfig,
    ReferenceRulesConfig,
    SplitConfig,
    TuneConfig,
)
from alliance_dropout.config.scoring import EngineConfig, ScoringConfig
from alliance_dropout.config.simulate import SimulateConfig


@dataclass
class ValidateRunConfig:
    """Primary config of ``pipelines/validate.py``."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    output_dir: str = MISSING


@dataclass
class SimulateRunConfig:
    """Primary config of ``pipelines/simulate.py``."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    output_dir: str = "${paths.synthetic_dir}"
    # also write truth.csv: how every episode really ended, run past the cut-off (tests and
    # evaluation only; the pipeline never reads it)
    truth: bool = False


@dataclass
class TrainRunConfig:
    """Primary config of ``pipelines/train.py`` and ``pipelines/run.py``."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = MISSING
    # every model recipe of conf/model/, by kind: comparators are fitted from these
    recipes: dict[str, ModelConfig] = field(default_factory=dict)
    label: LabelConfig = field(default_factory=LabelConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    rules: ReferenceRulesConfig = field(default_factory=ReferenceRulesConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 42
    register: bool = False
    # the MLflow run is named "<run_name>-<model kind>-seed<seed>" (run_name optional)
    run_name: str | None = None
    # set by the entry point in a Hydra multirun: the sweep's id (its jobs become child runs of
    # one parent run tagged with it) and the job's number (its own output folder)
    sweep: str | None = None
    job_num: int | None = None
    output_dir: str = MISSING


@dataclass
class ScoreRunConfig:
    """Primary config of ``pipelines/score.py``."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    model_uri: str = "models:/${tracking.registered_model_name}@champion"
    output: str = MISSING


def register_configs() -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="validate_schema", node=ValidateRunConfig)
    cs.store(name="simulate_schema", node=SimulateRunConfig)
    cs.store(name="train_schema", node=TrainRunConfig)
    cs.store(name="score_schema", node=ScoreRunConfig)
    cs.store(group="data", name="data_schema", node=DataConfig)
    cs.store(group="symptom", name="scale_schema", node=ScaleConfig, package="data.symptom")
    cs.store(group="tracking", name="tracking_schema", node=TrackingConfig)
    cs.store(group="simulate", name="simulate_schema", node=SimulateConfig)
    cs.store(group="features", name="features_schema", node=FeaturesConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="tune", name="tune_schema", node=TuneConfig)
    cs.store(group="scoring", name="scoring_schema", node=ScoringConfig)
    cs.store(group="engine", name="engine_schema", node=EngineConfig)
