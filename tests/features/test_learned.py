"""Learned transformers: expected course deviation and therapist context.

sklearn's ``parametrize_with_checks`` does not apply: its generic checks feed plain numeric
arrays, while these transformers need the landmark DataFrame with named ID columns
(client_id, therapist_id, landmark_session) and named features, and TherapistContext needs
one outcome per client. The checks that do not need such data run below; the rest of the
contract (fit returns self, NotFittedError, fitted attributes, names out, set_output, Pipeline)
is tested directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.exceptions import NotFittedError
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks

from alliance_dropout.features.learned import (
    THERAPIST_FEATURES,
    ExpectedCourseDeviation,
    TherapistContext,
    feature_specs,
)

TRANSFORMERS = [ExpectedCourseDeviation(), TherapistContext()]
APPLICABLE_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_do_not_raise_errors_in_init_or_set_params",
]


def landmarks(n_clients: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Landmark rows (one per session 1..k) with a known course: latest = 0.8 first - 0.5 step."""
    rng = np.random.default_rng(seed)
    frames = []
    for c in range(n_clients):  # building test data, not library code
        k = int(rng.integers(2, 9))
        step = np.arange(1, k + 1, dtype=float)
        first = float(rng.uniform(8, 24))
        a_first = float(rng.uniform(3, 5))
        frames.append(
            pd.DataFrame(
                {
                    "client_id": f"c{c:03d}",
                    "therapist_id": f"t{c % 6}",
                    "landmark_session": np.arange(1, k + 1),
                    "landmark_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(step * 7, "D"),
                    "n_attended": step,
                    "symptom_first": first,
                    "symptom_latest": 0.8 * first - 0.5 * step + rng.normal(0, 0.01, k),
                    "alliance_client_first": a_first,
                    "alliance_client_latest": a_first + 0.05 * step,
                    "alliance_client_mean": a_first + 0.02 * step,
                }
            )
        )
    X = pd.concat(frames, ignore_index=True)
    y = (X["client_id"].str[1:].astype(int) % 3 == 0).astype(float).to_numpy()
    return X, y


