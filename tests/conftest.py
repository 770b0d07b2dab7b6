"""Shared fixtures: compose the project's real Hydra configs, as the entry points do."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from alliance_dropout.config import REPO_ROOT, register_configs

ComposeConfig = Callable[..., DictConfig]


def compose_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The primary config ``conf/<name>.yaml`` with ``overrides``; Hydra's global state is
    cleared before and after, so tests never see each other's initialisation."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
            return compose(config_name=name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def compose_cfg() -> Iterator[ComposeConfig]:
    """``compose_cfg(name, overrides)``: a composed primary config (see :func:`compose_config`)."""
    yield compose_config


@pytest.fixture(scope="session")
def spark_local() -> Iterator[object]:
    """One Spark session on local[2] (127.0.0.1 only) for the whole run, stopped at the end.

    Made from conf/engine/spark.yaml as `engine=spark` composes it; scoring runs find it active
    and use it. pyspark is imported only by the tests that ask for this fixture.
    """
    from alliance_dropout.config import to_object
    from alliance_dropout.spark_scoring import spark_session

    engine = to_object(compose_config("score", ["engine=spark", "engine.master='local[2]'"]).engine)
    spark, _ = spark_session(engine)
    yield spark
    spark.stop()
