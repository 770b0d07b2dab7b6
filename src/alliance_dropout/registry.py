"""The model registry and its promotion gate: which registered model becomes ``@champion``.

A fair comparison needs clients that neither model saw in training, and an honest decision
needs its uncertainty. The gate therefore:

1. compares challenger and champion on the same clients, unseen by both:
   (a) the challenger's test clients whose episodes start after the champion's training-data
   window (its latest training session date, recorded on its version: a date, no ids); or,
   when fewer than ``min_test_events`` dropouts remain there,
   (b) the champion's recorded recipe (feature settings and model config) refitted on the
   challenger's training split and scored on the challenger's test set;
2. promotes only when the lower bound of the paired client-bootstrap 95% interval of the AUC
   gain (challenger minus champion, and challenger minus the best reference rule) is above
   ``tracking.promotion_margin`` (a tie never promotes), the test set holds at least
   ``tracking.min_test_events`` dropouts, and the risks are calibrated on it
   (slope and intercept within the configured bounds);
3. never promotes with ``tracking.promote=false``;
4. writes every decision, its figures and the rule that decided, to tags of the run and of the
   model version and to the version's description, in plain words.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from alliance_dropout import contract as c
from alliance_dropout import tracking as trk
from alliance_dropout.config import TrackingConfig
from alliance_dropout.config.modeling import Framing, ModelConfig, ModelKind
from alliance_dropout.modeling import metrics as m
from alliance_dropout.modeling.fitting import Examples
from alliance_dropout.modeling.models import DropoutRiskModel

log = logging.getLogger(__name__)
CHAMPION = "champion"
WINDOW_END_TAG = "training.last_session_date"
RECIPE_TAG = "recipe.model"
KEYS = [c.CLIENT_ID, "landmark_session"]


@dataclass
class PromotionDecision:
    promoted: bool
    reason: str  # plain words: the rule that decided and its figures
    version: str | None = None
    previous_champion: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class AucGain:
    """Paired bootstrap estimate of an AUC difference (challenger minus another score)."""

    against: str
    estimate: float
    ci_low: float
    ci_high: float
    n_clients: int
    n_events: int
    how: str = ""

    def text(self) -> str:
        return (
            f"AUC gain over {self.against}: {self.estimate:+.3f} "
            f"(95% CI {self.ci_low:+.3f} to {self.ci_high:+.3f}; {self.n_clients} clients, "
            f"{self.n_events} dropouts{'; ' + self.how if self.how else ''})"
        )


@dataclass
class Challenger:
    """What the gate knows about the new model: its test figures and how to refit a recipe."""

    test: Examples
    scores: np.ndarray  # the challenger's risks on the test rows
    calibration_slope: float
    calibration_intercept: float
    gain_over_best_rule: AucGain
    # the champion's recipe refitted on the challenger's training split -> KEYS + "risk" on the
    # challenger's test clients
    refit_on_training_split: Callable[[DropoutRiskModel, ModelConfig], pd.DataFrame]
    sessions: pd.DataFrame  # validated sessions (for the champion's own features)
    n_bootstrap: int
    seed: int


def n_events(test: Examples) -> int:
    """Dropouts among the test clients (one label per client)."""
    per_client = pd.Series(test.y, index=test.X[c.CLIENT_ID].to_numpy()).groupby(level=0).max()
    return int(per_client.sum())


def paired_auc_gain(
    rows: pd.DataFrame,
    y: np.ndarray,
    new: np.ndarray,
    old: np.ndarray,
    against: str,
    n: int,
    seed: int,
    how: str = "",
) -> AucGain:
    """Paired client-bootstrap interval of AUC(new) - AUC(old) on the same rows."""
    codes, uniques = pd.factorize(rows[c.CLIENT_ID])
    weights = m.client_bootstrap_weights(codes, n, seed)
    auc = {"roc_auc": m.CORE_METRICS["roc_auc"]}
    table = m.bootstrap_table(
        y, {"new": new, "old": old}, {"new": auc, "old": auc}, weights, 0.95, reference="new"
    )
    diff = table[table.score == "new - old"].iloc[0]
    events = int(pd.Series(y, index=codes).groupby(level=0).max().sum())
    return AucGain(
        against,
        float(diff.value),
        float(diff.ci_low),
        float(diff.ci_high),
        len(uniques),
        events,
        how,
    )


def current_champion(registered_name: str) -> Any | None:
    """The champion's model version, or None if there is none yet."""
    try:
        return MlflowClient().get_model_version_by_alias(registered_name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None


def _first_dates(sessions: pd.DataFrame) -> pd.Series:
    return sessions.groupby(c.CLIENT_ID, sort=False)[c.SESSION_DATE].min()


def _champion_on_unseen(
    champion: DropoutRiskModel, window_end: pd.Timestamp, ch: Challenger, cfg: TrackingConfig
) -> AucGain | None:
    """(a): champion vs challenger on test clients whose episodes start after the window."""
    first = _first_dates(ch.sessions[ch.sessions[c.CLIENT_ID].isin(ch.test.X[c.CLIENT_ID])])
    unseen = first.index[first > window_end]
    mask = ch.test.X[c.CLIENT_ID].isin(unseen).to_numpy()
    if n_events(_subset(ch.test, mask)) < cfg.min_test_events:
        return None
    rows = ch.test.X.loc[mask, KEYS].assign(label=ch.test.y[mask], new=ch.scores[mask])
    sessions = ch.sessions[ch.sessions[c.CLIENT_ID].isin(unseen)]
    X = champion.landmark_frame(sessions, sorted(rows["landmark_session"].unique().tolist()))
    old = X[KEYS].assign(old=champion.predict_proba(X))
    how = f"clients whose episodes start after the champion's training data ({window_end:%Y-%m-%d})"
    return _gain_over_champion(rows.merge(old, on=KEYS, how="inner"), ch, how)


def _champion_refitted(champion: DropoutRiskModel, recipe: ModelConfig, ch: Challenger) -> AucGain:
    """(b): the champion's recipe refitted on this run's training split, same test rows."""
    refit = ch.refit_on_training_split(champion, recipe)
    rows = ch.test.X[KEYS].assign(label=ch.test.y, new=ch.scores)
    rows = rows.merge(refit.rename(columns={"risk": "old"}), on=KEYS, how="inner")
    return _gain_over_champion(
        rows, ch, "the champion's recipe refitted on this run's training split"
    )


def _gain_over_champion(rows: pd.DataFrame, ch: Challenger, how: str) -> AucGain:
    """Paired gain on rows holding both models' risks (``new``, ``old``) and the label."""
    return paired_auc_gain(
        rows,
        rows["label"].to_numpy(),
        rows["new"].to_numpy(),
        rows["old"].to_numpy(),
        "the champion",
        ch.n_bootstrap,
        ch.seed,
        how,
    )


def _subset(ex: Examples, mask: np.ndarray) -> Examples:
    return Examples(X=ex.X.loc[mask].reset_index(drop=True), y=ex.y[mask], groups=ex.groups[mask])


def recipe_of(version: Any) -> ModelConfig:
    """The model config recorded on a registered version (JSON tag)."""
    raw = json.loads((version.tags or {})[RECIPE_TAG])
    return ModelConfig(
        kind=ModelKind(raw["kind"]),
        class_weight=raw["class_weight"],
        early_stopping_rounds=int(raw["early_stopping_rounds"]),
        framing=Framing(raw.get("framing", Framing.landmark.value)),
        last_session=int(raw.get("last_session", 40)),
        max_person_periods=int(raw.get("max_person_periods", 300_000)),
        params=dict(raw["params"]),
    )


def recipe_tag(recipe: ModelConfig) -> str:
    fields = {**asdict(recipe), "kind": recipe.kind.value, "framing": recipe.framing.value}
    return json.dumps(fields, sort_keys=True)


def compare_with_champion(version: Any, ch: Challenger, cfg: TrackingConfig) -> AucGain:
    """The challenger's AUC gain over the champion on clients neither saw in training."""
    uri = f"models:/{version.name}/{version.version}"
    champion: DropoutRiskModel = trk.load_risk_model(uri)
    window = (version.tags or {}).get(WINDOW_END_TAG)
    if window:
        gain = _champion_on_unseen(champion, pd.Timestamp(window), ch, cfg)
        if gain is not None:
            return gain
        log.info("too few unseen clients after %s: refitting the champion's recipe", window)
    return _champion_refitted(champion, recipe_of(version), ch)


def decide(
    cfg: TrackingConfig, ch: Challenger, vs_champion: AucGain | None, champion_version: str | None
) -> tuple[bool, str]:
    """Promote or not, and the rule that decided, in plain words."""
    margin = cfg.promotion_margin
    events = n_events(ch.test)
    slope, intercept = ch.calibration_slope, ch.calibration_intercept
    if not cfg.promote:
        return False, "not promoted: tracking.promote is false (registered only)"
    if events < cfg.min_test_events:
        return False, (
            f"not promoted: the test set holds {events} dropouts, fewer than "
            f"tracking.min_test_events ({cfg.min_test_events}), too few to judge it"
        )
    if not (cfg.calibration_slope_min <= slope <= cfg.calibration_slope_max) or (
        abs(intercept) > cfg.calibration_intercept_max
    ):
        return False, (
            f"not promoted: risks are not calibrated on the test set (slope {slope:.2f}, "
            f"allowed {cfg.calibration_slope_min}-{cfg.calibration_slope_max}; intercept "
            f"{intercept:+.2f}, allowed within ±{cfg.calibration_intercept_max})"
        )
    rule = ch.gain_over_best_rule
    if not rule.ci_low > margin:
        return False, (
            f"not promoted: {rule.text()}; its lower bound is not above the margin {margin}"
        )
    if vs_champion is not None and not vs_champion.ci_low > margin:
        return False, (
            f"not promoted: {vs_champion.text()} for champion v{champion_version}; its lower "
            f"bound is not above the margin {margin}"
        )
    against = (
        "there was no champion yet"
        if vs_champion is None
        else f"{vs_champion.text()} for champion v{champion_version}"
    )
    return True, (
        f"promoted: {rule.text()}; {against}; both lower bounds above the margin {margin}; "
        f"{events} dropouts in the test set; calibration slope {slope:.2f}, "
        f"intercept {intercept:+.2f}"
    )


def register_and_gate(
    model_uri: str,
    model_digest: str,
    run_id: str,
    recipe: ModelConfig,
    window_end: pd.Timestamp,
    ch: Challenger,
    cfg: TrackingConfig,
) -> PromotionDecision:
    """Register the run's model, record its recipe and window, and apply the gate."""
    client = MlflowClient()
    name = cfg.registered_model_name
    champion = current_champion(name)
    version = str(mlflow.register_model(model_uri, name).version)
    for key, value in {
        "run_id": run_id,
        trk.MODEL_DIGEST_TAG: model_digest,
        WINDOW_END_TAG: f"{window_end:%Y-%m-%d}",
        RECIPE_TAG: recipe_tag(recipe),
    }.items():
        client.set_model_version_tag(name, version, key, value)

    vs_champion = None
    champion_version = None
    if champion is not None and cfg.promote:
        champion_version = str(champion.version)
        vs_champion = compare_with_champion(champion, ch, cfg)
        trk.log_metrics(
            {
                "test_gain_vs_champion_roc_auc": vs_champion.estimate,
                "test_gain_vs_champion_roc_auc_ci_low": vs_champion.ci_low,
                "test_gain_vs_champion_roc_auc_ci_high": vs_champion.ci_high,
            }
        )
    promoted, reason = decide(cfg, ch, vs_champion, champion_version)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    figures: dict[str, Any] = {
        "promoted": promoted,
        "test_dropouts": n_events(ch.test),
        "calibration_slope": round(ch.calibration_slope, 4),
        "calibration_intercept": round(ch.calibration_intercept, 4),
        "gain_vs_best_rule": round(ch.gain_over_best_rule.estimate, 4),
        "gain_vs_best_rule_ci_low": round(ch.gain_over_best_rule.ci_low, 4),
    }
    if vs_champion is not None:
        figures |= {
            "gain_vs_champion": round(vs_champion.estimate, 4),
            "gain_vs_champion_ci_low": round(vs_champion.ci_low, 4),
            "champion_comparison": vs_champion.how,
        }
    tags = {f"promotion.{k}": str(v) for k, v in figures.items()} | {"promotion.reason": reason}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    trk.set_tags(tags | {"registered_version": version})
    log.info("registry: version %s %s", version, reason)
    return PromotionDecision(promoted, reason, version, champion_version, figures)


MODEL_DESCRIPTION = (
    "Probability that a psychotherapy episode ends in dropout (the client ends treatment "
    "unilaterally), from session-by-session alliance (WAI-SR), symptoms and attendance, as of "
    "the client's latest session. Send raw session rows; see each version's description for "
    "its test-set figures and the promotion decision, and the run's model_card.md for its "
    "intended use and limits. @champion is moved only by the promotion gate."
)


def describe_version(name: str, decision: PromotionDecision, summary: str) -> None:
    """The registered model's description (once) and the version's: the model card's summary
    (headline metrics with CIs) and the gate's decision in plain words."""
    client = MlflowClient()
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, description=MODEL_DESCRIPTION)
    if decision.version is not None:
        client.update_model_version(name, decision.version, description=summary)
