"""Score a caseload: a ranked, explained risk list plus an HTML report for clinic analysts.

    python pipelines/score.py data.sessions=PATH output=PATH.csv|.parquet
        [data.outcomes=PATH] [data.clients=PATH] [tracking.uri=URI] [model_uri=models:/...]
        [data=example_clinic]   # an export with its own column names, mapped in conf/data/
Writes the list, `<output>.html` (the report), `<output>.quarantine.csv` and
`<output>.validation.json` beside it, as one set: nothing changes if the run fails. An output
that is an input file, a folder, or in a folder that cannot be written stops the run before
any work (one line, exit 2).

    python pipelines/score.py engine=spark data.sessions=PATH output=DIR [engine.master=...]
Scores on Apache Spark (PATH: a Parquet file, a folder of Parquet files or a CSV): the list as
the Parquet folder DIR, `DIR.quarantine/`, `DIR.validation.json` and `DIR.html` (or
`DIR.reports/`, one page per therapist, with engine.report_scope=therapist).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from alliance_dropout.cli import echo, run_entry
from alliance_dropout.config import REPO_ROOT, ScoreRunConfig, register_configs, to_object
from alliance_dropout.config.scoring import EngineName
from alliance_dropout.scoring import ScoringSummary, run_scoring

register_configs()


def run_engine(run_cfg: ScoreRunConfig) -> ScoringSummary:
    if run_cfg.engine.name is EngineName.spark:
        # pyspark is an optional extra (.[spark]): imported only when Spark is asked for
        from alliance_dropout.spark_scoring import run_spark_scoring

        return run_spark_scoring(run_cfg)
    return run_scoring(run_cfg)


def score(cfg: DictConfig) -> None:
    summary = run_engine(to_object(cfg))
    echo("risk list: %s", summary.output)
    if summary.report:
        echo("report:    %s", summary.report)
    echo(summary.line())


@hydra.main(config_path=str(REPO_ROOT / "conf"), config_name="score", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_entry(lambda: score(cfg))


if __name__ == "__main__":
    main()
