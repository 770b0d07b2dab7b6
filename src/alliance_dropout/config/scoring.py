"""Typed configuration of caseload scoring: risk tiers, reasons, chunking, the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class TierMode(Enum):
    # high = the riskiest `high` share of the caseload, medium = up to the `medium` share
    share = "share"
    # high = risk >= `high`, medium = risk >= `medium`
    probability = "probability"


@dataclass
class TierConfig:
    mode: TierMode = TierMode.share
    high: float = 0.10
    medium: float = 0.30
    # which risk the tiers (and the ranking) follow: dropout_risk (eventual) or
    # dropout_risk_within_<h> for a horizon h of scoring.horizons
    risk: str = "dropout_risk"

    def __post_init__(self) -> None:
        if self.risk != "dropout_risk" and not (
            self.risk.startswith("dropout_risk_within_")
            and self.risk.removeprefix("dropout_risk_within_").isdigit()
        ):
            raise ValueError(
                "scoring.tiers.risk must be dropout_risk or dropout_risk_within_<h>, "
                f"got {self.risk!r}"
            )
        if self.mode is TierMode.share and not 0 < self.high <= self.medium <= 1:
            raise ValueError("scoring.tiers (mode share) needs 0 < high <= medium <= 1")
        if self.mode is TierMode.probability and not 0 < self.medium <= self.high <= 1:
            raise ValueError(
                "scoring.tiers (mode probability: risk cut-offs) needs 0 < medium <= high <= 1, "
                "e.g. scoring.tiers.high=0.4 scoring.tiers.medium=0.2"
            )

    def describe(self) -> str:
        if self.mode is TierMode.share:
            return (
                f"high = the riskiest {self.high:.0%} of clients scored, medium = the next "
                f"{self.medium - self.high:.0%}, low = the rest{self._of()}"
            )
        return (
            f"high = risk ≥ {self.high:.0%}, medium = risk ≥ {self.medium:.0%}, low = below"
            f"{self._of()}"
        )

    def _of(self) -> str:
        if self.risk == "dropout_risk":
            return ""
        h = self.risk.removeprefix("dropout_risk_within_")
        return f" (by the risk of dropout within the next {h} sessions)"


@dataclass
class ScoringConfig:
    tiers: TierConfig = field(default_factory=TierConfig)
    n_reasons: int = 3
    # clients per chunk: bounds memory and drives the progress bar on long inputs
    chunk_clients: int = 25_000
    report: bool = True
    report_max_charts: int = 2000
    # flag 'symptoms off the expected course' when this many points worse than expected
    off_course_points: float = 3.0
    # risk of dropout within the next h scheduled sessions, one column each (hazard models;
    # empty for a landmark classifier, which answers the eventual risk only)
    horizons: list[int] = field(default_factory=lambda: [1, 4])

    def __post_init__(self) -> None:
        if any(h < 1 for h in self.horizons) or len(set(self.horizons)) != len(self.horizons):
            raise ValueError("scoring.horizons must be distinct whole numbers of sessions >= 1")
        if (
            self.tiers.risk != "dropout_risk"
            and int(self.tiers.risk.removeprefix("dropout_risk_within_")) not in self.horizons
        ):
            raise ValueError(
                f"scoring.tiers.risk={self.tiers.risk} needs its horizon in scoring.horizons"
            )


class EngineName(Enum):
    local = "local"  # pandas in this process (the whole caseload in memory)
    spark = "spark"  # Apache Spark: buckets of whole clients, on any Spark master


class ReportScope(Enum):
    # one report of the `report_top_n` riskiest clients of the caseload
    top = "top"
    # one report per therapist (the therapist of the client's latest row), of their clients
    therapist = "therapist"


@dataclass
class EngineConfig:
    """Where scoring runs: ``engine=local`` (default) or ``engine=spark`` (conf/engine/)."""

    name: EngineName = EngineName.local
    # the Spark master: local[N], spark://host:7077, yarn, k8s://...
    master: str = "local[*]"
    app_name: str = "alliance-dropout-scoring"
    # any Spark setting, e.g. '+engine.conf={spark.executor.memory:4g}'
    conf: dict[str, str] = field(default_factory=dict)
    # clients are hashed into ceil(rows / rows_per_bucket) buckets; a bucket is scored in one
    # pandas frame, so this bounds a Python worker's memory (~1.2 KB per session row)
    rows_per_bucket: int = 250_000
    # relative error of the tier cut-offs' approximate quantiles (scoring.tiers.mode=share):
    # exact while relative error x clients < 1, else a tier's share is within it
    quantile_relative_error: float = 1e-4
    report_scope: ReportScope = ReportScope.top
    report_top_n: int = 2000

    def __post_init__(self) -> None:
        if self.rows_per_bucket < 1:
            raise ValueError("engine.rows_per_bucket must be at least 1")
        if not 0 <= self.quantile_relative_error < 1:
            raise ValueError("engine.quantile_relative_error must be in [0, 1)")
        if self.report_top_n < 1:
            raise ValueError("engine.report_top_n must be at least 1")
