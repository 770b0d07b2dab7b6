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
    train: Examples, folds: Folds, model_cfg: ModelConfig, cfg: TuneConfig, seed: int
) -> ModelConfig:
    """Optuna search of ``cfg.search_space`` by grouped-CV AUC; the best params merged in."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        params = {name: suggest(trial, name, spec) for name, spec in cfg.search_space.items()}
        trial_cfg = dataclasses.replace(model_cfg, params={**model_cfg.params, **params})
        with trk.child_run(f"trial-{trial.number:03d}"):
            trk.log_params(params)
            auc = cv_auc(train, folds, trial_cfg, seed)
            trk.log_metrics({"cv_roc_auc": auc})
        log.info("trial %d: CV ROC AUC %.4f with %s", trial.number, auc, params)
        return auc

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(
        objective,
        n_trials=cfg.n_trials,
        timeout=cfg.timeout_s,
        show_progress_bar=sys.stderr.isatty(),
    )
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
