"""The whole pipeline on one data set: validate, train, evaluate, track and register.

    python pipelines/run.py                                   # built-in synthetic data
    python pipelines/run.py data.sessions=S data.outcomes=O data.clients=C tracking.uri=URI
The model is registered as `alliance-dropout`; it becomes @champion only if it passes the
promotion gate (see the README's "How it works").
"""

from __future__ import annotations

import hydra
from _console import print_training_summary
from omegaconf import DictConfig

from alliance_dropout import training
from alliance_dropout.cli import in_sweep, run_entry
from alliance_dropout.config import REPO_ROOT, register_configs, to_object

register_configs()


@hydra.main(config_path=str(REPO_ROOT / "conf"), config_name="run", version_base="1.3")
def main(cfg: DictConfig) -> float:
    return run_entry(lambda: print_training_summary(training.run(in_sweep(to_object(cfg)))))


if __name__ == "__main__":
    main()
