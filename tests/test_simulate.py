"""The synthetic data generator: realism bands, determinism, contract conformance, config."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException

from alliance_dropout import config, io
from alliance_dropout import contract as c
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.simulate import (
    SyntheticData,
    format_headline_figures,
    headline_figures,
    rupture_episodes,
    simulate,
    therapist_icc,
)

SMALL = SimulateConfig(n_clients=3000, n_therapists=75)


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return simulate(SMALL)


@pytest.fixture(scope="module")
def figures(data: SyntheticData) -> dict:
    return headline_figures(data)


# --- realism: the headline figures lie in the bands the research gives ---------------------

BANDS = {
    "dropout_rate_labeled": (0.15, 0.25),  # Swift & Greenberg 2012: 19.7%
    "ongoing_share": (0.05, 0.25),
    "rupture_share": (0.15, 0.35),  # Larsson et al. 2018: 25.4%
    "rupture_repaired_share": (0.08, 0.22),  # 14.7%
    "rupture_unrepaired_share": (0.05, 0.16),  # 10.7%
    "alliance_d_completers_vs_dropouts": (0.4, 0.75),  # Sharf et al. 2010: d = 0.55
    "therapist_icc_dropout": (0.02, 0.2),  # Zimmermann 2017: .057, Saxon 2017: .126
    "alliance_client_therapist_r": (0.3, 0.55),  # Tryon et al. 2007: r = .36
    "alliance_client_mean": (3.7, 4.2),  # Hatcher & Gillaspy 2006
    "phq9_baseline_mean": (13.5, 16.5),
    "phq9_baseline_sd": (4.0, 6.0),
    "missed_share": (0.06, 0.2),  # Mitchell & Selmes 2007
    "questionnaire_missing_share": (0.02, 0.1),
    "sessions_per_episode_median": (8, 16),
    "clients_per_therapist_median": (20, 60),
    "auc_latest_alliance": (0.6, 0.78),
    "auc_logistic_summaries": (0.68, 0.85),
}


@pytest.mark.parametrize("name", sorted(BANDS))
def test_headline_figure_in_research_band(figures: dict, name: str) -> None:
    low, high = BANDS[name]
    assert low <= figures[name] <= high, f"{name} = {figures[name]:.3f} outside [{low}, {high}]"


def test_therapist_alliance_lower_and_less_variable_than_client(figures: dict) -> None:
    assert figures["alliance_therapist_mean"] < figures["alliance_client_mean"]
    assert figures["alliance_therapist_sd"] < figures["alliance_client_sd"]


def test_trajectories_beat_latest_alliance_alone(figures: dict) -> None:
    assert figures["auc_logistic_summaries"] > figures["auc_latest_alliance"] + 0.03


def test_sizes_follow_config(data: SyntheticData, figures: dict) -> None:
    assert figures["n_episodes"] == SMALL.n_clients == len(data.outcomes) == len(data.clients)
    assert figures["n_therapists"] == SMALL.n_therapists


def test_headline_figures_format_as_aggregate_lines(data: SyntheticData, figures: dict) -> None:
    text = format_headline_figures(figures)
    assert len(text.splitlines()) == len(figures)
    assert "dropout rate" in text
    assert data.sessions[c.CLIENT_ID].iloc[0] not in text  # aggregates only, no ids


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_tables() -> None:
    cfg = SimulateConfig(n_clients=300, n_therapists=15, seed=11)
    a, b = simulate(cfg), simulate(cfg)
    for name in ("sessions", "outcomes", "clients"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_different_seed_gives_different_tables() -> None:
    a = simulate(SimulateConfig(n_clients=300, n_therapists=15, seed=11))
    b = simulate(SimulateConfig(n_clients=300, n_therapists=15, seed=12))
    assert not a.sessions.equals(b.sessions)
    assert not a.outcomes[c.STATUS].equals(b.outcomes[c.STATUS])


# --- contract conformance --------------------------------------------------------------------


def test_sessions_columns_and_types(data: SyntheticData) -> None:
    s = data.sessions
    assert list(s.columns) == list(c.SESSION_COLUMNS)
    for col in (c.CLIENT_ID, c.THERAPIST_ID, c.ATTENDANCE):
        assert pd.api.types.is_string_dtype(s[col])
    assert s[c.SESSION_NUMBER].dtype == "int64"
    assert pd.api.types.is_datetime64_dtype(s[c.SESSION_DATE])
    assert (s[c.SESSION_DATE] == s[c.SESSION_DATE].dt.normalize()).all()  # dates, no times
    for col in c.SESSION_SCORES:
        assert s[col].dtype == "float64"


def test_attendance_and_status_values(data: SyntheticData) -> None:
    assert set(data.sessions[c.ATTENDANCE]) == set(c.ATTENDANCE_VALUES)
    assert set(data.outcomes[c.STATUS]) == set(c.STATUS_VALUES)
    assert list(data.outcomes.columns) == list(c.OUTCOME_COLUMNS)


def test_scores_only_on_attended_rows_and_in_range(data: SyntheticData) -> None:
    s = data.sessions
    missed = s[c.ATTENDANCE] != c.ATTENDED
    assert s.loc[missed, list(c.SESSION_SCORES)].isna().all().all()
    for col in (c.ALLIANCE_CLIENT, c.ALLIANCE_THERAPIST, *c.ALLIANCE_SUBSCALES):
        assert s[col].dropna().between(c.WAI_SR.min, c.WAI_SR.max).all()
    phq = s[c.SYMPTOM_SCORE].dropna()
    assert phq.between(c.PHQ9.min, c.PHQ9.max).all()
    assert (phq == phq.round()).all()
    attended = s[~missed]
    assert attended[c.ALLIANCE_CLIENT].notna().mean() > 0.9  # most attended rows are scored


def test_client_total_is_mean_of_subscales(data: SyntheticData) -> None:
    s = data.sessions.dropna(subset=[c.ALLIANCE_CLIENT])
    subscale_mean = s[list(c.ALLIANCE_SUBSCALES)].mean(axis=1)
    assert np.allclose(s[c.ALLIANCE_CLIENT], subscale_mean, atol=1 / 24)


def test_episode_keys_order_and_dates(data: SyntheticData) -> None:
    s = data.sessions
    assert not s.duplicated([c.CLIENT_ID, c.SESSION_NUMBER]).any()
    assert (s[c.SESSION_NUMBER] >= 1).all()
    ordered = s.sort_values([c.CLIENT_ID, c.SESSION_NUMBER])
    step = ordered.groupby(c.CLIENT_ID)[c.SESSION_DATE].diff().dropna()
    assert (step >= pd.Timedelta(0)).all()
    # a few rows are missing from the export: gaps in session_number
    gaps = ordered.groupby(c.CLIENT_ID)[c.SESSION_NUMBER].diff().dropna()
    assert 0 < (gaps > 1).mean() < 0.05


def test_every_outcome_and_client_has_sessions(data: SyntheticData) -> None:
    in_sessions = set(data.sessions[c.CLIENT_ID])
    assert set(data.outcomes[c.CLIENT_ID]) == in_sessions
    assert set(data.clients[c.CLIENT_ID]) == in_sessions
    assert data.outcomes[c.CLIENT_ID].is_unique and data.clients[c.CLIENT_ID].is_unique


def test_clients_table_has_audit_attributes(data: SyntheticData) -> None:
    assert {"gender", "age_band"} <= set(data.clients.columns)
    assert data.clients.notna().all().all()


def test_ongoing_episodes_stop_at_the_cutoff(data: SyntheticData) -> None:
    last = data.sessions.groupby(c.CLIENT_ID)[c.SESSION_DATE].max()
    assert last.max() <= pd.Timestamp(SMALL.cutoff_date)
    status = data.outcomes.set_index(c.CLIENT_ID)[c.STATUS]
    ongoing_last = last[status[status == c.ONGOING].index]
    # ongoing episodes were still running in the last months before the cut-off
    assert (ongoing_last > pd.Timestamp(SMALL.cutoff_date) - pd.Timedelta(days=120)).all()


def test_completers_end_on_an_attended_session(data: SyntheticData) -> None:
    last = data.sessions.groupby(c.CLIENT_ID)[c.ATTENDANCE].last()
    status = data.outcomes.set_index(c.CLIENT_ID)[c.STATUS]
    assert (last[status[status == c.COMPLETED].index] == c.ATTENDED).all()
    # dropouts often vanish after missed appointments
    assert (last[status[status == c.DROPOUT].index] != c.ATTENDED).mean() > 0.3


def test_tables_survive_a_csv_round_trip(data: SyntheticData, tmp_path) -> None:
    path = io.write_table(data.sessions.head(200), tmp_path / "sessions.csv")
    back = io.read_table(path)
    assert list(back.columns) == list(c.SESSION_COLUMNS)
    assert back[c.SESSION_DATE].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()


# --- measurement helpers, on tiny hand-made data -------------------------------------------


def test_rupture_episodes_detects_drop_and_repair() -> None:
    s = pd.DataFrame(
        {
            c.CLIENT_ID: ["a"] * 4 + ["b"] * 4 + ["d"] * 3,
            c.ALLIANCE_CLIENT: [4.0, 4.2, 3.5, 4.1, 4.0, 3.4, np.nan, 3.5, 4.0, 3.7, 3.9],
        }
    )
    out = rupture_episodes(s, drop_points=0.5, repair_margin=0.25).set_index(c.CLIENT_ID)
    assert out.loc["a"].tolist() == [True, True]  # 4.2 -> 3.5, back to 4.1
    assert out.loc["b"].tolist() == [True, False]  # 4.0 -> 3.4, never back
    assert out.loc["d"].tolist() == [False, False]  # a 0.3 dip is no rupture


def test_therapist_icc_zero_without_and_high_with_clustering() -> None:
    therapist = pd.Series(np.repeat(["t1", "t2", "t3", "t4"], 50))
    alike = pd.Series(np.tile([0, 1], 100))
    clustered = pd.Series(np.repeat([0, 1, 0, 1], 50))
    assert therapist_icc(alike, therapist) < 0.01
    assert therapist_icc(clustered, therapist) > 0.95


# --- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"n_clients": 0},
        {"n_therapists": 10, "n_clients": 5},
        {"rupture_share": 1.5},
        {"cutoff_date": "2022-01-01"},
        {"planned_sessions_min": 30},
        {"early_responder_share": 0.6, "non_responder_share": 0.6},
    ],
)
def test_config_range_checks(change: dict) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(SimulateConfig(), **change)


def test_yaml_matches_the_schema_defaults(compose_cfg) -> None:
    cfg = config.to_object(compose_cfg("simulate"))
    assert cfg.simulate == SimulateConfig()
    assert cfg.output_dir.endswith("data/synthetic")


def test_bad_overrides_fail_at_composition(compose_cfg) -> None:
    with pytest.raises(ConfigCompositionException):
        compose_cfg("simulate", ["simulate.n_clients=abc"])
    with pytest.raises(ConfigCompositionException):
        compose_cfg("simulate", ["simulate.typo=1"])


def test_pipeline_writes_the_three_tables(compose_cfg, tmp_path, capsys) -> None:
    spec = importlib.util.spec_from_file_location(
        "simulate_pipeline", config.REPO_ROOT / "pipelines" / "simulate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("simulate_pipeline", None)
    spec.loader.exec_module(module)
    out_dir = tmp_path / "synthetic"
    cfg = compose_cfg(
        "simulate", ["simulate.n_clients=200", "simulate.n_therapists=10", f"output_dir={out_dir}"]
    )
    module.run(cfg)
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "clients.csv",
        "outcomes.csv",
        "sessions.csv",
    ]
    assert len(io.read_table(out_dir / "outcomes.csv")) == 200
    assert "dropout rate" in capsys.readouterr().out
