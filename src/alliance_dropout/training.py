"""The training stage: validate -> landmark examples -> fit -> evaluate -> track -> register.

``run(cfg)`` is the whole stage as one MLflow run; ``pipelines/train.py`` (experiments,
sweeps) and ``pipelines/run.py`` (with registration) are thin screens over it. Each step is a
function of its own: data preparation (splits by client, therapist or time), fitting (either
framing, with comparators), evaluation, the run's record (description, model card, tables).

Longer than 500 lines on purpose: these are the stage's steps and the record each writes, read
top to bottom in the order they run; the work itself lives in ``modeling/`` and ``features/``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout import registry as reg
from alliance_dropout import tracking as trk
from alliance_dropout.config import DataConfig, TrainRunConfig
from alliance_dropout.config.modeling import (
    Framing,
    GroupBy,
    LabelDefinition,
    ModelConfig,
    SplitBy,
)
from alliance_dropout.features.builder import FeatureSettings
from alliance_dropout.features.covariates import Covariates
from alliance_dropout.modeling import plots
from alliance_dropout.modeling.evaluation import EvaluationResult, HorizonTargets, evaluate
from alliance_dropout.modeling.feature_docs import render_markdown
from alliance_dropout.modeling.fitting import (
    Examples,
    Folds,
    fit_calibrated,
    grouped_folds,
    landmark_examples,
    split_groups,
    subset,
    time_split_cutoff,
    train_test_split_groups,
)
from alliance_dropout.modeling.hazard import HazardRiskModel, fit_hazards, person_periods
from alliance_dropout.modeling.labels import describe_label, episode_labels
from alliance_dropout.modeling.model_card import render_model_card
from alliance_dropout.modeling.models import DropoutRiskModel
from alliance_dropout.modeling.reference_rules import RULES, reference_scores
from alliance_dropout.modeling.tuning import study_storage, tune
from alliance_dropout.progress import timed
from alliance_dropout.serving import model_signature, synthetic_input_example
from alliance_dropout.validation import ValidatedData, run_validation

log = logging.getLogger(__name__)
MAIN = "model"


@dataclass
class RunSummary:
    run_id: str
    tracking_uri: str
    metrics: dict[str, float]
    promotion: reg.PromotionDecision | None
    output_dir: Path


@dataclass
class TrainingData:
    """Validated tables, labels and the landmark examples split into train and test."""

    validated: ValidatedData
    sessions: pd.DataFrame  # validated session rows with their client's covariate columns
    labels: pd.Series
    train: Examples
    test: Examples
    folds: Folds
    # per session row: an unlabeled (ongoing) client on the training side of the split (its
    # therapist is not a test therapist; its episode started before a time split's cut-off)
    unlabeled_on_train_side: np.ndarray


@dataclass
class FittedModels:
    main: DropoutRiskModel
    recipe: ModelConfig  # the model config before fitting (tuned params, if tuned)
    main_cfg: ModelConfig  # as fitted (tuned params, early-stopped rounds)
    test_scores: dict[str, np.ndarray]  # the main model's and each comparator's test risks
    # hazard framing: score name -> horizon h -> test risks of dropout within h sessions
    test_horizons: dict[str, dict[int, np.ndarray]] = dataclasses.field(default_factory=dict)


def feature_settings(cfg: TrainRunConfig) -> FeatureSettings:
    return FeatureSettings(cfg.features, cfg.data.symptom.to_scale(), cfg.data.alliance.to_scale())


def prepare_data(cfg: TrainRunConfig) -> tuple[TrainingData, FeatureSettings]:
    """Validate, label episodes, build landmark examples, split by client (or therapist).

    The feature settings are completed here: the baseline covariates' kinds and kept levels are
    learned from the clients table (no outcome is used).
    """
    validated = run_validation(cfg.data, Path(cfg.output_dir) / "validated", require_outcomes=True)
    log.info(
        "validated: %d session rows, %d clients",
        len(validated.sessions),
        validated.sessions[c.CLIENT_ID].nunique(),
    )
    assert validated.outcomes is not None  # require_outcomes
    covariates = Covariates()
    if cfg.data.client_features and validated.clients is not None:
        covariates = Covariates.learn(validated.clients, list(cfg.data.client_features))
    settings = dataclasses.replace(feature_settings(cfg), covariates=covariates)
    sessions = covariates.attach_to_sessions(
        validated.sessions, validated.clients, str(cfg.data.sessions)
    )
    labels = episode_labels(validated.outcomes, validated.sessions, cfg.label)
    examples = landmark_examples(sessions, labels, settings, cfg.split.group_by)
    examples = _open_label_rows(examples, cfg)
    starts = sessions.groupby(c.CLIENT_ID, sort=False)[c.SESSION_DATE].min()
    cutoff = None
    if cfg.split.by is SplitBy.time:
        cutoff = time_split_cutoff(starts, labels.index, cfg.split)
        log.info("time split: test episodes start on or after %s", cutoff.date())
    train_idx, test_idx = train_test_split_groups(examples, cfg.split, cfg.seed, starts, cutoff)
    folds = grouped_folds(examples, train_idx, cfg.split.n_folds, cfg.seed)
    train, test = subset(examples, train_idx), subset(examples, test_idx)
    data = TrainingData(
        validated,
        sessions,
        labels,
        train,
        test,
        folds,
        _unlabeled_on_train_side(sessions, labels, test, starts, cutoff, cfg),
    )
    log.info(
        "examples: %d train rows, %d test rows (%d landmarks)",
        len(data.train.y),
        len(data.test.y),
        len(cfg.features.landmarks),
    )
    return data, settings


def _unlabeled_on_train_side(
    sessions: pd.DataFrame,
    labels: pd.Series,
    test: Examples,
    starts: pd.Series,
    cutoff: pd.Timestamp | None,
    cfg: TrainRunConfig,
) -> np.ndarray:
    clients = sessions[c.CLIENT_ID]
    side = ~clients.isin(labels.index).to_numpy()
    if cutoff is not None:
        side &= clients.map(starts).to_numpy() < np.datetime64(cutoff)
    elif cfg.split.group_by is GroupBy.therapist:
        test_therapists = np.unique(test.groups)
        groups = split_groups(sessions, pd.DataFrame({c.CLIENT_ID: clients}), GroupBy.therapist)
        side &= ~np.isin(groups, test_therapists)
    return side


def fit_models(cfg: TrainRunConfig, data: TrainingData, settings: FeatureSettings) -> FittedModels:
    """Tune (if asked), fit and calibrate the main model, then each comparator recipe."""
    model_cfg = cfg.model
    if cfg.tune.active:
        model_cfg = tune(
            data.train, data.folds, model_cfg, cfg.tune, cfg.seed, cfg.tracking.experiment
        )

    def fit(recipe: ModelConfig) -> tuple[DropoutRiskModel, ModelConfig]:
        return fit_calibrated(
            data.train,
            model_cfg=recipe,
            calibration=cfg.calibration,
            folds=data.folds,
            settings=settings,
            seed=cfg.seed,
        )

    def fit_any(recipe: ModelConfig) -> tuple[DropoutRiskModel, ModelConfig]:
        if recipe.framing is Framing.hazard:
            return fit_hazard_recipe(cfg, data, settings, recipe), recipe
        return fit(recipe)

    started = time.perf_counter()
    recipe = model_cfg
    main, model_cfg = fit_any(model_cfg)
    log.info("fitted %s in %.1f s", main.model_kind, time.perf_counter() - started)
    scores: dict[str, np.ndarray] = {}
    horizons: dict[str, dict[int, np.ndarray]] = {}

    def score(name: str, model: DropoutRiskModel) -> None:
        if isinstance(model, HazardRiskModel):
            risks = model.predict_horizons(data.test.X, list(cfg.evaluation.horizons))
            scores[name] = risks[0]
            horizons[name] = dict(zip(cfg.evaluation.horizons, risks[1:], strict=True))
        else:
            scores[name] = model.predict_proba(data.test.X)

    score(MAIN, main)
    for kind in cfg.evaluation.comparators:
        if kind is model_cfg.kind:
            continue
        if kind.value not in cfg.recipes:
            raise ValueError(f"comparator {kind.value!r} has no recipe in conf/model/")
        # the comparator answers the same question: same framing as the main model
        comparator_recipe = dataclasses.replace(cfg.recipes[kind.value], framing=model_cfg.framing)
        comparator, _ = fit_any(comparator_recipe)
        score(kind.value, comparator)
        log.info("fitted comparator %s", kind.value)
    return FittedModels(main, recipe, model_cfg, scores, horizons)


def fit_hazard_recipe(
    cfg: TrainRunConfig,
    data: TrainingData,
    settings: FeatureSettings,
    recipe: ModelConfig,
) -> HazardRiskModel:
    """The hazard framing: every session of the training clients and of the unlabeled
    (ongoing) clients on the training side of the split, censored after their last row; never
    a row of a test client (nor of a test therapist's or a later episode)."""
    sessions = data.sessions
    labeled = sessions[c.CLIENT_ID].isin(data.labels.index)
    train_clients = sessions[c.CLIENT_ID].isin(data.train.X[c.CLIENT_ID].unique())
    train_clients |= ~labeled & data.unlabeled_on_train_side
    assert data.validated.outcomes is not None
    status = data.validated.outcomes.set_index(c.CLIENT_ID)[c.STATUS]
    if cfg.label.definition is not LabelDefinition.dropout:
        raise ValueError("model.framing=hazard predicts the recorded dropout status only")
    periods = person_periods(
        sessions[train_clients],
        status,
        settings,
        max_rows=recipe.max_person_periods,
        seed=cfg.seed,
    )
    log.info(
        "person-period rows: %d (%d episodes, %d of them censored)",
        len(periods.X),
        periods.X[c.CLIENT_ID].nunique(),
        int(
            (~labeled[train_clients]).groupby(sessions.loc[train_clients, c.CLIENT_ID]).all().sum()
        ),
    )
    model = fit_hazards(
        periods,
        model_cfg=recipe,
        settings=settings,
        n_folds=cfg.split.n_folds,
        seed=cfg.seed,
        last_session=recipe.last_session,
    )
    model.horizons = list(cfg.evaluation.horizons)
    return model


def run_name(cfg: TrainRunConfig) -> str:
    """What the run is: e.g. ``lightgbm-seed42``, ``quick-lightgbm-hazard-seed7-job3``."""
    framing = "hazard" if cfg.model.framing is Framing.hazard else None
    parts = [cfg.run_name, cfg.model.kind.value, framing, f"seed{cfg.seed}"]
    if cfg.job_num is not None:
        parts.append(f"job{cfg.job_num}")
    return "-".join(p for p in parts if p)


def run(cfg: TrainRunConfig) -> RunSummary:
    """Run the whole training stage and track it as one MLflow run."""
    started = time.perf_counter()
    resolved = cast(
        dict[str, Any],
        OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True),
    )
    out = Path(cfg.output_dir)
    # the store first: a wrong URI or a server that is down fails before any work
    uri = trk.setup_tracking(cfg.tracking.uri, cfg.tracking.experiment, cfg.paths.mlruns_dir)
    study_storage(cfg.tune)  # a shared study's storage too
    with timed(log, "data") as step:
        data, settings = prepare_data(cfg)
        step["text"] = (
            f"{len(data.labels)} labeled episodes; {len(data.train.y)} training and "
            f"{len(data.test.y)} test rows"
        )
    parent, tags = None, {}
    if cfg.sweep:
        parent = trk.sweep_parent(
            cfg.tracking.experiment, cfg.sweep, f"sweep-{Path(cfg.sweep).name}"
        )
        tags = {trk.SWEEP_TAG: cfg.sweep}
    with trk.run(run_name(cfg), parent_run_id=parent, tags=tags) as run_id:
        _log_context(cfg, resolved, data)
        with timed(log, "fit") as step:
            fitted = fit_models(cfg, data, settings)
            step["text"] = (
                f"{fitted.main_cfg.kind.value} and {len(fitted.test_scores) - 1} comparator(s)"
            )
        trk.log_params({f"fitted.{k}": v for k, v in fitted.main_cfg.params.items()})
        # after fitting: the dictionary documents the learned features with the model's settings
        trk.log_text(render_markdown(fitted.main.feature_specs()), "features/feature_dictionary.md")
        with timed(log, "evaluate") as step:
            rules = reference_scores(data.sessions, data.test.X, settings.alliance, cfg.rules)
            rule_scores = {name: rules[name].to_numpy() for name in RULES}
            result = evaluate(
                data.test.X,
                data.test.y,
                model_scores=fitted.test_scores,
                rule_scores=rule_scores,
                main=MAIN,
                cfg=cfg.evaluation,
                seed=cfg.seed,
                audit=_audit_frame(data.validated, cfg.data),
                # resample what was held out: therapists when the test set is unseen therapists
                groups=data.test.groups if cfg.split.group_by is GroupBy.therapist else None,
                horizons=_horizon_targets(data, fitted, cfg.evaluation.horizons),
            )
            metrics = result.flat_metrics()
            trk.log_metrics(metrics)
            step["text"] = (
                f"{result.n_clients} test clients, "
                f"{cfg.evaluation.n_bootstrap} bootstrap replicates"
            )
        with timed(log, "track") as step:
            _log_evaluation(result, fitted.main, data.test, {**fitted.test_scores, **rule_scores})
            logged = trk.log_model(
                fitted.main,
                "model",
                synthetic_input_example(),
                model_signature(fitted.main.settings.covariates, fitted.main.served_horizons),
            )
            trk.set_tags({reg.RECIPE_TAG: reg.recipe_tag(fitted.recipe)})
            step["text"] = "config, lineage, tables, plots and model logged"
        promotion = None
        if cfg.register:
            with timed(log, "register") as step:
                promotion = _register(cfg, logged, run_id, result, data, fitted)
                step["text"] = f"version {promotion.version}, " + (
                    "promoted" if promotion.promoted else "not promoted"
                )
        card = _model_card(cfg, data, fitted, result, run_id, promotion)
        trk.log_text(card, "model_card.md")
        description = run_description(result, promotion)
        trk.describe_run(run_id, description)
        if promotion is not None:
            reg.describe_version(cfg.tracking.registered_model_name, promotion, description)
        trk.log_metrics({"duration_s": time.perf_counter() - started})
        summary = {"run_id": run_id, "tracking_uri": uri, "headline": _headline(result)}
        io.write_json(summary, out / "run_summary.json")
    log.info("training: run %s in %.0f s", run_id, time.perf_counter() - started)
    return RunSummary(run_id, uri, metrics, promotion, out)


