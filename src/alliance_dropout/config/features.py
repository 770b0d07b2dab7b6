"""Typed configuration of the trajectory features: every family's settings in one place.

Hydra schema ``features/features_schema``.

``conf/features/default.yaml`` extends :class:`FeaturesConfig`; the range checks in the
``__post_init__`` methods run when a stage turns the node into an object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class EarlyResponseCriterion(Enum):
    """How much improvement by the early-response session counts as an early response."""

    # improvement >= ``early_response_share`` of the baseline distance from the scale's best end
    share = "share"
    # improvement >= the symptom scale's reliable change (Jacobson & Truax 1991)
    reliable_change = "reliable_change"


@dataclass
class FamiliesConfig:
    """Which feature families the builder computes."""

    alliance: bool = True
    dual_perspective: bool = True
    ruptures: bool = True
    symptoms: bool = True
    sudden_gains: bool = True
    alliance_symptom: bool = True
    attendance: bool = True


@dataclass
class AllianceConfig:
    """Alliance level and course, for the client's and the therapist's ratings."""

    # recent slope: least-squares slope over the latest ``recent_window`` rated sessions
    recent_window: int = 3
    # "low alliance" on the WAI-SR item-mean scale (1-5). There is no validated clinical cutoff
    # for the WAI-SR (Hatcher & Gillaspy 2006 report norms only); 3.0 is the anchor "fairly
    # often": a mean below it says the alliance items hold less than fairly often. Per clinic.
    low_cutoff: float = 3.0

    def __post_init__(self) -> None:
        if self.recent_window < 2:
            raise ValueError("features.alliance.recent_window must be at least 2 (a slope)")


@dataclass
class DualPerspectiveConfig:
    """Client minus therapist alliance, and whether the two ratings move together."""

    # sessions rated by both before a correlation of the two ratings is computed
    min_paired_sessions: int = 3

    def __post_init__(self) -> None:
        if self.min_paired_sessions < 3:
            raise ValueError("features.dual_perspective.min_paired_sessions must be at least 3")


@dataclass
class SymptomConfig:
    """Symptom level and course on the configured symptom scale."""

    recent_window: int = 3
    # Early response: improvement by session ``early_response_session``. Definitions in the
    # literature use the first ~4 sessions and a 20-25% reduction or a reliable change (review:
    # Beard & Delgadillo 2019, Depress Anxiety 36:866-878).
    early_response_session: int = 4
    early_response_criterion: EarlyResponseCriterion = EarlyResponseCriterion.share
    early_response_share: float = 0.25

    def __post_init__(self) -> None:
        if self.recent_window < 2:
            raise ValueError("features.symptoms.recent_window must be at least 2 (a slope)")
        if self.early_response_session < 2:
            raise ValueError("features.symptoms.early_response_session must be at least 2")
        if not 0.0 < self.early_response_share < 1.0:
            raise ValueError("features.symptoms.early_response_share must be within (0, 1)")


@dataclass
class AllianceSymptomConfig:
    """Within-client coupling of alliance with the next session's symptom change."""

    # (alliance, next symptom change) pairs before the correlation is computed
    min_pairs: int = 4

    def __post_init__(self) -> None:
        if self.min_pairs < 3:
            raise ValueError("features.alliance_symptom.min_pairs must be at least 3")


@dataclass
class AttendanceConfig:
    """Appointments kept and missed."""

    # share of the latest ``recent_window`` scheduled appointments that were missed
    recent_window: int = 4

    def __post_init__(self) -> None:
        if self.recent_window < 1:
            raise ValueError("features.attendance.recent_window must be at least 1")


class RuptureReference(Enum):
    """Level a session's rating is compared with."""

    previous = "previous"
    running_mean = "running_mean"


