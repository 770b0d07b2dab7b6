"""Schemas every stage shares: paths, the data source and its scales, tracking; ``to_object``.

Range checks live in ``__post_init__`` and run when a stage turns its node into an object
(``OmegaConf.to_object``), which every entry point does before any work.
"""

from __future__ import annotations

import functools
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from alliance_dropout import contract
from alliance_dropout.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]


@functools.cache
def run_suffix() -> str:
    """A short random suffix, drawn once per process: ``${now:...}-${run_suffix:}`` gives two
    runs started in the same second their own folders (``run_suffix.cache_clear()`` redraws)."""
    return uuid.uuid4().hex[:6]


def _register_resolvers() -> None:
    if not OmegaConf.has_resolver("repo_root"):
        OmegaConf.register_new_resolver("repo_root", lambda: str(REPO_ROOT))
    if not OmegaConf.has_resolver("run_suffix"):
        OmegaConf.register_new_resolver("run_suffix", lambda: run_suffix())


_register_resolvers()


@dataclass
class ScaleConfig:
    """One instrument's scale facts (range, clinical cutoff, Jacobson-Truax reliable change)."""

    name: str = contract.PHQ9.name
    min: float = contract.PHQ9.min
    max: float = contract.PHQ9.max
    clinical_cutoff: float | None = contract.PHQ9.clinical_cutoff
    reliable_change: float | None = contract.PHQ9.reliable_change
    higher_is_worse: bool = contract.PHQ9.higher_is_worse

    def __post_init__(self) -> None:
        if not self.min < self.max:
            raise ValueError(f"scale {self.name}: min ({self.min}) must be below max ({self.max})")
        if self.clinical_cutoff is not None and not self.min <= self.clinical_cutoff <= self.max:
            raise ValueError(f"scale {self.name}: clinical_cutoff outside [{self.min}, {self.max}]")
        if self.reliable_change is not None and self.reliable_change <= 0:
            raise ValueError(f"scale {self.name}: reliable_change must be positive")

    def to_scale(self) -> contract.Scale:
        return contract.Scale(
            self.name,
            self.min,
            self.max,
            self.clinical_cutoff,
            self.reliable_change,
            self.higher_is_worse,
        )


def _wai_sr() -> ScaleConfig:
    s = contract.WAI_SR
    return ScaleConfig(
        s.name, s.min, s.max, s.clinical_cutoff, s.reliable_change, s.higher_is_worse
    )


@dataclass
class DataConfig:
    """Where a clinic's export lives and how its columns map onto the contract's names."""

    source: str = "synthetic"
    sessions: str = MISSING
    outcomes: str | None = None
    clients: str | None = None
    # canonical column name -> the export's column name (only where they differ)
    columns: dict[str, str] = field(default_factory=dict)
    # the export's attendance / status codes -> canonical values (only where they differ)
    attendance_codes: dict[str, str] = field(default_factory=dict)
    status_codes: dict[str, str] = field(default_factory=dict)
    symptom: ScaleConfig = field(default_factory=ScaleConfig)
    alliance: ScaleConfig = field(default_factory=_wai_sr)
    # columns of the clients table used as model inputs / only for subgroup audits
    client_features: list[str] = field(default_factory=list)
    audit_attributes: list[str] = field(default_factory=list)
    # the run fails when more than this share of clients is quarantined
    max_quarantine_share: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_quarantine_share <= 1.0:
            raise ValueError("data.max_quarantine_share must be within [0, 1]")
        unknown = set(self.columns) - set(contract.SESSION_COLUMNS + contract.OUTCOME_COLUMNS)
        if unknown:
            raise ValueError(
                f"data.columns maps unknown canonical columns {sorted(unknown)}; "
                f"canonical names are {[*contract.SESSION_COLUMNS, contract.STATUS]}"
            )
        overlap = set(self.client_features) & set(self.audit_attributes)
        if overlap:
            raise ValueError(
                f"audit attributes are never model inputs: {sorted(overlap)} is in both "
                "data.client_features and data.audit_attributes"
            )


@dataclass
class PathsConfig:
    root: str = "${repo_root:}"
    data_dir: str = "${paths.root}/data"
    synthetic_dir: str = "${paths.data_dir}/synthetic"
    outputs_dir: str = "${paths.root}/outputs"
    mlruns_dir: str = "${paths.root}/mlruns"


def refuse_password(key: str, url: str | None) -> None:
    """A URL with a password in it would be logged with the config (MLflow params, Hydra's
    files): credentials come from the environment only."""
    if url and urllib.parse.urlsplit(url).password:
        raise ValueError(
            f"{key} holds a password; give the URL without it and the password in the "
            "environment (MLFLOW_TRACKING_PASSWORD for the server, TUNE_STORAGE_PASSWORD for "
            "tune.storage)"
        )


@dataclass
class TrackingConfig:
    """MLflow tracking. Empty ``uri`` means the local SQLite store under ``paths.mlruns_dir``."""

    uri: str = ""
    experiment: str = "alliance-dropout"
    registered_model_name: str = "alliance-dropout"
    # the Optuna RDB (no password) that goes with this store: tune.storage's default for a
    # shared study (tracking=server: the team server's PostgreSQL, database optuna)
    optuna_storage: str | None = None
    # --- the promotion gate (registry.py): a registered model becomes @champion only if ...
    promote: bool = True  # false: register, never promote
    # ... the lower 95% bound of its paired bootstrap AUC gain over the champion and over the
    # best reference rule is above this margin (a tie never promotes) ...
    promotion_margin: float = 0.0
    # ... its test set holds at least this many dropouts (clients) ...
    min_test_events: int = 50
    # ... and its risks are calibrated on the test set (slope within the range, |intercept|
    # at most the bound; logistic recalibration, Van Calster et al. 2019)
    calibration_slope_min: float = 0.8
    calibration_slope_max: float = 1.25
    calibration_intercept_max: float = 0.25

    def __post_init__(self) -> None:
        refuse_password("tracking.uri", self.uri)
        refuse_password("tracking.optuna_storage", self.optuna_storage)
        if not 0.0 <= self.promotion_margin < 0.5:
            raise ValueError("tracking.promotion_margin must be within [0, 0.5)")
        if self.min_test_events < 1:
            raise ValueError("tracking.min_test_events must be at least 1")
        if not 0 < self.calibration_slope_min <= 1 <= self.calibration_slope_max:
            raise ValueError("tracking.calibration_slope_min <= 1 <= calibration_slope_max")
        if self.calibration_intercept_max < 0:
            raise ValueError("tracking.calibration_intercept_max must be >= 0")


def to_object(node: Any) -> Any:
    """Typed dataclass instance of a config node; runs the schemas' range checks.

    A missing mandatory value or a failed range check becomes a ConfigError (one clear line).
    """
    try:
        return OmegaConf.to_object(node)
    except MissingMandatoryValue as exc:
        raise ConfigError(
            f"config value missing: {exc.full_key} (give it on the command line)"
        ) from None
    except (ValueError, OmegaConfBaseException) as exc:
        raise ConfigError(f"invalid config: {exc}") from exc
