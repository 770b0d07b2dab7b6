"""Train, evaluate and track one model (no registration): the entry point for experiments.

    python pipelines/train.py model=logreg
    python pipelines/train.py model.params.num_leaves=63 seed=7
    python pipelines/train.py -m model=lightgbm,logreg        # Hydra multirun
    python pipelines/train.py tune=lightgbm tune.n_trials=30  # Optuna, child run per trial
    python pipelines/train.py experiment=unseen_therapists
Returns the held-out ROC AUC, so a Hydra sweeper can optimise it.
"""

from __future__ import annotations

import hydra
from _console import print_training_summary
from omegaconf import DictConfig

from alliance_dropout import training
from alliance_dropout.cli import in_sweep, run_entry
from alliance_dropout.config import REPO_ROOT, register_configs, to_object

register_configs()


@hydra.main(config_path=str(REPO_ROOT / "conf"), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    return run_entry(lambda: print_training_summary(training.run(in_sweep(to_object(cfg)))))


if __name__ == "__main__":
    main()