@pytest.mark.parametrize("estimator", TRANSFORMERS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", APPLICABLE_CHECKS)
def test_sklearn_checks_that_apply(estimator: object, check: str) -> None:
    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", TRANSFORMERS, ids=lambda e: type(e).__name__)
def test_transformer_contract(estimator: object) -> None:
    X, y = landmarks()
    before = X.copy()
    est = clone(estimator)
    with pytest.raises(NotFittedError):
        est.transform(X)
    assert est.fit(X, y) is est
    out = est.transform(X)
    pd.testing.assert_frame_equal(X, before)  # input untouched
    assert list(out.columns) == list(est.get_feature_names_out())
    assert list(out.columns[: X.shape[1]]) == list(X.columns)
    pd.testing.assert_frame_equal(out[X.columns], X)
    assert all(out[c].dtype == np.float64 for c in out.columns[X.shape[1] :])
    with pytest.raises(ValueError, match="other columns"):
        est.transform(X.drop(columns="landmark_date"))
    # set_output and a full Pipeline: the transformers take y only where they need it.
    pipe = make_pipeline(
        clone(estimator),
        ColumnTransformer(
            [("num", SimpleImputer(), make_column_selector(dtype_include="number"))],
            verbose_feature_names_out=False,
        ),
        LogisticRegression(),
    ).set_output(transform="pandas")
    proba = pipe.fit(X, y).predict_proba(X)[:, 1]
    assert proba.shape == (len(X),) and np.isfinite(proba).all()


# --- ExpectedCourseDeviation ---------------------------------------------------------------


def test_expected_course_learns_the_course_per_step() -> None:
    X, y = landmarks()
    ecd = ExpectedCourseDeviation(min_rows_per_step=5).fit(X)
    out = ecd.transform(X)
    # The course is exactly linear per step up to the noise: deviations are the noise.
    assert out["symptom_latest_vs_expected"].abs().max() < 0.1
    assert out["alliance_client_latest_vs_expected"].abs().max() < 1e-6
    # A client 5 points above the course at step 3 deviates by +5.
    probe = X.iloc[[0]].copy()
    probe[["n_attended", "symptom_first"]] = [3.0, 20.0]
    probe["symptom_latest"] = 0.8 * 20 - 1.5 + 5
    assert ecd.transform(probe)["symptom_latest_vs_expected"].iloc[0] == pytest.approx(5, abs=0.1)
    # y is never used.
    np.testing.assert_array_equal(
        ExpectedCourseDeviation(min_rows_per_step=5).fit(X, 1 - y).transform(X), out
    )


def test_expected_course_missing_and_sparse_steps() -> None:
    X, _ = landmarks()
    # Training steps run to 8; steps above max_step share the last bucket's model.
    ecd = ExpectedCourseDeviation(max_step=8, min_rows_per_step=3).fit(X)
    assert 8 in ecd.step_models_["symptom_latest"]
    probe = X.iloc[:4].copy()
    probe["symptom_first"] = [np.nan, 20.0, 20.0, 20.0]
    probe["n_attended"] = [3.0, np.nan, 0.0, 40.0]
    probe["symptom_latest"] = 10.0
    got = ecd.transform(probe)["symptom_latest_vs_expected"].to_numpy()
    assert np.isnan(got[:3]).all()  # missing baseline, missing step, no attended session
    # Beyond max_step the step-8 model applies: expected 0.8 * 20 - 0.5 * 8 = 12.
    assert got[3] == pytest.approx(10 - 12, abs=0.1)
    # Buckets with too few training rows fall back to the pooled model.
    sparse = ExpectedCourseDeviation(min_rows_per_step=10_000).fit(X)
    assert sparse.step_models_["symptom_latest"] == {}
    assert np.isfinite(sparse.transform(X)["symptom_latest_vs_expected"]).all()


# --- TherapistContext ----------------------------------------------------------------------


def test_own_outcome_never_changes_own_training_rows() -> None:
    X, y = landmarks()
    tc = TherapistContext(prior_strength=5.0)
    base = tc.fit_transform(X, y)
    for client in ["c000", "c001", "c007"]:
        own = (X["client_id"] == client).to_numpy()
        flipped = np.where(own, 1 - y, y)
        other = clone(tc).fit_transform(X, flipped)
        for col in THERAPIST_FEATURES:
            np.testing.assert_array_equal(other.loc[own, col], base.loc[own, col], err_msg=col)
        # ... while the same therapist's clients in other folds do see it.
        mates = (X["therapist_id"] == X.loc[own, "therapist_id"].iloc[0]).to_numpy() & ~own
        assert (
            other.loc[mates, "therapist_dropout_rate"] != base.loc[mates, "therapist_dropout_rate"]
        ).any()
    # Own alliance is left out as well.
    own = (X["client_id"] == "c000").to_numpy()
    changed = X.copy()
    changed.loc[own, "alliance_client_mean"] = 1.0
    np.testing.assert_array_equal(
        clone(tc).fit_transform(changed, y).loc[own, "therapist_mean_alliance"],
        base.loc[own, "therapist_mean_alliance"],
    )


def test_training_values_do_not_encode_the_own_label() -> None:
    """Leave-one-out encoding leaks: within a therapist, every dropout's LOO rate is lower than
    every completer's, which trees learn perfectly. Cross-fitted values must not separate."""
    X, _ = landmarks(n_clients=120)
    # labels mixed within every therapist (therapist = client number mod 6)
    y = (X["client_id"].str[1:].astype(int) % 5 < 2).astype(float).to_numpy()
    out = TherapistContext(prior_strength=5.0, cv=3).fit_transform(X, y).assign(y=y)
    assert out.groupby("therapist_id")["therapist_dropout_rate"].nunique().max() <= 3
    separated = []
    for _, grp in out.groupby("therapist_id"):
        dropouts = grp.loc[grp["y"] == 1, "therapist_dropout_rate"]
        completers = grp.loc[grp["y"] == 0, "therapist_dropout_rate"]
        if len(dropouts) and len(completers):
            separated.append(dropouts.max() < completers.min())
    assert separated, "test data needs therapists with both outcomes"
    assert np.mean(separated) < 0.5  # leave-one-out would give 1.0


def test_shrinkage_counts_clients_and_handles_unseen_therapists() -> None:
    # Therapist A: 1 client (dropout) with 4 landmark rows; B: 3 clients, none dropped out.
    X = pd.DataFrame(
        {
            "client_id": ["a1"] * 4 + ["b1", "b2", "b3"],
            "therapist_id": ["A"] * 4 + ["B"] * 3,
            "landmark_session": [1, 2, 3, 4, 1, 1, 1],
            "alliance_client_mean": [3.0, 3.0, 3.0, 3.5, 4.0, 4.5, 5.0],
        }
    )
    y = np.array([1, 1, 1, 1, 0, 0, 0], dtype=float)
    tc = TherapistContext(prior_strength=2.0).fit(X, y)
    p = 1 / 4  # one of four clients (not 4 of 7 rows)
    new = pd.DataFrame(
        {
            "client_id": ["x", "y", "z"],
            "therapist_id": ["A", "B", "C"],
            "landmark_session": [1, 1, 1],
            "alliance_client_mean": [4.0, 4.0, 4.0],
        }
    )
    out = tc.transform(new)
    mean_alliance = (3.5 + 4.0 + 4.5 + 5.0) / 4  # per client, latest landmark
    np.testing.assert_allclose(out["therapist_dropout_rate"], [(1 + 2 * p) / 3, (0 + 2 * p) / 5, p])
    np.testing.assert_allclose(
        out["therapist_mean_alliance"],
        [(3.5 + 2 * mean_alliance) / 3, (13.5 + 2 * mean_alliance) / 5, mean_alliance],
    )
    assert out["therapist_n_clients"].tolist() == [1, 3, 0]
    # Training rows of a1: A has no other client, so the leave-out prior (0 of 3) is all it gets.
    train = clone(tc).fit_transform(X, y)
    assert train.loc[:3, "therapist_dropout_rate"].tolist() == [0.0] * 4
    assert train.loc[:3, "therapist_n_clients"].tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="needs y"):
        clone(tc).fit_transform(X)


def test_feature_specs_cover_new_columns() -> None:
    X, y = landmarks(n_clients=12)
    for est in (ExpectedCourseDeviation(min_rows_per_step=2), TherapistContext()):
        fitted = est.fit(X, y)
        new = set(fitted.get_feature_names_out()) - set(X.columns)
        assert {s.name for s in est.feature_specs()} == new
    names = {s.name for s in feature_specs()}
    assert set(THERAPIST_FEATURES) <= names and "symptom_latest_vs_expected" in names
