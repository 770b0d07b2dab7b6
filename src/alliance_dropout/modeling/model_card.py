"""A model card (Mitchell et al. 2019) generated for every training run."""

from __future__ import annotations

from typing import Any

import pandas as pd

from alliance_dropout.modeling.evaluation import EvaluationResult

METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "brier": "Brier score",
    "log_loss": "Log loss",
    "calibration_slope": "Calibration slope",
    "calibration_intercept": "Calibration intercept",
    "ece": "Expected calibration error",
}


def _fmt(v: float) -> str:
    return "n/a" if pd.isna(v) else f"{v:.3f}"


def markdown_table(df: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        return _fmt(v) if isinstance(v, float) else str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _ci(row: Any) -> str:
    return f"{_fmt(row.value)} ({_fmt(row.ci_low)} to {_fmt(row.ci_high)})"


def _per_landmark(result: EvaluationResult) -> str:
    bl = result.by_landmark
    rows = bl[(bl.score == result.main) | bl.score.str.startswith(f"{result.main} within ")]
    out = ["| risk | landmark | clients | events | ROC AUC | calibration slope | intercept |"]
    out.append("|---|---|---|---|---|---|---|")
    for r in rows.itertuples():
        slope = getattr(r, "calibration_slope", float("nan"))
        out.append(
            f"| {r.score} | {r.landmark} | {r.n} | {r.events} | {_fmt(r.roc_auc)} "
            f"({_fmt(r.ci_low)} to {_fmt(r.ci_high)}) | {_fmt(slope)} | "
            f"{_fmt(getattr(r, 'calibration_intercept', float('nan')))} |"
        )
    return "\n".join(out)


def render_model_card(
    result: EvaluationResult,
    *,
    model_kind: str,
    label_definition: str,
    data_summary: dict[str, Any],
    run_id: str,
    git_commit: str,
    promotion: str | None,
    ci_level: float,
    risk_definition: str = "",
) -> str:
    pct = round(100 * ci_level)
    main = result.overall[result.overall.score == result.main]
    lines = [
        f"# Model card: psychotherapy dropout risk ({model_kind})",
        "",
        f"Run `{run_id}`, code `{git_commit}`.",
        "",
        "## Intended use",
        "Ranks clients in ongoing psychotherapy by their risk of ending treatment unilaterally, ",
        "as of their latest session, from session-by-session alliance (WAI-SR), symptom and ",
        "attendance data, so that a clinician can review the highest-risk clients and act in the ",
        "next session (repair a rupture, revisit goals, follow up a missed appointment). It is a ",
        "prompt for clinical attention, to be read together with the listed reasons.",
        "",
        *(["## What the risk means", risk_definition, ""] if risk_definition else []),
        "## Must not be used for",
        "- deciding who receives, continues or is discharged from treatment, or any eligibility, ",
        "  funding, insurance or employment decision;",
        "- judging or ranking therapists (therapist context is a model input, not an appraisal);",
        "- populations, settings or instruments unlike the training data without re-validation;",
        "- replacing clinical judgement or routine outcome monitoring conversations.",
        "",
        "## Data",
        f"- Label: {label_definition}.",
        *[f"- {k.replace('_', ' ')}: {v}" for k, v in data_summary.items()],
        f"- Test set: {result.n_clients} clients, {result.n_rows} client-landmark rows, "
        f"dropout prevalence {result.prevalence:.3f}; no client (or, with group_by=therapist, no "
        "therapist) appears in both training and test data.",
        "",
        f"## Test-set performance ({pct}% CI, client-level bootstrap)",
        "| metric | estimate |",
        "|---|---|",
        *[f"| {METRIC_LABELS.get(r.metric, r.metric)} | {_ci(r)} |" for r in main.itertuples()],
        "",
        "### Compared on the same test rows (paired differences of ROC AUC)",
        "| comparison | difference in ROC AUC |",
        "|---|---|",
    ]
    diffs = result.overall[
        result.overall.score.str.startswith(f"{result.main} - ")
        & (result.overall.metric == "roc_auc")
    ]
    lines += [f"| {r.score} | {_ci(r)} |" for r in diffs.itertuples()]
    others = result.overall[
        (result.overall.metric == "roc_auc") & ~result.overall.score.str.contains(" - ")
    ]
    lines += ["", "| score | ROC AUC |", "|---|---|"]
    lines += [f"| {r.score} | {_ci(r)} |" for r in others.itertuples()]
    lines += ["", "### Per landmark session (eventual risk, and each horizon)", ""]
    lines.append(_per_landmark(result))
    lines += ["", "## Calibration"]
    slope = result.value(result.main, "calibration_slope")
    intercept = result.value(result.main, "calibration_intercept")
    lines += [
        f"Calibration slope {_fmt(slope)} (ideal 1) and intercept {_fmt(intercept)} (ideal 0) on ",
        "the test set; probabilities were calibrated on held-out folds of the training data. ",
        "See `plots/reliability.png`.",
        "",
        "## At an alert budget",
        "| flagged share | sensitivity | PPV | number needed to review |",
        "|---|---|---|---|",
    ]
    ab = result.alert_budgets[result.alert_budgets.score == result.main]
    lines += [
        f"| {r.budget:.0%} | {_fmt(r.sensitivity)} | {_fmt(r.ppv)} | {_fmt(r.nnr)} |"
        for r in ab.itertuples()
    ]
    lines += ["", "## Subgroups", ""]
    if len(result.subgroups):
        cols = ["attribute", "level", "n_clients", "prevalence", "mean_risk"]
        cols += [c for c in ("roc_auc", "brier", "calibration_intercept") if c in result.subgroups]
        lines.append(markdown_table(result.subgroups[cols]))
        lines.append("")
        lines.append(
            "Subgroups smaller than the configured minimum report counts only. Audit attributes "
            "are never model inputs."
        )
    else:
        lines.append("No audit attributes configured.")
    lines += [
        "",
        "## Limitations",
        "- Trained on the data named above; performance on another clinic's population must be ",
        "  checked on its own labeled data before use.",
        "- Dropout definitions differ between services; this model predicts the label above only.",
        "- Published dropout models reach ROC AUC of about 0.6 to 0.8; higher figures on new data ",
        "  should prompt a check for leakage before they are trusted.",
        "- Risks are calibrated to the training population's dropout rate; a service with a very ",
        "  different rate needs recalibration.",
        "- Missing questionnaires lower the information available; reasons are model ",
        "  contributions (associations), not causes.",
    ]
    lines += [
        "",
        "## Privacy",
        "Nothing MLflow holds for this run carries client-level data: no client id, raw row or ",
        "per-client value in params, tags, metrics, artifacts, dataset records or the model. ",
        "The input example is synthetic; plots and tables are aggregates; the learned ",
        "transformers inside the model keep aggregates only (per-therapist counts and sums, ",
        "shrinkage constants, regression coefficients). Therapist ids appear in the therapist ",
        "context table, which a reader of the registry can see.",
        "",
        "## Loading this model",
        "The model file is a pickle, and loading a pickle can run code. Its SHA-256 was recorded ",
        "in the registry when it was logged; the project's loaders refuse a file that does not ",
        "match it. Load models only from your own registry.",
        "",
        "## Promotion gate",
        "A registered model becomes @champion only if, on clients neither model saw in ",
        "training (the champion's later-starting clients, or the champion's recipe refitted on ",
        "this training split), the lower bound of the paired bootstrap 95% interval of its ",
        "ROC AUC gain over the champion and over the best reference rule is above the margin, ",
        "the test set holds enough dropouts, and its risks are calibrated on it. A tie never ",
        "promotes.",
    ]
    if promotion:
        lines += ["", "## Registry decision", promotion]
    return "\n".join(lines) + "\n"
