"""The feature dictionary names exactly the builder's columns, and docs/features.md is current."""

from __future__ import annotations

from pathlib import Path

from alliance_dropout import contract as c
from alliance_dropout.config import REPO_ROOT
from alliance_dropout.config.features import FeaturesConfig
from alliance_dropout.features.builder import ID_COLUMNS, build_features
from alliance_dropout.features.dictionary import feature_dictionary
from alliance_dropout.modeling.feature_docs import documented_features, render_markdown
from tests.features.histories import random_sessions


def test_dictionary_names_exactly_the_feature_columns() -> None:
    cfg = FeaturesConfig()
    features = build_features(random_sessions(10, seed=4), cfg, c.PHQ9, c.WAI_SR)
    names = [spec.name for spec in feature_dictionary(cfg)]
    assert names == list(features.columns[len(ID_COLUMNS) :])
    assert len(set(names)) == len(names)


def test_every_entry_is_documented() -> None:
    for spec in feature_dictionary(FeaturesConfig()):
        assert spec.definition and spec.unit and spec.reference and spec.family, spec.name


def test_markdown_has_a_row_per_feature() -> None:
    specs = feature_dictionary(FeaturesConfig())
    text = render_markdown(specs)
    assert all(f"| `{spec.name}` |" in text for spec in specs)
    assert text.count("\n## ") == len({spec.family for spec in specs})


def test_the_documented_dictionary_covers_the_learned_features() -> None:
    names = [spec.name for spec in documented_features(FeaturesConfig())]
    for learned in ("symptom_latest_vs_expected", "therapist_dropout_rate", "therapist_n_clients"):
        assert learned in names
    assert len(names) == len(set(names))


def test_docs_features_md_is_regenerated() -> None:
    path = Path(REPO_ROOT) / "docs" / "features.md"
    expected = render_markdown(documented_features(FeaturesConfig()))
    assert path.read_text(encoding="utf-8") == expected, (
        "docs/features.md is stale: run python -m alliance_dropout.modeling.feature_docs"
    )
