"""Generate the built-in synthetic data set: ``python pipelines/simulate.py [simulate.seed=7 ...]``.

Writes sessions.csv, outcomes.csv and clients.csv into ``output_dir`` (default
``data/synthetic/``) and prints the headline realism figures (aggregates only).
"""

from __future__ import annotations

import time

import hydra
from omegaconf import DictConfig

from alliance_dropout import config, simulate
from alliance_dropout.cli import echo, run_entry

config.register_configs()


def run(cfg: DictConfig) -> dict[str, object]:
    """Run the simulate stage, print where it wrote and the headline figures."""
    run_cfg = config.to_object(cfg)
    started = time.perf_counter()
    data = simulate.run(run_cfg)
    echo(
        "wrote sessions.csv, outcomes.csv, clients.csv to %s (in %.1f s)",
        run_cfg.output_dir,
        time.perf_counter() - started,
    )
    figures = simulate.headline_figures(data, seed=run_cfg.simulate.seed)
    echo("headline figures:\n%s", simulate.format_headline_figures(figures))
    return figures


@hydra.main(version_base="1.3", config_path=str(config.REPO_ROOT / "conf"), config_name="simulate")
def main(cfg: DictConfig) -> None:
    run_entry(lambda: run(cfg))


if __name__ == "__main__":
    main()
