"""Typed configuration schemas: the bottom layer every stage reads, registered for Hydra.

``base`` holds what all stages share, one module per stage holds its own schemas, and ``runs``
the primary config of each entry point.
"""

from alliance_dropout.config.base import (
    REPO_ROOT,
    DataConfig,
    PathsConfig,
    ScaleConfig,
    TrackingConfig,
    to_object,
)
from alliance_dropout.config.runs import (
    ScoreRunConfig,
    SimulateRunConfig,
    TrainRunConfig,
    ValidateRunConfig,
    register_configs,
)

__all__ = [
    "REPO_ROOT",
    "DataConfig",
    "PathsConfig",
    "ScaleConfig",
    "ScoreRunConfig",
    "SimulateRunConfig",
    "TrackingConfig",
    "TrainRunConfig",
    "ValidateRunConfig",
    "register_configs",
    "to_object",
]