def run_description(result: EvaluationResult, promotion: reg.PromotionDecision | None) -> str:
    """The run's headline in plain words: metrics with 95% CIs, then the registry decision."""
    labels = {
        "roc_auc_landmark_mean": "ROC AUC, mean over landmarks (headline)",
        "roc_auc": "ROC AUC, all landmark rows pooled",
        "pr_auc": "PR AUC",
        "brier": "Brier score",
        "calibration_slope": "Calibration slope",
        "calibration_intercept": "Calibration intercept",
    }
    rows = result.overall[result.overall.score == MAIN].set_index("metric")
    lines = [
        f"**Held-out test set**: {result.n_clients} clients, {result.n_rows} client-landmark "
        f"rows, dropout prevalence {result.prevalence:.3f}. 95% CIs by bootstrap of the "
        "split's unit (clients, or therapists for a therapist split).",
        "",
        "| metric | estimate (95% CI) |",
        "|---|---|",
    ]
    for key, label in labels.items():
        if key in rows.index:
            r = rows.loc[key]
            lines.append(f"| {label} | {r.value:.3f} ({r.ci_low:.3f} to {r.ci_high:.3f}) |")
    for r in result.overall[
        result.overall.score.str.startswith(f"{MAIN} - ")
        & (result.overall.metric == "roc_auc_landmark_mean")
    ].itertuples():
        other = str(r.score).removeprefix(f"{MAIN} - ")
        lines.append(
            f"| ROC AUC gain over {other} (landmark mean) | {r.value:+.3f} "
            f"({r.ci_low:+.3f} to {r.ci_high:+.3f}) |"
        )
    lines += [
        "",
        "**Registry**: " + (promotion.reason if promotion else "not registered (train only)"),
    ]
    return "\n".join(lines)


