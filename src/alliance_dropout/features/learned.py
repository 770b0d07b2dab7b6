"""Features learned from training data: scikit-learn transformers fitted inside the model pipeline.

Both take the landmark feature frame (ID columns plus float32 features) and return it with new
columns appended, so they sit before the estimator in a Pipeline and never see test rows at fit.

- ``ExpectedCourseDeviation``: observed minus expected value of a course measure, the expectation
  learned from training clients with the same starting value and number of attended sessions
  (expected treatment response: Finch, Lambert & Schaalje 2001; Lutz, Martinovich & Howard 1999).
- ``TherapistContext``: the therapist's shrunken dropout rate, mean client alliance and caseload,
  learned from training clients; on training rows a client's own data is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.linear_model import LinearRegression
from sklearn.utils.validation import check_is_fitted

from alliance_dropout.features.spec import FeatureSpec

DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("symptom_latest", "symptom_first"),
    ("alliance_client_latest", "alliance_client_first"),
)
_ETR_REFERENCE = (
    "Finch, Lambert & Schaalje 2001, Clin Psychol Psychother 8:231-242; Lutz, Martinovich & "
    "Howard 1999, J Consult Clin Psychol 67:571-577"
)
_THERAPIST_REFERENCE = (
    "Therapist effects on dropout: Saxon, Barkham et al. 2017, Clin Psychol Psychother "
    "24:575-588; shrinkage as in Micci-Barreca 2001, SIGKDD Explorations 3:27-32"
)
THERAPIST_FEATURES = ("therapist_dropout_rate", "therapist_mean_alliance", "therapist_n_clients")


class _FrameTransformer(TransformerMixin, BaseEstimator):
    """Shared DataFrame-in, DataFrame-out plumbing: input names, output names, tags."""

    def _new_columns(self) -> list[str]:
        raise NotImplementedError

    def _remember_input(self, X: pd.DataFrame, required: Sequence[str]) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} needs the landmark feature DataFrame")
        missing = [c for c in required if c not in X.columns]
        if missing:
            raise KeyError(f"{type(self).__name__}: columns {missing} not in X")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]

    def _check_input(self, X: pd.DataFrame) -> None:
        check_is_fitted(self)
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} needs the landmark feature DataFrame")
        if list(X.columns) != list(self.feature_names_in_):
            raise ValueError(f"{type(self).__name__}: X has other columns than at fit")

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray([*self.feature_names_in_, *self._new_columns()], dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True  # ID columns
        return tags


class ExpectedCourseDeviation(_FrameTransformer):
    """Observed minus expected value of course measures, given the start value and the step.

    For each (target, baseline) pair and each step s = min(attended sessions, ``max_step``), a
    regression of target on baseline is fitted on training rows (``estimator``, default
    ordinary least squares); steps with fewer than ``min_rows_per_step`` rows use a model pooled
    over all steps. Outputs ``<target>_vs_expected``; missing when the target, the baseline or
    the step is missing. Never uses ``y``.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
        step_column: str = "n_attended",
        max_step: int = 12,
        min_rows_per_step: int = 20,
        estimator: Any = None,
    ) -> None:
        self.pairs = pairs
        self.step_column = step_column
        self.max_step = max_step
        self.min_rows_per_step = min_rows_per_step
        self.estimator = estimator

    def _new_columns(self) -> list[str]:
        return [f"{target}_vs_expected" for target, _ in self.pairs]

    def _steps(self, X: pd.DataFrame) -> np.ndarray:
        """Step bucket 1..max_step; 0 where the number of attended sessions is missing or < 1."""
        raw = X[self.step_column].to_numpy(dtype=np.float64)
        ok = np.isfinite(raw) & (raw >= 1)
        return np.where(ok, np.minimum(np.floor(np.where(ok, raw, 1)), self.max_step), 0).astype(
            np.int64
        )

    def fit(self, X: pd.DataFrame, y: Any = None) -> ExpectedCourseDeviation:
        if self.max_step < 1 or self.min_rows_per_step < 2:
            raise ValueError("max_step must be >= 1 and min_rows_per_step >= 2")
        self._remember_input(X, [self.step_column, *(c for pair in self.pairs for c in pair)])
        base = LinearRegression() if self.estimator is None else self.estimator
        steps = self._steps(X)
        self.pooled_models_: dict[str, Any] = {}
        self.step_models_: dict[str, dict[int, Any]] = {}
        for target, baseline in self.pairs:
            x = X[baseline].to_numpy(dtype=np.float64)
            t = X[target].to_numpy(dtype=np.float64)
            usable = ~np.isnan(x) & ~np.isnan(t) & (steps > 0)
            self.pooled_models_[target] = (
                clone(base).fit(x[usable, None], t[usable]) if usable.sum() >= 2 else None
            )
            # A loop over the step buckets (at most max_step), not over rows or clients.
            self.step_models_[target] = {
                s: clone(base).fit(x[rows, None], t[rows])
                for s in range(1, self.max_step + 1)
                if (rows := usable & (steps == s)).sum() >= self.min_rows_per_step
            }
        return self

    def _expected(self, X: pd.DataFrame, target: str, baseline: str) -> np.ndarray:
        x = X[baseline].to_numpy(dtype=np.float64)
        steps = self._steps(X)
        expected = np.full(len(X), np.nan)
        usable = ~np.isnan(x) & (steps > 0)
        pooled = self.pooled_models_[target]
        if pooled is not None and usable.any():
            expected[usable] = pooled.predict(x[usable, None])
        for s, model in self.step_models_[target].items():
            rows = usable & (steps == s)
            if rows.any():
                expected[rows] = model.predict(x[rows, None])
        return expected

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        self._check_input(X)
        new = {
            f"{target}_vs_expected": X[target].to_numpy(dtype=np.float64)
            - self._expected(X, target, baseline)
            for target, baseline in self.pairs
        }
        return pd.concat([X, pd.DataFrame(new, index=X.index)], axis=1)

    def feature_specs(self) -> list[FeatureSpec]:
        """Dictionary entries of the columns this transformer adds."""
        return [
            FeatureSpec(
                f"{target}_vs_expected",
                "expected_course",
                f"{target} minus its expected value given {baseline} and the number of attended "
                f"sessions (capped at {self.max_step}), learned from training clients by a "
                "regression per step.",
                f"units of {target}",
                _ETR_REFERENCE,
            )
            for target, baseline in self.pairs
        ]


