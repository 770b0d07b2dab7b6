"""Validate a clinic export against the data contract.

    python pipelines/validate.py data.sessions=PATH data.outcomes=PATH [data.clients=PATH] \
        output_dir=DIR

Writes the validated tables, quarantine.csv and the validation report into DIR, as one set.
Exit code 2 (and nothing new in DIR) on an output that is an input file or cannot be written
(checked before any work), an unreadable file, a missing column or too many quarantined clients.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from alliance_dropout.cli import echo, run_entry
from alliance_dropout.config import REPO_ROOT, ValidateRunConfig, register_configs, to_object
from alliance_dropout.progress import timed
from alliance_dropout.validation import run_validation, summary_lines

register_configs()
log = logging.getLogger("alliance_dropout.validate")


def run(cfg: DictConfig) -> None:
    """Validate the configured tables, print an aggregate summary, end with a timed line."""
    run_cfg: ValidateRunConfig = to_object(cfg)
    output_dir = Path(run_cfg.output_dir)
    with timed(log, "validation") as step:
        data = run_validation(run_cfg.data, output_dir, require_outcomes=True)
        for line in summary_lines(data.report):
            echo(line)
        q = data.report["quarantine"]
        step["text"] = (
            f"{q['session_clients']} clients, {q['session_clients_quarantined']} quarantined; "
            f"wrote {output_dir}"
        )


@hydra.main(version_base="1.3", config_path=str(REPO_ROOT / "conf"), config_name="validate")
def main(cfg: DictConfig) -> None:
    run_entry(lambda: run(cfg))


if __name__ == "__main__":
    main()
