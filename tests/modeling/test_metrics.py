import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from alliance_dropout.modeling import metrics as m


@pytest.fixture
def calibrated():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.9, 40_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    return y, p


def test_calibration_slope_and_intercept_are_ideal_for_calibrated_risks(calibrated):
    y, p = calibrated
    assert m.calibration_slope(y, p) == pytest.approx(1.0, abs=0.05)
    assert m.calibration_intercept(y, p) == pytest.approx(0.0, abs=0.05)
    assert m.expected_calibration_error(y, p) < 0.02


def test_overconfident_risks_have_slope_below_one_and_shifted_risks_an_intercept(calibrated):
    y, p = calibrated
    overconfident = expit(2 * logit(p))
    assert m.calibration_slope(y, overconfident) == pytest.approx(0.5, abs=0.05)
    too_high = expit(logit(p) + 1.0)
    assert m.calibration_intercept(y, too_high) == pytest.approx(-1.0, abs=0.05)


def test_alert_budget_counts_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    out = m.alert_budget_metrics(y, p, 0.2)  # flags the two riskiest rows: one dropout
    assert out["sensitivity"] == pytest.approx(1 / 3)
    assert out["ppv"] == pytest.approx(0.5)
    assert out["nnr"] == pytest.approx(2.0)


def test_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.8, 0.3, 0.6, 0.1])
    nb = m.net_benefit(y, p, np.array([0.5]))
    # flagged at 0.5: rows 0 (TP) and 2 (FP): 1/4 - 1/4 * (0.5/0.5) = 0
    assert nb["model"].iloc[0] == pytest.approx(0.0)
    assert nb["treat_all"].iloc[0] == pytest.approx(0.5 - 0.5)


def test_bootstrap_weights_resample_whole_clients():
    codes = np.array([0, 0, 0, 1, 1, 2])
    w = m.client_bootstrap_weights(codes, n_replicates=50, seed=1)
    assert w.shape == (50, 6)
    # rows of one client always share the weight of that client's draw count
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 3] == w[:, 4])
    # each replicate draws as many clients as there are
    per_client = w[:, [0, 3, 5]]
    assert np.all(per_client.sum(axis=1) == 3)


def test_bootstrap_table_reports_paired_difference_tighter_than_marginals(calibrated):
    y, p = calibrated
    y, p = y[:3000], p[:3000]
    rng = np.random.default_rng(3)
    weaker = p + rng.normal(0, 0.25, p.size)
    codes = np.arange(len(y))
    w = m.client_bootstrap_weights(codes, 100, seed=0)
    metrics = {"roc_auc": m.CORE_METRICS["roc_auc"]}
    table = m.bootstrap_table(
        y, {"a": p, "b": weaker}, {"a": metrics, "b": metrics}, w, 0.95, reference="a"
    ).set_index("score")
    a, b, diff = table.loc["a"], table.loc["b"], table.loc["a - b"]
    assert diff["value"] == pytest.approx(a["value"] - b["value"])
    assert diff["ci_low"] > 0  # the better score is reliably better
    assert (diff["ci_high"] - diff["ci_low"]) < (a["ci_high"] - a["ci_low"]) + (
        b["ci_high"] - b["ci_low"]
    )


def test_single_class_replicate_gives_nan_not_an_error():
    y = np.array([1, 1, 1])
    assert np.isnan(m.CORE_METRICS["roc_auc"](y, np.array([0.1, 0.2, 0.3]), None))


def test_flag_top_share_is_deterministic_with_ties():
    p = np.array([0.5, 0.5, 0.5, 0.5])
    a = m.flag_top_share(p, 0.5)
    assert a.sum() == 2 and np.array_equal(a, m.flag_top_share(p.copy(), 0.5))
    assert isinstance(pd.Series(a).sum(), np.integer | int)
