"""Evaluation that matches the question: per landmark, per horizon, averaged, by split unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout.config.modeling import EvaluationConfig, SplitBy, SplitConfig
from alliance_dropout.modeling.evaluation import LANDMARK_MEAN, HorizonTargets, evaluate
from alliance_dropout.modeling.fitting import (
    Examples,
    time_split_cutoff,
    train_test_split_groups,
)


def _test_rows(n_clients: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Clients at landmarks 1-3; the risk tracks the label, more strongly at later landmarks."""
    rng = np.random.default_rng(seed)
    clients = np.repeat([f"c{i}" for i in range(n_clients)], 3)
    landmark = np.tile([1, 2, 3], n_clients)
    y = np.repeat(rng.random(n_clients) < 0.25, 3).astype(int)
    signal = y * landmark * 0.6 + rng.normal(0, 1, len(y))
    risk = 1 / (1 + np.exp(-(signal - 1.5)))
    rows = pd.DataFrame({c.CLIENT_ID: clients, "landmark_session": landmark})
    return rows, y, {"model": risk, "other": rng.random(len(y))}


def test_every_landmark_has_every_metric_with_a_ci_and_the_headline_is_their_mean() -> None:
    rows, y, scores = _test_rows()
    cfg = EvaluationConfig(n_bootstrap=50, comparators=[])
    result = evaluate(rows, y, model_scores=scores, rule_scores={}, main="model", cfg=cfg, seed=1)
    main = result.by_landmark[result.by_landmark.score == "model"].set_index("landmark")
    assert list(main.index) == [1, 2, 3]
    for metric in ("pr_auc", "brier", "calibration_slope", "calibration_intercept"):
        assert main[metric].notna().all()
        assert (main[f"ci_low_{metric}"] <= main[metric]).all()
        assert (main[metric] <= main[f"ci_high_{metric}"]).all()
    assert (main["ci_low"] < main["roc_auc"]).all()
    # the signal grows with the landmark: so does the AUC
    assert main.loc[1, "roc_auc"] < main.loc[3, "roc_auc"]
    assert result.value("model", LANDMARK_MEAN) == pytest.approx(main["roc_auc"].mean())
    diff = result.overall[
        (result.overall.score == "model - other") & (result.overall.metric == LANDMARK_MEAN)
    ].iloc[0]
    assert diff.ci_low > 0  # the paired difference of the averages excludes zero
    assert "test_landmark_02_calibration_slope" in result.flat_metrics()


def test_horizon_risks_are_judged_against_their_own_labels_per_landmark() -> None:
    rows, y, scores = _test_rows()
    rng = np.random.default_rng(3)
    within = (y == 1) & (rng.random(len(y)) < 0.5)
    horizons = HorizonTargets(
        labels={1: within.astype(int)},
        scores={"model": {1: np.where(within, 0.6, 0.05) + rng.uniform(0, 0.3, len(y))}},
    )
    cfg = EvaluationConfig(n_bootstrap=30, comparators=[])
    result = evaluate(
        rows,
        y,
        model_scores=scores,
        rule_scores={},
        main="model",
        cfg=cfg,
        seed=1,
        horizons=horizons,
    )
    h = result.by_landmark[result.by_landmark.score == "model within 1"]
    assert len(h) == 3
    assert (
        h["events"].to_numpy() == [within[rows.landmark_session == k].sum() for k in (1, 2, 3)]
    ).all()
    assert (h["roc_auc"] > 0.9).all()  # it separates its own label, not the eventual one
    assert "test_landmark_01_within1_roc_auc" in result.flat_metrics()


def test_a_therapist_split_resamples_therapists_not_clients() -> None:
    rows, y, scores = _test_rows(n_clients=300)
    therapist = (rows[c.CLIENT_ID].str[1:].astype(int) % 10).astype(str).to_numpy()
    cfg = EvaluationConfig(n_bootstrap=200, comparators=[])
    by_client = evaluate(
        rows, y, model_scores=scores, rule_scores={}, main="model", cfg=cfg, seed=1
    )
    by_therapist = evaluate(
        rows,
        y,
        model_scores=scores,
        rule_scores={},
        main="model",
        cfg=cfg,
        seed=1,
        groups=therapist,
    )

    def width(result) -> float:
        row = result.overall[(result.overall.score == "model") & (result.overall.metric == "brier")]
        return float(row.ci_high.iloc[0] - row.ci_low.iloc[0])

    # 10 therapists instead of 300 clients: the interval must not pretend to know more
    assert by_therapist.value("model", "roc_auc") == by_client.value("model", "roc_auc")
    assert width(by_therapist) != width(by_client)


def test_a_time_split_trains_on_earlier_episodes_and_tests_on_later_ones() -> None:
    rng = np.random.default_rng(0)
    n = 200
    clients = [f"c{i}" for i in range(n)]
    starts = pd.Series(
        pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        index=clients,
    )
    X = pd.DataFrame({c.CLIENT_ID: np.repeat(clients, 2), "landmark_session": np.tile([1, 2], n)})
    y = np.repeat(rng.random(n) < 0.3, 2).astype(int)
    ex = Examples(X, y, X[c.CLIENT_ID].to_numpy())
    cfg = SplitConfig(by=SplitBy.time, test_size=0.25)
    cutoff = time_split_cutoff(starts, pd.Index(clients), cfg)
    train, test = train_test_split_groups(ex, cfg, 0, starts, cutoff)
    start_of = X[c.CLIENT_ID].map(starts)
    assert (start_of.iloc[train] < cutoff).all() and (start_of.iloc[test] >= cutoff).all()
    assert 0.2 < len(test) / len(y) < 0.3
    fixed = SplitConfig(by=SplitBy.time, time_cutoff="2024-10-01")
    assert time_split_cutoff(starts, pd.Index(clients), fixed) == pd.Timestamp("2024-10-01")
    with pytest.raises(ValueError, match="ISO date"):
        SplitConfig(by=SplitBy.time, time_cutoff="1 Oct 2024")
    with pytest.raises(ValueError, match="no training episodes"):
        train_test_split_groups(ex, cfg, 0, starts, pd.Timestamp("2023-01-01"))
