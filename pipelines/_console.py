"""What the entry points print: the training run's headline (aggregates only, never client data)."""

from __future__ import annotations

from alliance_dropout import tracking as trk
from alliance_dropout.cli import echo
from alliance_dropout.training import RunSummary


def print_training_summary(summary: RunSummary) -> float:
    """The run's headline metrics with CIs and the registry decision; returns the test AUC
    (landmark-averaged: what a sweeper optimises)."""
    m = summary.metrics

    def fmt(score: str, metric: str) -> str:
        key = f"test_{score}_{metric}"
        if key not in m:
            return "n/a"
        return f"{m[key]:.3f} ({m[key + '_ci_low']:.3f}-{m[key + '_ci_high']:.3f})"

    echo("")
    echo("MLflow run %s  (store: %s)", summary.run_id, summary.tracking_uri)
    echo("  test ROC AUC per landmark, averaged (pooled over all landmark rows beside it):")
    for name in ("model", "logreg", "lightgbm", "rule_latest_alliance", "rule_pcoms_alert"):
        if f"test_{name}_roc_auc" in m:
            echo(
                "    %-24s %s   pooled %s",
                name + ":",
                fmt(name, "roc_auc_landmark_mean"),
                fmt(name, "roc_auc"),
            )
    echo(
        "  calibration slope / intercept:       %s / %s",
        fmt("model", "calibration_slope"),
        fmt("model", "calibration_intercept"),
    )
    echo("  Brier score:                         %s", fmt("model", "brier"))
    if summary.promotion is not None:
        p = summary.promotion
        echo(
            "  registry: version %s %s — %s",
            p.version,
            "promoted to @champion" if p.promoted else "not promoted",
            p.reason,
        )
    echo("outputs: %s", summary.output_dir)
    # a link to the training runs: the MLflow UI opens an experiment's GenAI view otherwise
    link = trk.training_runs_link(summary.tracking_uri, summary.run_id)
    if link is not None and link.startswith(trk.LOCAL_UI):
        echo("open the MLflow UI with: make ui   (then %s)", link)
    elif link is not None:
        echo("the training runs in the MLflow UI: %s", link)
    return m.get("test_model_roc_auc_landmark_mean", m.get("test_model_roc_auc", float("nan")))