def _model_card(
    cfg: TrainRunConfig,
    data: TrainingData,
    fitted: FittedModels,
    result: EvaluationResult,
    run_id: str,
    promotion: reg.PromotionDecision | None,
) -> str:
    data_summary = {
        "source": cfg.data.source,
        "episodes (labeled)": len(data.labels),
        "dropout rate (labeled)": f"{data.labels.mean():.3f}",
        "training rows": len(data.train.y),
        "landmarks": ", ".join(map(str, cfg.features.landmarks)),
        "symptom instrument": fitted.main.symptom.name,
    }
    return render_model_card(
        result,
        model_kind=fitted.main_cfg.kind.value,
        label_definition=describe_label(cfg.label),
        data_summary=data_summary,
        run_id=run_id,
        git_commit=trk.git_commit(),
        promotion=promotion.reason if promotion else None,
        ci_level=cfg.evaluation.ci_level,
        risk_definition=_risk_definition(fitted.main_cfg, cfg.evaluation.horizons),
    )


def _risk_definition(model_cfg: ModelConfig, horizons: list[int]) -> str:
    if model_cfg.framing is Framing.hazard:
        within = ", ".join(f"dropout_risk_within_{h}" for h in horizons)
        return (
            "Discrete-time competing risks over scheduled sessions (modeling/hazard.py): "
            "landmark-conditional hazards of dropout and of planned completion, fitted on every "
            "session row of every episode, ongoing ones censored after their last row. "
            "`dropout_risk` is the probability that the episode ends in dropout (cumulative "
            f"incidence up to session {model_cfg.last_session}), as of the client's latest "
            f"session; {within}: dropout within the next h sessions, this one included. Only "
            "the information up to that session is used; nothing assumes the trajectory stays "
            "as it is. Landmarks past the last one trained on are flagged "
            "(flag_beyond_training_range)."
        )
    return (
        "One calibrated classifier of 'this episode eventually ends in dropout', trained at "
        "landmark sessions on ended episodes only (ongoing episodes have no label and are left "
        "out, which over-represents dropouts among recent intakes). No horizon risks."
    )