@dataclass(frozen=True)
class _Totals:
    """Per-therapist and overall sums of one set of training clients."""

    by_therapist: pd.DataFrame
    dropout_rate: float
    mean_alliance: float


def _therapist_totals(clients: pd.DataFrame) -> _Totals:
    by_therapist = clients.groupby("therapist").agg(
        n=("dropout", "size"),
        exposure=("exposure", "sum"),
        dropouts=("dropout", "sum"),
        alliance_sum=("alliance", "sum"),
        alliance_n=("alliance", "count"),
    )
    exposure = clients["exposure"].sum()
    rated = clients["alliance"].notna().sum()
    return _Totals(
        by_therapist,
        float(clients["dropout"].sum() / exposure) if exposure else float("nan"),
        float(clients["alliance"].sum() / rated) if rated else float("nan"),
    )


class TherapistContext(_FrameTransformer):
    """The therapist's dropout rate (shrunken), mean client alliance and caseload from training.

    One outcome per client: each training client counts once, for the therapist of its latest
    landmark row. Dropout rate = (dropouts + m p) / (clients + m) with prior strength m and p the
    overall training dropout rate; mean alliance is shrunk the same way to the overall mean.
    With ``exposure_column`` (the hazard framing: each client's rows run up to its last session,
    censored episodes included), the rate is per session at risk instead: (dropouts + m p) /
    (sessions at risk + m e), with e the mean sessions per client, so a therapist with many
    episodes still under way is not made to look safer (or, in the landmark framing, riskier).
    ``fit_transform`` (what a Pipeline calls on training data) gives each training row the
    statistics of the clients in the other ``cv`` folds (cross-fitting), so no row ever sees its
    own outcome; ``transform`` uses all training clients, and a therapist unseen in training
    gets the prior values and a caseload of 0.
    """

    def __init__(
        self,
        therapist_column: str = "therapist_id",
        client_column: str = "client_id",
        session_column: str = "landmark_session",
        alliance_column: str = "alliance_client_mean",
        prior_strength: float = 10.0,
        cv: int = 5,
        random_state: int = 0,
        exposure_column: str | None = None,
    ) -> None:
        self.exposure_column = exposure_column
        self.therapist_column = therapist_column
        self.client_column = client_column
        self.session_column = session_column
        self.alliance_column = alliance_column
        self.prior_strength = prior_strength
        self.cv = cv
        self.random_state = random_state

    def _new_columns(self) -> list[str]:
        return list(THERAPIST_FEATURES)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _clients(self, X: pd.DataFrame, y: Any) -> pd.DataFrame:
        """One row per training client: therapist (latest landmark), dropout, alliance."""
        outcome = np.asarray(y, dtype=np.float64).reshape(-1)
        if outcome.shape[0] != len(X) or np.isnan(outcome).any():
            raise ValueError("TherapistContext needs one non-missing outcome per row of X")
        rows = pd.DataFrame(
            {
                "client": X[self.client_column].to_numpy(),
                "therapist": X[self.therapist_column].to_numpy(),
                "session": X[self.session_column].to_numpy(),
                "alliance": X[self.alliance_column].to_numpy(dtype=np.float64),
                "dropout": outcome,
                "exposure": (
                    X[self.exposure_column].to_numpy(dtype=np.float64)
                    if self.exposure_column
                    else np.ones(len(X))
                ),
            }
        )
        latest = rows.sort_values(["client", "session"], kind="stable").groupby("client").tail(1)
        per_client = rows.groupby("client")
        return latest.set_index("client").assign(
            dropout=per_client["dropout"].max(), exposure=per_client["exposure"].max()
        )[["therapist", "alliance", "dropout", "exposure"]]

    def fit(self, X: pd.DataFrame, y: Any) -> TherapistContext:
        if self.prior_strength < 0:
            raise ValueError("prior_strength must be >= 0")
        if self.cv < 2:
            raise ValueError("cv must be at least 2")
        self._remember_input(
            X,
            [self.therapist_column, self.client_column, self.session_column, self.alliance_column],
        )
        # aggregates only: the fitted transformer travels inside the registered model, so it
        # keeps per-therapist counts and sums, never a client's row, id or outcome
        clients = self._clients(X, y)
        self.n_clients_ = len(clients)
        self.totals_ = _therapist_totals(clients)
        return self

    def _context(self, therapist: pd.Series, totals: _Totals) -> dict[str, np.ndarray]:
        """Shrunken statistics per row from one set of training totals."""
        per = totals.by_therapist.reindex(therapist.to_numpy()).fillna(0.0)
        n, dropouts = per["n"].to_numpy(), per["dropouts"].to_numpy()
        exposure = per["exposure"].to_numpy()
        a_sum, a_n = per["alliance_sum"].to_numpy(), per["alliance_n"].to_numpy()
        m = float(self.prior_strength)
        prior, mean_alliance = totals.dropout_rate, totals.mean_alliance
        n_all = totals.by_therapist["n"].sum()
        per_client = totals.by_therapist["exposure"].sum() / n_all if n_all else 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            m_e = m * per_client  # the prior's weight in sessions at risk (m clients' worth)
            rate = np.where(exposure + m_e > 0, (dropouts + m_e * prior) / (exposure + m_e), prior)
            alliance = np.where(a_n + m > 0, (a_sum + m * mean_alliance) / (a_n + m), mean_alliance)
        return {
            "therapist_dropout_rate": rate,
            "therapist_mean_alliance": alliance,
            "therapist_n_clients": n.astype(np.float64),
        }

    def _append(self, X: pd.DataFrame, context: dict[str, np.ndarray]) -> pd.DataFrame:
        return pd.concat([X, pd.DataFrame(context, index=X.index)], axis=1)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        self._check_input(X)
        return self._append(X, self._context(X[self.therapist_column], self.totals_))

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> pd.DataFrame:
        """Fit, then give training rows cross-fitted statistics (never their own outcome).

        Clients are split into ``cv`` folds; a training row gets the statistics of the clients
        in the other folds. Leaving out only the own client (leave-one-out) would leak the
        label: within one therapist a dropout's leave-one-out rate is always lower than a
        completer's, which trees learn perfectly (the reason sklearn's TargetEncoder
        cross-fits too).
        """
        if y is None:
            raise ValueError("TherapistContext needs y (the dropout label) to fit")
        self.fit(X, y)
        clients = self._clients(X, y)  # a local table, never kept on the fitted object
        rng = np.random.default_rng(self.random_state)
        fold_of_client = pd.Series(rng.permutation(len(clients)) % self.cv, index=clients.index)
        row_fold = fold_of_client.reindex(X[self.client_column].to_numpy()).to_numpy()
        therapist = X[self.therapist_column]
        out = {name: np.full(len(X), np.nan) for name in THERAPIST_FEATURES}
        for k in range(self.cv):
            rows = row_fold == k
            others = _therapist_totals(clients[fold_of_client.to_numpy() != k])
            for name, values in self._context(therapist[rows], others).items():
                out[name][rows] = values
        return self._append(X, out)

    def feature_specs(self) -> list[FeatureSpec]:
        """Dictionary entries of the columns this transformer adds."""
        m = self.prior_strength
        rate = (
            (
                "Dropouts per session at risk among the therapist's training clients (ongoing "
                "episodes count their sessions so far), shrunk toward the overall rate with "
                f"prior strength {m:g} clients' sessions",
                "dropouts per session",
            )
            if self.exposure_column
            else (
                "Dropout rate of the therapist's training clients, shrunk toward the overall "
                f"rate with prior strength {m:g} clients: (dropouts + {m:g} p) / (clients + "
                f"{m:g})",
                "proportion",
            )
        )
        texts = {
            "therapist_dropout_rate": (
                rate[0] + "; training rows get cross-fitted values (other folds' clients only).",
                rate[1],
            ),
            "therapist_mean_alliance": (
                f"Mean client alliance (per-client mean) of the therapist's training clients, "
                f"shrunk toward the overall mean with prior strength {m:g}; cross-fitted on "
                "training rows.",
                "WAI-SR points (1-5 item mean)",
            ),
            "therapist_n_clients": (
                "Number of the therapist's clients in the training data (other folds' clients on "
                "training rows); "
                "0 for a therapist not seen in training.",
                "clients",
            ),
        }
        return [
            FeatureSpec(name, "therapist_context", text, unit, _THERAPIST_REFERENCE)
            for name, (text, unit) in texts.items()
        ]


def feature_specs(
    expected_course: ExpectedCourseDeviation | None = None,
    therapist_context: TherapistContext | None = None,
) -> list[FeatureSpec]:
    """Dictionary entries of the learned features (default parameters unless given)."""
    course = expected_course if expected_course is not None else ExpectedCourseDeviation()
    context = therapist_context if therapist_context is not None else TherapistContext()
    return course.feature_specs() + context.feature_specs()
