"""Evaluation plots as matplotlib figures (the tracking module saves and logs them as PNG)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: never open a window

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from alliance_dropout.modeling.evaluation import EvaluationResult

PALETTE = ["#1f5f99", "#d1495b", "#2e933c", "#edae49", "#7b4f9d", "#666666"]


def _label(result: EvaluationResult, score: str) -> str:
    auc = result.value(score, "roc_auc")
    return f"{score} (AUC {auc:.3f})"


def roc_pr_curves(result: EvaluationResult, y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 5))
    for i, (name, p) in enumerate(scores.items()):
        color = PALETTE[i % len(PALETTE)]
        style = "--" if name.startswith("rule_") else "-"
        fpr, tpr, _ = roc_curve(y, p)
        ax1.plot(fpr, tpr, style, color=color, label=_label(result, name))
        prec, rec, _ = precision_recall_curve(y, p)
        ap = result.value(name, "pr_auc")
        ax2.plot(rec, prec, style, color=color, label=f"{name} (AP {ap:.3f})")
    ax1.plot([0, 1], [0, 1], ":", color="grey")
    ax1.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC, test set")
    ax2.axhline(
        result.prevalence, ls=":", color="grey", label=f"prevalence {result.prevalence:.2f}"
    )
    ax2.set(xlabel="Recall (sensitivity)", ylabel="Precision (PPV)", title="Precision-recall")
    for ax in (ax1, ax2):
        ax.legend(fontsize=8, loc="lower right" if ax is ax1 else "upper right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def reliability_diagram(result: EvaluationResult, scores: dict[str, np.ndarray]) -> Figure:
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(6, 7), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    for i, (name, p) in enumerate(scores.items()):
        color = PALETTE[i % len(PALETTE)]
        cal = result.calibration_curve[result.calibration_curve.score == name]
        slope = result.value(name, "calibration_slope")
        ax.plot(
            cal.mean_predicted, cal.observed, "o-", color=color, label=f"{name} (slope {slope:.2f})"
        )
        hist.hist(p, bins=40, range=(0, 1), color=color, alpha=0.5)
    top = max(0.6, float(result.calibration_curve[["mean_predicted", "observed"]].max().max()))
    ax.set(
        xlim=(0, top),
        ylim=(0, top),
        ylabel="Observed dropout rate",
        title="Reliability diagram (test set, quantile bins)",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    hist.set(xlabel="Predicted risk", ylabel="Rows")
    fig.tight_layout()
    return fig


def auc_by_landmark(result: EvaluationResult) -> Figure:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    eventual = result.by_landmark[~result.by_landmark.score.str.contains(" within ")]
    for i, (name, grp) in enumerate(eventual.groupby("score", sort=False)):
        color = PALETTE[i % len(PALETTE)]
        ax.plot(grp.landmark, grp.roc_auc, "o-", color=color, label=name)
        if name == result.main:
            ax.fill_between(grp.landmark, grp.ci_low, grp.ci_high, color=color, alpha=0.15)
    ax.axhline(0.5, ls=":", color="grey")
    ax.set(xlabel="Landmark (session number)", ylabel="ROC AUC", title="Discrimination by landmark")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def decision_curve(result: EvaluationResult) -> Figure:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    dc = result.decision_curve
    models = [col for col in dc.columns if col not in ("threshold", "treat_all", "treat_none")]
    for i, name in enumerate(models):
        ax.plot(dc.threshold, dc[name], color=PALETTE[i % len(PALETTE)], label=name)
    ax.plot(dc.threshold, dc.treat_all, "--", color="grey", label="review everyone")
    ax.axhline(0, color="black", lw=0.8, label="review no one")
    low = min(-0.02, float(dc[models].min().min()) if models else 0.0)
    ax.set(
        ylim=(low, max(0.05, result.prevalence * 1.1)),
        xlabel="Risk threshold",
        ylabel="Net benefit",
        title="Decision curve (test set)",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def feature_importance(contrib: pd.DataFrame, top: int = 20) -> Figure:
    mean_abs = contrib.abs().mean().sort_values(ascending=True).tail(top)
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(mean_abs) + 1.5))
    ax.barh(mean_abs.index, mean_abs.to_numpy(), color=PALETTE[0])
    ax.set(xlabel="Mean |contribution| to log-odds of dropout", title="Feature importance")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def contribution_summary(
    contrib: pd.DataFrame, values: pd.DataFrame, top: int = 15, seed: int = 0
) -> Figure:
    """SHAP-style summary: each dot a row, x its contribution, colour its feature value."""
    order = contrib.abs().mean().sort_values(ascending=False).head(top).index[::-1]
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(contrib), size=min(2000, len(contrib)), replace=False)
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(order) + 1.5))
    for i, name in enumerate(order):
        x = contrib[name].to_numpy()[sample]
        v = pd.to_numeric(values[name], errors="coerce").to_numpy(dtype=float)[sample]
        finite = np.isfinite(v)
        lo, hi = np.nanpercentile(v, [5, 95]) if finite.any() else (0.0, 1.0)
        colour = np.clip((v - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        jitter = rng.uniform(-0.3, 0.3, size=len(x))
        ax.scatter(x[~finite], i + jitter[~finite], s=4, color="#bbbbbb")
        sc = ax.scatter(
            x[finite], i + jitter[finite], s=4, c=colour[finite], cmap="coolwarm", vmin=0, vmax=1
        )
    ax.set_yticks(range(len(order)), order)
    ax.axvline(0, color="black", lw=0.8)
    ax.set(
        xlabel="Contribution to log-odds of dropout (LightGBM pred_contrib / linear terms)",
        title="Per-row contributions (grey = missing value)",
    )
    if len(order):
        cb = fig.colorbar(sc, ax=ax, fraction=0.03)
        cb.set_label("feature value (low → high)")
    fig.tight_layout()
    return fig


def subgroup_metrics(result: EvaluationResult) -> Figure:
    sg = result.subgroups
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(sg), 1) + 1.5))
    if "roc_auc" in sg and sg["roc_auc"].notna().any():
        sg = sg.dropna(subset=["roc_auc"])
        labels = [
            f"{a} = {lv} (n={n})"
            for a, lv, n in zip(sg.attribute, sg.level, sg.n_clients, strict=True)
        ]
        y = np.arange(len(sg))
        err = np.vstack([sg.roc_auc - sg.roc_auc_ci_low, sg.roc_auc_ci_high - sg.roc_auc])
        ax.errorbar(sg.roc_auc, y, xerr=err, fmt="o", color=PALETTE[0], capsize=3)
        ax.axvline(result.value(result.main, "roc_auc"), ls="--", color="grey", label="overall")
        ax.set_yticks(y, labels)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no audit attributes configured", ha="center", va="center")
    ax.set(xlabel="ROC AUC (95% CI)", title="Performance by subgroup (test set)")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig
