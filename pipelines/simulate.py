"""Generate the built-in synthetic data set: ``python pipelines/simulate.py [simulate.seed=7 ...]``.

Writes sessions.csv, outcomes.csv and clients.csv into ``output_dir`` (default
``data/synthetic/``) and prints the headline realism figures (aggregates only).
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from alliance_dropout import config, io
from alliance_dropout.cli import echo, run_entry
from alliance_dropout.simulate import format_headline_figures, headline_figures, simulate

config.register_configs()


def run(cfg: DictConfig) -> dict[str, object]:
    """Generate, write the three tables atomically, print the headline figures."""
    run_cfg = config.to_object(cfg)
    started = time.perf_counter()
    data = simulate(run_cfg.simulate)
    seconds = time.perf_counter() - started
    output_dir = Path(run_cfg.output_dir)
    with io.staged_output_dir(output_dir) as staging:
        io.write_table(data.sessions, staging / "sessions.csv")
        io.write_table(data.outcomes, staging / "outcomes.csv")
        io.write_table(data.clients, staging / "clients.csv")
    echo(
        "wrote sessions.csv, outcomes.csv, clients.csv to %s (generated in %.1f s)",
        output_dir,
        seconds,
    )
    figures = headline_figures(data, seed=run_cfg.simulate.seed)
    echo("headline figures:\n%s", format_headline_figures(figures))
    return figures


@hydra.main(version_base="1.3", config_path=str(config.REPO_ROOT / "conf"), config_name="simulate")
def main(cfg: DictConfig) -> None:
    run_entry(lambda: run(cfg))


if __name__ == "__main__":
    main()
