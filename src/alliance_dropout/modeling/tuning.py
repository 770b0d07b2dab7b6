"""Hyperparameter search with Optuna over grouped-CV AUC, one MLflow child run per trial."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import time
from typing import Any

import optuna
import sqlalchemy.exc

from alliance_dropout import tracking as trk
from alliance_dropout.config.modeling import ModelConfig, TuneConfig
from alliance_dropout.errors import StudyStorageError
from alliance_dropout.modeling.fitting import Examples, Folds, cv_auc

log = logging.getLogger(__name__)

# the password of tune.storage's user: never part of the URL, which is logged with the config
PASSWORD_ENV = "TUNE_STORAGE_PASSWORD"


def study_storage(cfg: TuneConfig) -> optuna.storages.RDBStorage | None:
    """The shared study's storage, connected (None: a search within this process).

    Its password comes from TUNE_STORAGE_PASSWORD (or, for PostgreSQL, libpq's own PGPASSWORD /
    PGPASSFILE). A storage that cannot be reached or refuses the login is a one-line
    StudyStorageError naming the URL and the problem, raised before any training.
    """
    if not cfg.study_name:
        return None
    assert cfg.storage  # TuneConfig: a study name needs a storage
    password = os.environ.get(PASSWORD_ENV)
    engine_kwargs: dict[str, Any] = {}
    if password and not cfg.storage.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"password": password}
    try:
        return optuna.storages.RDBStorage(cfg.storage, engine_kwargs=engine_kwargs)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, RuntimeError) as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        problem = lines[0] if lines else type(exc).__name__
        hint = "" if password else f" ({PASSWORD_ENV} is not set)"
        raise StudyStorageError(f"tune.storage {cfg.storage}: {problem}{hint}") from None


def open_study(cfg: TuneConfig, seed: int) -> tuple[optuna.Study, bool]:
    """The study to search or to read, and whether this process created it: in memory, created
    or joined in the shared storage, or (n_trials=0) an existing shared study, never created
    empty. The storage's unique study name makes exactly one worker its creator."""
    storage = study_storage(cfg)
    if storage is not None and cfg.n_trials == 0:
        try:
            return optuna.load_study(study_name=cfg.study_name, storage=storage), False
        except KeyError:
            raise StudyStorageError(
                f"tune.storage {cfg.storage}: no study named {cfg.study_name!r} to train the "
                "best trial of"
            ) from None
    # workers of a shared study draw their own points (one seed would repeat them)
    sampler = optuna.samplers.TPESampler(seed=None if storage else seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=cfg.prune_after_trials)
    try:
        study = optuna.create_study(
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
            storage=storage,
            study_name=cfg.study_name,
        )
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        assert storage is not None  # only a named study in a storage can exist already
        study = optuna.load_study(
            study_name=cfg.study_name, storage=storage, sampler=sampler, pruner=pruner
        )
        return study, False


PARENT_RUN_ATTR = "mlflow_parent_run_id"
# how long a worker that joined a new study waits for its creator to record the parent run
PARENT_WAIT_S = 120.0


def study_parent_run(study: optuna.Study, created: bool, experiment: str) -> str:
    """The one parent run (tagged ``study``) of a shared study's trial runs.

    The worker that created the study creates it and records its id in the study, so every
    worker finds the same one: a search by tag alone lets two workers that start together
    each see only their own new parent run. A study recorded without one (its creator died
    first) gets one from the first worker to find it missing after the wait.
    """
    name = study.study_name
    if created:
        run_id = trk.parent_run(experiment, "study", name, f"study-{name}")
        study.set_user_attr(PARENT_RUN_ATTR, run_id)
        return run_id
    deadline = time.monotonic() + PARENT_WAIT_S
    while (recorded := study.user_attrs.get(PARENT_RUN_ATTR)) is None:
        if time.monotonic() > deadline:
            run_id = trk.tagged_parent(experiment, "study", name, f"study-{name}")
            study.set_user_attr(PARENT_RUN_ATTR, run_id)
            return run_id
        time.sleep(0.5)
    return str(recorded)


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
    one parent run per study (:func:`study_parent_run`). Trials are pruned on CV folds.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, created = open_study(cfg, seed)
    parent = None
    if cfg.study_name and experiment and cfg.n_trials > 0:
        parent = study_parent_run(study, created, experiment)

    # which process on which machine ran a trial of a shared study
    worker = f"{socket.gethostname()}-{os.getpid()}"

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

        trial.set_user_attr("worker", worker)
        with trk.child_run(f"trial-{trial.number:03d}", parent_run_id=parent):
            trk.log_params(params)
            trk.set_tags({"study": cfg.study_name or "", "trial": trial.number, "worker": worker})
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
        raise StudyStorageError(
            f"study {cfg.study_name or '(in memory)'} has no complete trial yet"
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