def _log_context(cfg: TrainRunConfig, resolved: dict[str, Any], data: TrainingData) -> None:
    """Config, code and data lineage, validation report and data counts (aggregates only)."""
    trk.log_params(resolved)
    trk.log_text(OmegaConf.to_yaml(OmegaConf.create(resolved)), "config/resolved.yaml")
    trk.set_tags(
        {
            "git_commit": trk.git_commit(),
            "label_definition": describe_label(cfg.label),
            "data_source": cfg.data.source,
            "model_kind": cfg.model.kind.value,
            **{f"version.{k}": v for k, v in trk.package_versions().items()},
        }
    )
    for table, path in (
        ("sessions", cfg.data.sessions),
        ("outcomes", cfg.data.outcomes),
        ("clients", cfg.data.clients),
    ):
        if path and Path(path).is_file():
            trk.set_tags({f"data.{table}.sha256": trk.file_sha256(path)})
    trk.log_dataset(
        data.validated.sessions, str(cfg.data.sessions), "sessions_validated", "training"
    )
    trk.log_dict(data.validated.report, "validation/validation_report.json")
    trk.log_metrics(
        {
            "data_labeled_episodes": float(len(data.labels)),
            "data_dropout_rate": float(data.labels.mean()),
            "data_train_rows": float(len(data.train.y)),
            "data_test_rows": float(len(data.test.y)),
            "data_train_prevalence": float(data.train.y.mean()),
        }
    )


