"""The training workflow: validate -> landmark examples -> fit -> evaluate -> track -> register.

``pipelines/train.py`` (experiments, sweeps) and ``pipelines/run.py`` (the whole pipeline,
with registration) are thin Hydra screens over :func:`run_training`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd
from omegaconf import MISSING, DictConfig, OmegaConf

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout import tracking as trk
from alliance_dropout.cli import echo
from alliance_dropout.config import DataConfig, PathsConfig, TrackingConfig, to_object
from alliance_dropout.features.config import FeaturesConfig
from alliance_dropout.features.dictionary import render_markdown
from alliance_dropout.modeling import plots
from alliance_dropout.modeling.config import (
    CalibrationConfig,
    EvaluationConfig,
    LabelConfig,
    ModelConfig,
    ReferenceRulesConfig,
    SplitConfig,
    TuneConfig,
)
from alliance_dropout.modeling.evaluation import EvaluationResult, evaluate
from alliance_dropout.modeling.labels import describe_label, episode_labels
from alliance_dropout.modeling.model_card import render_model_card
from alliance_dropout.modeling.models import DropoutRiskModel
from alliance_dropout.modeling.reference_rules import RULES, reference_scores
from alliance_dropout.modeling.training import (
    Examples,
    cv_auc,
    fit_calibrated,
    grouped_folds,
    landmark_examples,
    subset,
    train_test_split_groups,
)
from alliance_dropout.serving import model_signature, synthetic_input_example
from alliance_dropout.validation import ValidatedData, run_validation

MAIN = "model"


@dataclass
class TrainRunConfig:
    """Primary config of ``pipelines/train.py`` and ``pipelines/run.py``."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    rules: ReferenceRulesConfig = field(default_factory=ReferenceRulesConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 42
    register: bool = False
    run_name: str | None = None
    output_dir: str = MISSING


@dataclass
class RunSummary:
    run_id: str
    tracking_uri: str
    metrics: dict[str, float]
    promotion: trk.PromotionDecision | None
    output_dir: Path


def run_training(cfg: TrainRunConfig, resolved: dict[str, Any]) -> RunSummary:
    """Run the whole training workflow and track it as one MLflow run."""
    started = time.perf_counter()
    out = Path(cfg.output_dir)
    validated = run_validation(cfg.data, out / "validated", require_outcomes=True)
    echo(
        "validated: %d session rows, %d clients",
        len(validated.sessions),
        validated.sessions[c.CLIENT_ID].nunique(),
    )

    symptom, alliance = cfg.data.symptom.to_scale(), cfg.data.alliance.to_scale()
    assert validated.outcomes is not None
    labels = episode_labels(validated.outcomes, validated.sessions, cfg.label)
    examples = landmark_examples(
        validated.sessions, labels, cfg.features, symptom, alliance, cfg.split.group_by
    )
    train_idx, test_idx = train_test_split_groups(examples, cfg.split, cfg.seed)
    train, test = subset(examples, train_idx), subset(examples, test_idx)
    folds = grouped_folds(examples, train_idx, cfg.split.n_folds, cfg.seed)
    echo(
        "examples: %d train rows, %d test rows (%d landmarks)",
        len(train.y),
        len(test.y),
        len(cfg.features.landmarks),
    )

    uri = trk.setup_tracking(cfg.tracking.uri, cfg.tracking.experiment, cfg.paths.mlruns_dir)
    with mlflow.start_run(run_name=cfg.run_name) as run:
        _log_context(cfg, resolved, validated, labels, train, test)
        model_cfg = cfg.model
        if cfg.tune.n_trials > 0:
            model_cfg = tune(train, folds, model_cfg, cfg.tune, cfg.seed)
        risk_model, model_cfg = fit_calibrated(
            train, model_cfg, cfg.calibration, folds, cfg.features, symptom, alliance, cfg.seed
        )
        mlflow.log_params({f"fitted.{k}": v for k, v in model_cfg.params.items()})
        # after fitting: the dictionary documents the learned features with the model's settings
        mlflow.log_text(
            render_markdown(risk_model.feature_specs()), "features/feature_dictionary.md"
        )
        model_scores = {MAIN: risk_model.predict_proba(test.X)}
        for kind in cfg.evaluation.comparators:
            if kind is model_cfg.kind:
                continue
            comparator, _ = fit_calibrated(
                train,
                ModelConfig(kind=kind),
                cfg.calibration,
                folds,
                cfg.features,
                symptom,
                alliance,
                cfg.seed,
            )
            model_scores[kind.value] = comparator.predict_proba(test.X)
        rules = reference_scores(validated.sessions, test.X, alliance, cfg.rules)
        rule_scores = {name: rules[name].to_numpy() for name in RULES}
        audit = _audit_frame(validated, cfg.data)
        result = evaluate(
            test.X, test.y, model_scores, rule_scores, MAIN, cfg.evaluation, cfg.seed, audit
        )
        metrics = result.flat_metrics()
        mlflow.log_metrics(metrics)
        _log_evaluation(result, risk_model, test, {**model_scores, **rule_scores})

        info = trk.log_model(risk_model, "model", synthetic_input_example(), model_signature())
        promotion = None
        if cfg.register:
            promotion = _register(cfg, info.model_uri, run.info.run_id, result, test, validated)
            mlflow.set_tags(
                {
                    "promotion.promoted": str(promotion.promoted),
                    "promotion.reason": promotion.reason,
                    "registered_version": str(promotion.version),
                }
            )
        data_summary = {
            "source": cfg.data.source,
            "episodes (labeled)": len(labels),
            "dropout rate (labeled)": f"{labels.mean():.3f}",
            "training rows": len(train.y),
            "landmarks": ", ".join(map(str, cfg.features.landmarks)),
            "symptom instrument": symptom.name,
        }
        card = render_model_card(
            result,
            model_kind=model_cfg.kind.value,
            label_definition=describe_label(cfg.label),
            data_summary=data_summary,
            run_id=run.info.run_id,
            git_commit=trk.git_commit(),
            promotion=promotion.reason if promotion else None,
            ci_level=cfg.evaluation.ci_level,
        )
        mlflow.log_text(card, "model_card.md")
        mlflow.log_metric("duration_s", time.perf_counter() - started)
        summary = {"run_id": run.info.run_id, "tracking_uri": uri, "headline": _headline(result)}
        io.write_json(summary, out / "run_summary.json")
    return RunSummary(run.info.run_id, uri, metrics, promotion, out)