@dataclass
class RuptureConfig:
    """Rupture/repair definition on the client-rated alliance (WAI-SR item mean, 1-5)."""

    # Stiles et al. (2004) compared each session with the previous one.
    reference: RuptureReference = RuptureReference.previous
    # Stiles et al. (2004) required a drop of 2 SD; Strauss et al. (2006) a less strict one.
    threshold_sd: float = 2.0
    # Fixed floor on the 1-5 item-mean scale so that tiny wobbles of a very stable client are not
    # ruptures (Gumz et al. 2012: take the stricter of a within-client and a fixed criterion).
    # Half a scale point is our choice: about one item-response step on half the WAI-SR items.
    min_drop_points: float = 0.5
    # Earlier ratings needed before the within-client SD is trusted (SD of 3 values at least).
    min_sessions_for_sd: int = 3
    # Attended sessions after a rupture within which a return to the pre-rupture level counts as
    # a repair; rupture-repair sequences are typically V-shaped over a few sessions (Stiles et
    # al. 2004; Gumz et al. 2012). Our choice of 3.
    repair_window: int = 3

    def __post_init__(self) -> None:
        if self.threshold_sd < 0 or self.min_drop_points <= 0:
            raise ValueError("ruptures: threshold_sd must be >= 0 and min_drop_points > 0")
        if self.min_sessions_for_sd < 2:
            raise ValueError("ruptures.min_sessions_for_sd must be at least 2 (an SD needs 2)")
        if self.repair_window < 1:
            raise ValueError("ruptures.repair_window must be at least 1 attended session")


@dataclass
class SuddenGainConfig:
    """Sudden gain/loss criteria. ``cutoff`` None means the symptom scale's reliable change."""

    cutoff: float | None = None
    pct: float = 0.25
    # Two-tailed t (alpha .05) for df = 4, 3, 2: 0, 1 or 2 of the six values missing
    # (Tang & DeRubeis 1999; Lutz et al. 2013; suddengains' default).
    critical_t_complete: float = 2.776
    critical_t_one_missing: float = 3.182
    critical_t_two_missing: float = 4.303
    detect_losses: bool = True

    def __post_init__(self) -> None:
        if self.cutoff is not None and self.cutoff <= 0:
            raise ValueError("sudden_gains.cutoff must be positive (or null for the scale's RCI)")
        if not 0.0 <= self.pct < 1.0:
            raise ValueError("sudden_gains.pct must be within [0, 1)")
        if min(self.critical_t) <= 0:
            raise ValueError("sudden_gains critical t values must be positive")

    @property
    def critical_t(self) -> tuple[float, float, float]:
        return (self.critical_t_complete, self.critical_t_one_missing, self.critical_t_two_missing)


def _default_landmarks() -> list[int]:
    return list(range(1, 13))


@dataclass
class FeaturesConfig:
    """Landmarks and feature families of the trajectory-feature stage."""

    # training examples: one per labeled client per landmark session it has
    landmarks: list[int] = field(default_factory=_default_landmarks)
    enabled: FamiliesConfig = field(default_factory=FamiliesConfig)
    alliance: AllianceConfig = field(default_factory=AllianceConfig)
    dual_perspective: DualPerspectiveConfig = field(default_factory=DualPerspectiveConfig)
    ruptures: RuptureConfig = field(default_factory=RuptureConfig)
    symptoms: SymptomConfig = field(default_factory=SymptomConfig)
    sudden_gains: SuddenGainConfig = field(default_factory=SuddenGainConfig)
    alliance_symptom: AllianceSymptomConfig = field(default_factory=AllianceSymptomConfig)
    attendance: AttendanceConfig = field(default_factory=AttendanceConfig)

    def __post_init__(self) -> None:
        if not self.landmarks:
            raise ValueError("features.landmarks must name at least one session")
        if min(self.landmarks) < 1:
            raise ValueError("features.landmarks are 1-based session numbers")
        if len(set(self.landmarks)) != len(self.landmarks):
            raise ValueError("features.landmarks must not repeat a session")