def _log_evaluation(
    result: EvaluationResult,
    risk_model: DropoutRiskModel,
    test: Examples,
    scores: dict[str, np.ndarray],
) -> None:
    trk.log_table(result.overall, "evaluation/overall.csv")
    trk.log_table(result.by_landmark, "evaluation/by_landmark.csv")
    trk.log_table(result.alert_budgets, "evaluation/alert_budgets.csv")
    trk.log_table(result.decision_curve, "evaluation/decision_curve.csv")
    trk.log_table(result.subgroups, "evaluation/subgroups.csv")
    trk.log_table(result.calibration_curve, "evaluation/calibration_curve.csv")
    trk.log_dict(result.pcoms_operating_point, "evaluation/pcoms_alert_operating_point.json")
    model_only = {k: v for k, v in scores.items() if not k.startswith("rule_")}
    trk.log_figure(plots.roc_pr_curves(result, test.y, scores), "plots/roc_pr.png")
    trk.log_figure(plots.reliability_diagram(result, model_only), "plots/reliability.png")
    trk.log_figure(plots.auc_by_landmark(result), "plots/auc_by_landmark.png")
    trk.log_figure(plots.decision_curve(result), "plots/decision_curve.png")
    trk.log_figure(plots.subgroup_metrics(result), "plots/subgroups.png")
    contrib = risk_model.contributions(test.X)
    values = risk_model.transform_features(test.X)
    trk.log_figure(plots.feature_importance(contrib), "plots/feature_importance.png")
    trk.log_figure(plots.contribution_summary(contrib, values), "plots/contributions.png")


