"""Every primary config composes, alone and with every experiment, into its typed schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alliance_dropout.config import (
    REPO_ROOT,
    ScoreRunConfig,
    SimulateRunConfig,
    TrainRunConfig,
    ValidateRunConfig,
    to_object,
)
from alliance_dropout.config.modeling import ModelConfig, ModelKind
from alliance_dropout.errors import ConfigError

CONF = Path(REPO_ROOT) / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
REQUIRED = {
    # values a user must give on the command line (MISSING in the schema)
    "run": ["data.sessions=s.csv", "data.outcomes=o.csv"],
    "validate": ["data.sessions=s.csv", "data.outcomes=o.csv"],
    "score": ["data.sessions=s.csv"],
    "train": [],
    "simulate": [],
}
SCHEMAS = {
    "train": TrainRunConfig,
    "run": TrainRunConfig,
    "score": ScoreRunConfig,
    "validate": ValidateRunConfig,
    "simulate": SimulateRunConfig,
}


def test_every_primary_config_is_covered() -> None:
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == sorted(SCHEMAS)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_primary_config_composes_into_its_schema(compose_cfg, name: str) -> None:
    cfg = to_object(compose_cfg(name, REQUIRED[name]))
    assert isinstance(cfg, SCHEMAS[name])


@pytest.mark.parametrize("primary", ["train", "run"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(compose_cfg, primary: str, experiment: str) -> None:
    cfg = to_object(compose_cfg(primary, [*REQUIRED[primary], f"experiment={experiment}"]))
    assert isinstance(cfg, TrainRunConfig)
    assert cfg.run_name  # every experiment names its runs


def _yaml(name: str) -> dict:
    return yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("kind", [k.value for k in ModelKind])
def test_model_values_come_from_their_yaml_only(compose_cfg, kind: str) -> None:
    """One source of defaults: the composed recipe is exactly its YAML file."""
    cfg = to_object(compose_cfg("train", [f"model={kind}"]))
    source = _yaml(kind)
    for recipe in (cfg.model, cfg.recipes[kind]):
        assert recipe.kind.value == source["kind"]
        assert recipe.params == source["params"]
        assert recipe.early_stopping_rounds == source["early_stopping_rounds"]
        assert recipe.class_weight == source["class_weight"]


def test_comparator_recipe_follows_overrides(compose_cfg) -> None:
    """Editing the logistic recipe reaches the comparator (it is composed, not hard-coded)."""
    cfg = to_object(compose_cfg("train", ["recipes.logreg.params.C=0.5"]))
    assert cfg.recipes["logreg"].params["C"] == 0.5
    assert cfg.model.kind is ModelKind.lightgbm


def test_a_model_without_its_config_fails_at_once() -> None:
    with pytest.raises(ValueError, match="conf/model"):
        ModelConfig()


def test_missing_values_fail_in_one_line(compose_cfg) -> None:
    with pytest.raises(ConfigError, match=r"data\.sessions"):
        to_object(compose_cfg("score"))


def test_risk_cut_off_tiers_can_be_configured(compose_cfg) -> None:
    """Fixed risk cut-offs: high is the higher risk (the share mode's order is the other way)."""
    cfg = to_object(
        compose_cfg(
            "score",
            [
                "data.sessions=s.csv",
                "scoring.tiers.mode=probability",
                "scoring.tiers.high=0.4",
                "scoring.tiers.medium=0.2",
            ],
        )
    )
    assert "risk ≥ 40%" in cfg.scoring.tiers.describe()
    with pytest.raises(ConfigError, match="medium <= high"):
        to_object(
            compose_cfg(
                "score",
                [
                    "data.sessions=s.csv",
                    "scoring.tiers.mode=probability",
                    "scoring.tiers.high=0.2",
                    "scoring.tiers.medium=0.4",
                ],
            )
        )
