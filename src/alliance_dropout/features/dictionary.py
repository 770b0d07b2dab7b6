"""The feature dictionary: one documented entry per column the builder produces."""

from __future__ import annotations

from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.features import alliance, attendance, ruptures, sudden_gains, symptoms
from alliance_dropout.features.spec import FeatureSpec


def feature_dictionary(cfg: FeaturesConfig) -> list[FeatureSpec]:
    """Every feature column the builder produces under ``cfg``, in column order."""
    on = cfg.enabled
    specs: list[FeatureSpec] = []
    if on.alliance:
        specs += alliance.alliance_specs(cfg.alliance)
    if on.dual_perspective:
        specs += alliance.dual_perspective_specs(cfg.dual_perspective)
    if on.ruptures:
        specs += ruptures.feature_specs(cfg.ruptures)
    if on.symptoms:
        specs += symptoms.symptom_specs(cfg.symptoms)
    if on.sudden_gains:
        specs += sudden_gains.feature_specs(cfg.sudden_gains)
    if on.alliance_symptom:
        specs += symptoms.alliance_symptom_specs(cfg.alliance_symptom)
    if on.attendance:
        specs += attendance.attendance_specs(cfg.attendance)
    return specs
