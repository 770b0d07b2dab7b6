"""One documented feature column: what every feature family declares about its outputs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column: its name, family, definition, unit and the research it rests on."""

    name: str
    family: str
    definition: str
    unit: str
    reference: str
