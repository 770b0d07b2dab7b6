"""Landmark vs hazard framing, LightGBM vs logistic, judged against the uncensored truth.

    python scripts/compare_framings.py [--clients 6000] [--out docs/framing_comparison.md]

Simulates one clinic of twice the training size with the built-in generator, every episode
also run to its end (the simulator's truth file). Half of its clients, as the clinic's export
has them (censored at the export date), train every combination; the other half (same
therapists, other clients) are the test clients, judged against how their episodes really
ended. Two test sets, as the questions a clinic asks:
- caseloads cut at each landmark session s: every test client with a row at s, its history up
  to s only, against how the episode really ended (eventual risk) and whether it ended in
  dropout within the next h sessions (this one included);
- the test clients still ongoing at the export date, as of their latest row (the caseload a
  clinic scores), against how they really ended.
Metrics per landmark with client-bootstrap 95% CIs; writes a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout.config import REPO_ROOT, register_configs, to_object
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.modeling import metrics as m
from alliance_dropout.modeling.model_card import markdown_table
from alliance_dropout.simulate import simulate
from alliance_dropout.training import fit_models, prepare_data

LANDMARKS = (1, 2, 3, 5, 8, 12)
HORIZONS = (1, 4)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return to_object(hydra_compose(config_name="train", overrides=overrides))


def cut_caseload(sessions: pd.DataFrame, s: int) -> pd.DataFrame:
    """Clients with a row at session s, their rows up to s."""
    has = sessions.loc[sessions[c.SESSION_NUMBER] == s, c.CLIENT_ID]
    return sessions[sessions[c.CLIENT_ID].isin(has) & (sessions[c.SESSION_NUMBER] <= s)]


def score(model, sessions: pd.DataFrame) -> pd.DataFrame:
    X = model.landmark_frame(sessions, None)
    out = X[[c.CLIENT_ID, "landmark_session"]].copy()
    out["risk"] = model.predict_proba(X)
    if model.has_horizons:
        parts = model.predict_horizons(X, list(HORIZONS))
        for h, p in zip(HORIZONS, parts[1:], strict=True):
            out[f"within_{h}"] = p
    return out


def metrics_row(y: np.ndarray, p: np.ndarray, groups: np.ndarray, seed: int) -> dict[str, str]:
    codes = pd.factorize(groups)[0]
    w = m.client_bootstrap_weights(codes, 200, seed)
    fns = {k: m.CORE_METRICS[k] for k in ("roc_auc", "calibration_slope", "calibration_intercept")}
    table = m.bootstrap_table(y, {"s": p}, {"s": fns}, w, 0.95)
    row = {
        "n": str(len(y)),
        "events": str(int(y.sum())),
        "mean risk": f"{p.mean():.3f}",
        "observed": f"{y.mean():.3f}",
        "CITL": f"{p.mean() - y.mean():+.3f}",
    }
    for r in table.itertuples():
        row[r.metric] = f"{r.value:.3f} ({r.ci_low:.2f}-{r.ci_high:.2f})"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=6000)
    parser.add_argument("--test-clients", type=int, default=6000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--combos", default="landmark:lightgbm,landmark:logreg,hazard:lightgbm,hazard:logreg"
    )
    args = parser.parse_args()

    from alliance_dropout import io

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n = args.clients + args.test_clients
        clinic = simulate(
            dataclasses.replace(
                SimulateConfig(), n_clients=n, n_therapists=max(10, round(150 * n / 6000))
            ),
            truth=True,
        )
        assert clinic.truth is not None
        ids = clinic.outcomes[c.CLIENT_ID].to_numpy()
        test_ids = set(np.random.default_rng(1).permutation(ids)[: args.test_clients])
        for name in ("sessions", "outcomes", "clients"):
            table = getattr(clinic, name)
            io.write_table(table[~table[c.CLIENT_ID].isin(test_ids)], root / f"{name}.csv")
        truth = clinic.truth.set_index(c.CLIENT_ID)
        is_test = clinic.sessions[c.CLIENT_ID].isin(test_ids)
        other_sessions = clinic.sessions[is_test].merge(clinic.clients, on=c.CLIENT_ID)
        other_outcomes = clinic.outcomes[clinic.outcomes[c.CLIENT_ID].isin(test_ids)]
        for combo in args.combos.split(","):
            framing, kind = combo.split(":")
            cfg = compose(
                [
                    f"model={kind}",
                    f"model.framing={framing}",
                    f"data.sessions={root / 'sessions.csv'}",
                    f"data.outcomes={root / 'outcomes.csv'}",
                    f"data.clients={root / 'clients.csv'}",
                    "data.client_features=[employment_status,referral_route]",
                    "evaluation.comparators=[]",
                    f"output_dir={root / combo.replace(':', '-')}",
                ]
            )
            started = time.perf_counter()
            data, settings = prepare_data(cfg)
            fitted = fit_models(cfg, data, settings)
            seconds = time.perf_counter() - started
            model = fitted.main
            for s in LANDMARKS:
                scored = score(model, cut_caseload(other_sessions, s))
                t = truth.loc[scored[c.CLIENT_ID]]
                y = (t[c.STATUS] == c.DROPOUT).to_numpy(int)
                base = {
                    "model": f"{kind} {framing}",
                    "as of": f"session {s}",
                    "fit s": f"{seconds:.0f}",
                }
                rows.append(
                    {
                        **base,
                        "target": "eventual",
                        **metrics_row(
                            y, scored["risk"].to_numpy(), scored[c.CLIENT_ID].to_numpy(), s
                        ),
                    }
                )
                for h in HORIZONS:
                    if f"within_{h}" not in scored:
                        continue
                    yh = (y == 1) & (t["last_session"].to_numpy() <= s + h - 1)
                    rows.append(
                        {
                            **base,
                            "target": f"within {h}",
                            **metrics_row(
                                yh.astype(int),
                                scored[f"within_{h}"].to_numpy(),
                                scored[c.CLIENT_ID].to_numpy(),
                                s,
                            ),
                        }
                    )
            ongoing = other_outcomes.loc[other_outcomes[c.STATUS] == c.ONGOING, c.CLIENT_ID]
            scored = score(model, other_sessions[other_sessions[c.CLIENT_ID].isin(ongoing)])
            y = (truth.loc[scored[c.CLIENT_ID], c.STATUS] == c.DROPOUT).to_numpy(int)
            rows.append(
                {
                    "model": f"{kind} {framing}",
                    "as of": "latest (ongoing)",
                    "fit s": f"{seconds:.0f}",
                    "target": "eventual",
                    **metrics_row(y, scored["risk"].to_numpy(), scored[c.CLIENT_ID].to_numpy(), 0),
                }
            )
            print(pd.DataFrame(rows[-len(LANDMARKS) * 3 - 1 :]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    if args.out:
        head = (
            "# Landmark vs hazard framing, LightGBM vs logistic, against the truth\n\n"
            "Generated by `python scripts/compare_framings.py --out docs/framing_comparison.md` "
            f"({args.clients} training and {args.test_clients} test episodes of one simulated "
            "clinic; see the script's docstring). Each test client is judged against how its "
            "episode really ended, run past the export date by the simulator. `eventual`: the "
            "episode ends in dropout; `within h`: it ends in dropout within the next h sessions, "
            "this one included (hazard models only). CITL: mean risk minus observed rate "
            "(calibration-in-the-large). 95% CIs by client bootstrap (200 replicates). "
            "`fit s`: seconds to fit on this machine, which other jobs shared.\n\n"
        )
        args.out.write_text(head + markdown_table(table) + "\n")


if __name__ == "__main__":
    main()
