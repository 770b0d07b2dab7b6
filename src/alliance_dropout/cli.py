"""Shared plumbing of the Hydra entry points in ``pipelines/``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from alliance_dropout.config import TrainRunConfig
from alliance_dropout.errors import PipelineError

T = TypeVar("T")
log = logging.getLogger("alliance_dropout")
# MLflow's per-file "Downloading artifacts" bars are noise in a stage's output
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def run_entry(task: Callable[[], T]) -> T:
    """Run a stage; a PipelineError becomes one clear line on stderr and exit code 2.

    Bugs still raise with their traceback (Hydra prints it and exits 1).
    """
    try:
        return task()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def echo(message: str, *args: Any) -> None:
    """User-facing line (never raw rows or client ids): through ``logging`` when the entry
    point configured it (Hydra does: console and the job's log file), else on stdout."""
    if HydraConfig.initialized():  # Hydra configured logging: console and the job's log file
        log.info(message, *args)
    else:
        print(message % args if args else message, flush=True)


def in_sweep(run_cfg: TrainRunConfig) -> TrainRunConfig:
    """In a Hydra multirun, tell a training config its sweep and job: each job gets its own
    output folder (``<output_dir>/job<N>``) and becomes a child run of the sweep's parent run."""
    if not HydraConfig.initialized():
        return run_cfg
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode is not RunMode.MULTIRUN:
        return run_cfg
    job = int(hydra_cfg.job.num)
    run_cfg.sweep = str(hydra_cfg.sweep.dir)
    run_cfg.job_num = job
    run_cfg.output_dir = f"{run_cfg.output_dir}/job{job}"
    return run_cfg