def _horizon_targets(
    data: TrainingData, fitted: FittedModels, horizons: list[int]
) -> HorizonTargets | None:
    """Dropout within h sessions of each test row (this one included). Test episodes have
    ended, so their follow-up covers every horizon: the episode ended within it or went on."""
    if not fitted.test_horizons:
        return None
    last = data.sessions.groupby(c.CLIENT_ID, sort=False)[c.SESSION_NUMBER].max()
    end = data.test.X[c.CLIENT_ID].map(last).to_numpy()
    landmark = data.test.X["landmark_session"].to_numpy()
    labels = {h: ((data.test.y == 1) & (end <= landmark + h - 1)).astype(int) for h in horizons}
    return HorizonTargets(labels, fitted.test_horizons)


def _audit_frame(validated: ValidatedData, data: DataConfig) -> pd.DataFrame | None:
    if validated.clients is None or not data.audit_attributes:
        return None
    present = [a for a in data.audit_attributes if a in validated.clients.columns]
    return validated.clients[[c.CLIENT_ID, *present]]


def _register(
    cfg: TrainRunConfig,
    logged: trk.LoggedModel,
    run_id: str,
    result: EvaluationResult,
    data: TrainingData,
    fitted: FittedModels,
) -> reg.PromotionDecision:
    """Register the model and let the promotion gate decide (see registry.py)."""
    best_rule = max(RULES, key=lambda r: result.value(r, "roc_auc"))
    diff = result.overall[
        (result.overall.score == f"{MAIN} - {best_rule}") & (result.overall.metric == "roc_auc")
    ].iloc[0]
    events = reg.n_events(data.test)
    gain_rule = reg.AucGain(
        f"the best reference rule ({best_rule})",
        float(diff.value),
        float(diff.ci_low),
        float(diff.ci_high),
        result.n_clients,
        events,
    )
    challenger = reg.Challenger(
        test=data.test,
        scores=fitted.test_scores[MAIN],
        calibration_slope=result.value(MAIN, "calibration_slope"),
        calibration_intercept=result.value(MAIN, "calibration_intercept"),
        gain_over_best_rule=gain_rule,
        refit_on_training_split=lambda champion, recipe: _refit_on_training_split(
            cfg, data, champion, recipe
        ),
        sessions=data.sessions,
        n_bootstrap=max(cfg.evaluation.n_bootstrap, 200),
        seed=cfg.seed,
    )
    sessions = data.sessions
    trained_on = sessions[sessions[c.CLIENT_ID].isin(data.train.X[c.CLIENT_ID].unique())]
    return reg.register_and_gate(
        logged.model_uri,
        logged.sha256,
        run_id,
        fitted.recipe,
        pd.Timestamp(trained_on[c.SESSION_DATE].max()),
        challenger,
        cfg.tracking,
    )


