"""Hyperparameter search with Optuna over grouped-CV AUC, one MLflow child run per trial."""

from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Any

import optuna

from alliance_dropout import tracking as trk
from alliance_dropout.config.modeling import ModelConfig, TuneConfig
from alliance_dropout.modeling.fitting import Examples, Folds, cv_auc

log = logging.getLogger(__name__)


def tune(
    train: Examples,
    folds: Folds,
    model_cfg: ModelConfig,
    cfg: TuneConfig,
    seed: int,
    experiment: str | None = None,
) -> ModelConfig:
    """Optuna search of ``cfg.search_space`` by grouped-CV AUC; the best params merged in.

    With ``cfg.storage``/``cfg.study_name`` the study is shared: created if missing, joined if
    it exists, so workers on several machines split its trials; their trials are child runs of
    one parent run per study (tag ``study``). Trials are pruned on CV folds.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=None if cfg.storage else seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=cfg.prune_after_trials),
        storage=cfg.storage,
        study_name=cfg.study_name,
        load_if_exists=True,
    )
    parent = None
    if cfg.study_name and experiment:
        parent = trk.tagged_parent(experiment, "study", cfg.study_name, f"study-{cfg.study_name}")

    def objective(trial: optuna.Trial) -> float:
        params = {name: suggest(trial, name, spec) for name, spec in cfg.search_space.items()}
        trial_cfg = dataclasses.replace(model_cfg, params={**model_cfg.params, **params})

        def report(fold: int, mean_auc: float) -> None:
            trial.report(mean_auc, fold)
            if trial.should_prune():
                trk.log_metrics({"cv_roc_auc_at_prune": mean_auc})
                log.info(
                    "trial %d pruned after fold %d (CV AUC %.4f)", trial.number, fold, mean_auc
                )
                raise optuna.TrialPruned()

        with trk.child_run(f"trial-{trial.number:03d}", parent_run_id=parent):
            trk.log_params(params)
            trk.set_tags({"study": cfg.study_name or "", "trial": trial.number})
            auc = cv_auc(train, folds, trial_cfg, seed, after_fold=report)
            trk.log_metrics({"cv_roc_auc": auc})
        log.info("trial %d: CV ROC AUC %.4f with %s", trial.number, auc, params)
        return auc

    if cfg.n_trials > 0:
        study.optimize(
            objective,
            n_trials=cfg.n_trials,
            timeout=cfg.timeout_s,
            show_progress_bar=sys.stderr.isatty(),
        )
    complete = [t for t in study.trials if t.state is optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ValueError(f"study {cfg.study_name or '(in memory)'} has no complete trial yet")
    log.info("tuning: best CV ROC AUC %.4f with %s", study.best_value, study.best_params)
    trk.log_params({f"best.{k}": v for k, v in study.best_params.items()})
    trk.log_metrics({"tune_best_cv_roc_auc": study.best_value})
    return dataclasses.replace(model_cfg, params={**model_cfg.params, **study.best_params})


def suggest(trial: optuna.Trial, name: str, spec: dict[str, Any]) -> Any:
    """One value of a search-space entry ``{type: float|int|categorical, low, high, log}``."""
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