def _log_context(
    cfg: TrainRunConfig,
    resolved: dict[str, Any],
    validated: ValidatedData,
    labels: pd.Series,
    train: Examples,
    test: Examples,
) -> None:
    trk.log_params(resolved)
    mlflow.log_text(OmegaConf.to_yaml(OmegaConf.create(resolved)), "config/resolved.yaml")
    mlflow.set_tags(
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
            mlflow.set_tag(f"data.{table}.sha256", trk.file_sha256(path))
    trk.log_dataset(validated.sessions, str(cfg.data.sessions), "sessions_validated", "training")
    mlflow.log_dict(validated.report, "validation/validation_report.json")
    mlflow.log_metrics(
        {
            "data_labeled_episodes": float(len(labels)),
            "data_dropout_rate": float(labels.mean()),
            "data_train_rows": float(len(train.y)),
            "data_test_rows": float(len(test.y)),
            "data_train_prevalence": float(train.y.mean()),
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
    mlflow.log_dict(result.pcoms_operating_point, "evaluation/pcoms_alert_operating_point.json")
    model_only = {k: v for k, v in scores.items() if not k.startswith("rule_")}
    trk.log_figure(plots.roc_pr_curves(result, test.y, scores), "plots/roc_pr.png")
    trk.log_figure(plots.reliability_diagram(result, model_only), "plots/reliability.png")
    trk.log_figure(plots.auc_by_landmark(result), "plots/auc_by_landmark.png")
    trk.log_figure(plots.decision_curve(result), "plots/decision_curve.png")
    trk.log_figure(plots.subgroup_metrics(result), "plots/subgroups.png")
    contrib = risk_model.contributions(test.X)
    values = risk_model.classifier.calibrated_classifiers_[0].estimator[:-1].transform(test.X)
    trk.log_figure(plots.feature_importance(contrib), "plots/feature_importance.png")
    trk.log_figure(plots.contribution_summary(contrib, values), "plots/contributions.png")


def _audit_frame(validated: ValidatedData, data: DataConfig) -> pd.DataFrame | None:
    if validated.clients is None or not data.audit_attributes:
        return None
    present = [a for a in data.audit_attributes if a in validated.clients.columns]
    return validated.clients[[c.CLIENT_ID, *present]]


def _register(
    cfg: TrainRunConfig,
    model_uri: str,
    run_id: str,
    result: EvaluationResult,
    test: Examples,
    validated: ValidatedData,
) -> trk.PromotionDecision:
    """Re-score the current champion on this run's test rows, then decide on promotion."""
    name = cfg.tracking.registered_model_name
    champion = trk.current_champion(name)
    champion_auc = None
    champion_version = None
    if champion is not None:
        champion_version, champion_uri = champion
        champion_auc = champion_test_auc(champion_uri, test, validated)
        mlflow.log_metric("test_champion_roc_auc", champion_auc)
    best_rule = max(result.value(r, "roc_auc") for r in RULES)
    return trk.register_and_promote(
        model_uri,
        name,
        run_id,
        result.value(MAIN, "roc_auc"),
        best_rule,
        champion_auc,
        champion_version,
        cfg.tracking.promotion_margin,
    )


def champion_test_auc(champion_uri: str, test: Examples, validated: ValidatedData) -> float:
    """The champion's ROC AUC on exactly this run's test rows, with its own feature settings."""
    from sklearn.metrics import roc_auc_score

    champion: DropoutRiskModel = trk.load_risk_model(champion_uri)
    clients = test.X[c.CLIENT_ID].unique()
    sessions = validated.sessions[validated.sessions[c.CLIENT_ID].isin(clients)]
    landmarks = sorted(test.X["landmark_session"].unique().tolist())
    X = champion.landmark_frame(sessions, landmarks)
    keys = [c.CLIENT_ID, "landmark_session"]
    rows = (
        test.X[keys]
        .assign(label=test.y)
        .merge(X.assign(risk=champion.predict_proba(X))[[*keys, "risk"]], on=keys, how="inner")
    )
    return float(roc_auc_score(rows["label"], rows["risk"]))


def tune(
    train: Examples, folds: list, model_cfg: ModelConfig, cfg: TuneConfig, seed: int
) -> ModelConfig:
    """Optuna search of ``cfg.search_space`` by grouped-CV AUC; one child run per trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        params = {name: _suggest(trial, name, spec) for name, spec in cfg.search_space.items()}
        trial_cfg = dataclasses.replace(model_cfg, params={**model_cfg.params, **params})
        with mlflow.start_run(run_name=f"trial-{trial.number:03d}", nested=True):
            mlflow.log_params(params)
            auc = cv_auc(train, folds, trial_cfg, seed)
            mlflow.log_metric("cv_roc_auc", auc)
        return auc

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=cfg.n_trials, timeout=cfg.timeout_s)
    mlflow.log_params({f"best.{k}": v for k, v in study.best_params.items()})
    mlflow.log_metric("tune_best_cv_roc_auc", study.best_value)
    return dataclasses.replace(model_cfg, params={**model_cfg.params, **study.best_params})


def _suggest(trial: optuna.Trial, name: str, spec: dict[str, Any]) -> Any:
    kind = spec.get("type", "float")
    if kind == "int":
        return trial.suggest_int(
            name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log", False))
        )
    if kind == "categorical":
        return trial.suggest_categorical(name, list(spec["choices"]))
    return trial.suggest_float(
        name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False))
    )


def _headline(result: EvaluationResult) -> dict[str, Any]:
    keep = ("roc_auc", "pr_auc", "brier", "calibration_slope", "calibration_intercept")
    rows = result.overall[result.overall.metric.isin(keep)]
    return {
        f"{r.score}.{r.metric}": [round(r.value, 4), round(r.ci_low, 4), round(r.ci_high, 4)]
        for r in rows.itertuples()
    }


def run_from_config(cfg: DictConfig) -> RunSummary:
    """Run the workflow from a composed Hydra config (typed object + resolved dict to log)."""
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return run_training(to_object(cfg), resolved)  # type: ignore[arg-type]


def train_task(cfg: DictConfig) -> float:
    """Entry-point task: run the workflow from a composed config and print its headline."""
    summary = run_from_config(cfg)
    m = summary.metrics

    def fmt(score: str, metric: str) -> str:
        key = f"test_{score}_{metric}"
        if key not in m:
            return "n/a"
        return f"{m[key]:.3f} ({m[key + '_ci_low']:.3f}-{m[key + '_ci_high']:.3f})"

    echo("")
    echo("MLflow run %s  (store: %s)", summary.run_id, summary.tracking_uri)
    echo("  test ROC AUC, model:                 %s", fmt("model", "roc_auc"))
    for name in ("logreg", "rule_latest_alliance", "rule_pcoms_alert"):
        if f"test_{name}_roc_auc" in m:
            echo("  test ROC AUC, %-22s %s", name + ":", fmt(name, "roc_auc"))
    echo(
        "  calibration slope / intercept:       %s / %s",
        fmt("model", "calibration_slope"),
        fmt("model", "calibration_intercept"),
    )
    echo("  Brier score:                         %s", fmt("model", "brier"))
    if summary.promotion is not None:
        p = summary.promotion
        echo(
            "  registry: version %s %s — %s",
            p.version,
            "promoted to @champion" if p.promoted else "not promoted",
            p.reason,
        )
    echo("outputs: %s", summary.output_dir)
    echo("open the MLflow UI with: make ui   (then http://127.0.0.1:5000)")
    return m.get("test_model_roc_auc", float("nan"))