def _refit_on_training_split(
    cfg: TrainRunConfig, data: TrainingData, champion: DropoutRiskModel, recipe: ModelConfig
) -> pd.DataFrame:
    """The champion's recipe (its feature settings and model config) fitted on this run's
    training clients; its risks on this run's test clients (client_id, landmark_session, risk)."""
    sessions = data.sessions
    train_rows = sessions[c.CLIENT_ID].isin(data.train.X[c.CLIENT_ID].unique())
    refit: DropoutRiskModel
    if recipe.framing is Framing.hazard:
        refit = fit_hazard_recipe(cfg, data, champion.settings, recipe)
    else:
        examples = landmark_examples(
            sessions[train_rows], data.labels, champion.settings, cfg.split.group_by
        )
        examples = _open_label_rows(examples, cfg)
        folds = grouped_folds(examples, np.arange(len(examples.y)), cfg.split.n_folds, cfg.seed)
        refit, _ = fit_calibrated(
            examples,
            model_cfg=recipe,
            calibration=cfg.calibration,
            folds=folds,
            settings=champion.settings,
            seed=cfg.seed,
        )
    test_rows = sessions[c.CLIENT_ID].isin(data.test.X[c.CLIENT_ID].unique())
    landmarks = sorted(data.test.X["landmark_session"].unique().tolist())
    X = refit.landmark_frame(sessions[test_rows], landmarks)
    return X[[c.CLIENT_ID, "landmark_session"]].assign(risk=refit.predict_proba(X))


def _open_label_rows(examples: Examples, cfg: TrainRunConfig) -> Examples:
    """Only landmarks where the label is still open.

    Early termination (fewer than k attended sessions) is already decided (0) at a landmark
    where the client has attended k sessions: such rows would teach the model a count, not risk.
    """
    if cfg.label.definition is not LabelDefinition.early_termination:
        return examples
    attended = examples.X["attendance_attended"].to_numpy(dtype=float)
    keep = np.flatnonzero(attended < cfg.label.min_attended)
    return subset(examples, keep)


def _headline(result: EvaluationResult) -> dict[str, Any]:
    keep = (
        "roc_auc_landmark_mean",
        "roc_auc",
        "pr_auc",
        "brier",
        "calibration_slope",
        "calibration_intercept",
    )
    rows = result.overall[result.overall.metric.isin(keep)]
    return {
        f"{r.score}.{r.metric}": [round(r.value, 4), round(r.ci_low, 4), round(r.ci_high, 4)]
        for r in rows.itertuples()
    }
