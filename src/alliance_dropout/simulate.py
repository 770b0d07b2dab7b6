"""The built-in synthetic data set: session-by-session alliance, symptoms and dropout.

``simulate(cfg)`` is a pure function of a typed config and a seed. It simulates treatment
episodes one appointment at a time, vectorised over clients (the only loop runs over the
appointment index), and returns the three contract tables. ``headline_figures`` measures the
realism targets from those tables alone. Every number below cites its research source;
``docs/simulation.md`` tells the generative story.

Over 500 lines on purpose: one generative story (clients, appointments, tables) and the
realism figures measured on its output belong together; splitting them would scatter the
citations that tie each number to its source.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance_dropout import contract as c
from alliance_dropout import io
from alliance_dropout.config.runs import SimulateRunConfig
from alliance_dropout.config.simulate import SimulateConfig

# Client-rated alliance is recorded at WAI-SR item resolution: a subscale is the mean of 4
# items (steps of 1/4), the total the mean of 12 (steps of 1/12) (Hatcher & Gillaspy 2006).
SUBSCALE_STEP = 1 / 4
TOTAL_STEP = 1 / 12
GENDERS = ("female", "male", "non_binary")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
EMPLOYMENT = ("employed", "unemployed", "student", "retired")
REFERRAL = ("self", "gp", "other")
# Completed, dropout and ongoing as codes inside the simulation loop.
_ACTIVE, _COMPLETED, _DROPOUT = 0, 1, 2


@dataclass
class SyntheticData:
    """The three contract tables (see ``shared/data-contract.md``)."""

    sessions: pd.DataFrame
    outcomes: pd.DataFrame
    clients: pd.DataFrame
    # how every episode really ended, run to its end past the export's cut-off: client_id,
    # status (completed or dropout) and last_session (the session number it ended at). For
    # tests and evaluation only: never an input of the pipeline.
    truth: pd.DataFrame | None = None


# --- generation ----------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _to_wai(logit: np.ndarray) -> np.ndarray:
    """Latent logit -> WAI-SR item mean on 1-5 (compresses near the ceiling, as real ratings do)."""
    return 1.0 + 4.0 * _sigmoid(logit)


def _round_to(x: np.ndarray, step: float) -> np.ndarray:
    return np.round(x / step) * step


@dataclass
class _Clients:
    """Per-client draws made before the first appointment (arrays of length n)."""

    therapist: np.ndarray
    gender: np.ndarray
    age_band: np.ndarray
    employment: np.ndarray
    referral: np.ndarray
    intake_day: np.ndarray
    planned: np.ndarray
    alliance_mu: np.ndarray
    alliance_slope: np.ndarray
    subscale_dev: np.ndarray  # (n, 3)
    therapist_view: np.ndarray  # client-specific offset of the therapist's rating
    rupture_at: np.ndarray  # attended-session index of the rupture, -1 = none
    rupture_depth: np.ndarray
    repaired: np.ndarray
    phq_baseline: np.ndarray
    phq_change: np.ndarray
    phq_rate: np.ndarray
    gain_at: np.ndarray  # attended-session index of a sudden gain, -1 = none
    gain_size: np.ndarray
    risk_trait: np.ndarray  # time-constant part of the dropout logit


def _draw_clients(cfg: SimulateConfig, rng: np.random.Generator) -> _Clients:
    n, h = cfg.n_clients, cfg.hazard
    caseload = rng.dirichlet(np.full(cfg.n_therapists, cfg.caseload_concentration))
    # every therapist sees at least one client; the rest follow the caseload shares
    therapist = np.concatenate(
        [
            np.arange(cfg.n_therapists),
            rng.choice(cfg.n_therapists, n - cfg.n_therapists, p=caseload),
        ]
    )
    therapist = rng.permutation(therapist)
    therapist_alliance = rng.normal(0.0, cfg.therapist_alliance_sd, cfg.n_therapists)
    therapist_rater = rng.normal(0.0, cfg.therapist_rater_sd, cfg.n_therapists)
    therapist_dropout = rng.normal(0.0, h.therapist_sd, cfg.n_therapists)

    # IAPT-like demographics (NHS Digital annual reports: ~65% women, most clients 18-44)
    gender = rng.choice(len(GENDERS), n, p=[0.65, 0.33, 0.02])
    age_band = rng.choice(len(AGE_BANDS), n, p=[0.17, 0.27, 0.21, 0.17, 0.12, 0.06])
    employment = rng.choice(len(EMPLOYMENT), n, p=[0.6, 0.2, 0.1, 0.1])
    referral = rng.choice(len(REFERRAL), n, p=[0.45, 0.45, 0.10])

    span = (date.fromisoformat(cfg.cutoff_date) - date.fromisoformat(cfg.first_intake)).days
    planned = np.exp(
        rng.normal(np.log(cfg.planned_sessions_median), cfg.planned_sessions_spread, n)
    )
    planned = np.clip(np.round(planned), cfg.planned_sessions_min, cfg.planned_sessions_max)

    has_rupture = rng.random(n) < cfg.rupture_share
    # ruptures happen once the work has begun: from the 2nd attended session to 2 before the end
    latest = np.maximum(planned - 2, 2)
    rupture_at = np.where(has_rupture, rng.integers(1, latest), -1)

    phq_class = rng.random(n)
    early = phq_class < cfg.early_responder_share
    non = (phq_class >= cfg.early_responder_share) & (
        phq_class < cfg.early_responder_share + cfg.non_responder_share
    )
    worse = (phq_class >= 1.0 - cfg.deteriorator_share) & ~early & ~non
    phq_baseline = rng.normal(cfg.phq9_baseline_mean, cfg.phq9_baseline_sd, n)
    # expected change by the end of treatment, as a share of baseline, and its speed per session
    phq_change = np.select(
        [early, non, worse],
        [
            -rng.uniform(0.45, 0.65, n) * phq_baseline,
            -rng.uniform(0.0, 0.15, n) * phq_baseline,
            rng.uniform(3.0, 7.0, n),
        ],
        -rng.uniform(0.35, 0.6, n) * phq_baseline,
    )
    phq_rate = np.select(
        [early, worse], [rng.uniform(0.5, 0.9, n), 0.15], rng.uniform(0.08, 0.2, n)
    )
    has_gain = rng.random(n) < cfg.sudden_gain_share
    gain_at = np.where(has_gain, rng.integers(2, 10, n), -1)

    risk_trait = (
        rng.normal(0.0, h.client_sd, n)
        + therapist_dropout[therapist]
        + h.age_18_24 * (age_band == 0)
        + h.unemployed * (employment == 1)
    )
    return _Clients(
        therapist=therapist,
        gender=gender,
        age_band=age_band,
        employment=employment,
        referral=referral,
        intake_day=rng.integers(0, span + 1, n),
        planned=planned.astype(int),
        alliance_mu=rng.normal(cfg.alliance_logit_mean, cfg.alliance_logit_sd, n)
        + therapist_alliance[therapist],
        alliance_slope=rng.normal(cfg.alliance_slope_mean, cfg.alliance_slope_sd, n),
        subscale_dev=rng.normal(0.0, cfg.subscale_client_sd, (n, 3)),
        therapist_view=rng.normal(0.0, cfg.therapist_rating_client_sd, n)
        + therapist_rater[therapist],
        rupture_at=rupture_at,
        rupture_depth=rng.uniform(cfg.rupture_depth_min, cfg.rupture_depth_max, n),
        repaired=rng.random(n) < cfg.repair_share,
        phq_baseline=phq_baseline,
        phq_change=phq_change,
        phq_rate=phq_rate,
        gain_at=gain_at,
        gain_size=rng.uniform(6.0, 9.0, n),
        risk_trait=risk_trait,
    )


def _next_gap_days(rng: np.random.Generator, n: int) -> np.ndarray:
    """Days to the next appointment: weekly, sometimes a fortnight, now and then a holiday gap."""
    u = rng.random(n)
    return np.select(
        [u < 0.05, u < 0.85, u < 0.96],
        [rng.integers(3, 6, n), 7, 14],
        rng.integers(21, 36, n),
    )


@dataclass
class _Appointments:
    """One (n, K) array per recorded field; ``recorded`` marks rows inside the export."""

    recorded: np.ndarray
    day: np.ndarray
    attendance: np.ndarray  # 0 attended, 1 cancelled, 2 no_show
    alliance_client: np.ndarray
    alliance_therapist: np.ndarray
    subscales: np.ndarray  # (n, K, 3)
    symptom: np.ndarray
    status: np.ndarray  # per client: _ACTIVE (= ongoing at cut-off), _COMPLETED, _DROPOUT


def _run_episodes(
    cfg: SimulateConfig, cl: _Clients, rng: np.random.Generator, censored: bool = True
) -> _Appointments:
    """Step every episode through its appointments; the loop runs over appointment index only.

    ``censored=False`` ignores the export's cut-off, so every episode runs to its end. Every
    random draw is made for every client at every step, so with the same generator state the
    uncensored run repeats the censored one exactly up to the cut-off.
    """
    n, h = cfg.n_clients, cfg.hazard
    n_appts = cfg.planned_sessions_max + cfg.max_extra_appointments
    cutoff_day = (date.fromisoformat(cfg.cutoff_date) - date.fromisoformat(cfg.first_intake)).days
    if not censored:
        cutoff_day = np.iinfo(np.int64).max
    nan = np.full((n, n_appts), np.nan)
    out = _Appointments(
        recorded=np.zeros((n, n_appts), bool),
        day=np.zeros((n, n_appts), np.int64),
        attendance=np.zeros((n, n_appts), np.int8),
        alliance_client=nan.copy(),
        alliance_therapist=nan.copy(),
        subscales=np.full((n, n_appts, 3), np.nan),
        symptom=nan.copy(),
        status=np.full(n, _ACTIVE, np.int8),
    )
    offsets = np.array([cfg.goal_offset, cfg.task_offset, cfg.bond_offset])

    active = np.ones(n, bool)
    day = cl.intake_day.copy()
    attended = np.zeros(n, int)
    missed_run = np.zeros(n, int)
    state = np.zeros(n)  # AR(1) alliance state around the client's own course
    rupture = np.zeros(n)  # current rupture offset (logit, <= 0)
    ruptured = np.zeros(n, bool)
    expected_prev = cl.phq_baseline.copy()
    phq = cl.phq_baseline.copy()
    phq_prev = cl.phq_baseline.copy()
    wai = _to_wai(cl.alliance_mu)
    wai_best = wai.copy()
    wai_t = _to_wai(cfg.therapist_rating_logit_mean + cl.therapist_view)
    risk = np.zeros(n)  # latest dropout logit, drives missed appointments

    for k in range(n_appts):
        # an appointment after the cut-off is not in the export: the episode stays ongoing
        active &= day <= cutoff_day
        if not active.any():
            break
        out.recorded[:, k] = active
        out.day[:, k] = day

        p_miss = _sigmoid(
            np.log(cfg.missed_base_share / (1 - cfg.missed_base_share))
            + cfg.missed_risk_loading * (risk - h.intercept)
            + 0.5 * (missed_run > 0)
        )
        # the first appointment (assessment / session 1) is always attended
        missed = active & (rng.random(n) < p_miss) & (k > 0)
        came = active & ~missed
        no_show = rng.random(n) < np.clip(cfg.no_show_share + 0.1 * (risk - h.intercept), 0, 1)
        out.attendance[:, k] = np.where(missed, np.where(no_show, 2, 1), 0)
        t = attended  # attended-session index before this session (0 = first)

        # --- alliance: own course + AR state + rupture; reciprocal link from symptoms -------
        improvement = np.clip(phq_prev - phq, -6, 6)
        new_state = (
            cfg.alliance_ar * state
            + cfg.symptoms_to_alliance * improvement
            + rng.normal(0.0, cfg.alliance_state_sd, n)
        )
        starts = came & (cl.rupture_at == t)
        decay = np.where(cl.repaired, cfg.repaired_decay, cfg.unrepaired_decay)
        new_rupture = np.where(starts, -cl.rupture_depth, rupture * np.where(ruptured, decay, 1))
        latent = cl.alliance_mu + cl.alliance_slope * t + new_state + new_rupture
        observed = latent + rng.normal(0.0, cfg.alliance_noise_sd, n)
        subs = _to_wai(
            observed[:, None]
            + offsets
            + cl.subscale_dev
            + rng.normal(0.0, cfg.subscale_noise_sd, (n, 3))
        )
        subs = np.clip(_round_to(subs, SUBSCALE_STEP), 1.0, 5.0)
        therapist_logit = (
            cfg.therapist_rating_logit_mean
            + cfg.therapist_rating_loading * (latent - cfg.alliance_logit_mean)
            + cl.therapist_view
            + rng.normal(0.0, cfg.therapist_rating_noise_sd, n)
        )

        # --- symptoms: class course + sudden gain + alliance above own level -> improvement ---
        expected = cl.phq_baseline + cl.phq_change * (1.0 - np.exp(-cl.phq_rate * t))
        expected = expected - cl.gain_size * ((cl.gain_at >= 0) & (t >= cl.gain_at))
        alliance_dev = state + rupture  # last session's alliance relative to own course
        new_phq = np.where(
            t == 0,
            cl.phq_baseline,
            phq
            + (expected - expected_prev)
            - cfg.alliance_to_symptoms * alliance_dev
            + rng.normal(0.0, cfg.phq9_state_sd, n),
        )
        new_phq = np.clip(new_phq, 0.0, 27.0)
        phq_obs = np.clip(np.round(new_phq + rng.normal(0.0, cfg.phq9_noise_sd, n)), 0, 27)

        # --- record the attended rows, with missing questionnaires --------------------------
        none = rng.random(n) < cfg.questionnaire_missing_share
        rec = came & ~none
        out.subscales[rec, k] = subs[rec]
        out.alliance_client[rec, k] = _round_to(subs[rec].mean(axis=1), TOTAL_STEP)
        rec_t = rec & (rng.random(n) >= cfg.therapist_rating_missing_share)
        out.alliance_therapist[rec_t, k] = np.clip(
            _round_to(_to_wai(therapist_logit[rec_t]), TOTAL_STEP), 1.0, 5.0
        )
        rec_p = rec & (rng.random(n) >= cfg.phq9_missing_share)
        out.symptom[rec_p, k] = phq_obs[rec_p]

        # --- carry the state forward for those who came ---------------------------------------
        state = np.where(came, new_state, state)
        rupture = np.where(came, new_rupture, rupture)
        ruptured |= starts
        phq_prev = np.where(came, phq, phq_prev)
        phq = np.where(came, new_phq, phq)
        expected_prev = np.where(came, expected, expected_prev)
        wai = np.where(came, _to_wai(latent), wai)
        wai_best = np.where(came, np.maximum(wai_best, wai), wai_best)
        wai_t = np.where(came, _to_wai(therapist_logit), wai_t)
        attended = attended + came
        missed_run = np.where(came, 0, missed_run + missed)

        # --- end of episode: planned end reached, else the dropout hazard -------------------
        done = came & (attended >= cl.planned)
        out.status[done] = _COMPLETED
        active &= ~done
        unrepaired = ruptured & (rupture < -0.5)
        low = wai < h.low_alliance_level
        flat = (attended >= h.flat_after_sessions) & (cl.phq_baseline - phq < h.flat_symptom_points)
        risk = (
            h.intercept
            + cl.risk_trait
            + h.early_phase * (attended <= h.early_phase_sessions)
            + h.low_alliance * np.maximum(h.alliance_hinge - wai, 0.0)
            + h.falling_alliance * (wai_best - wai)
            + unrepaired * (h.unrepaired_rupture + h.rupture_when_low * low)
            + h.disagreement * (np.abs(wai - wai_t - h.usual_gap) > h.disagreement_gap)
            + flat * (h.flat_symptoms + h.flat_and_low_alliance * low)
            + h.remission_exit
            * ((phq < h.remission_level) & (cl.phq_baseline - phq >= h.remission_points))
            + h.one_missed * (missed_run == 1)
            + h.repeated_missed * (missed_run >= 2)
        )
        quits = active & (rng.random(n) < _sigmoid(risk))
        out.status[quits] = _DROPOUT
        active &= ~quits
        day = day + _next_gap_days(rng, n)

    # an episode still running after every allowed appointment was lost to follow-up
    out.status[active] = _DROPOUT
    return out


def _truth(client_ids: np.ndarray, ap: _Appointments) -> pd.DataFrame:
    """Each episode's real ending, from an uncensored run."""
    n_appts = ap.recorded.shape[1]
    last = n_appts - np.argmax(ap.recorded[:, ::-1], axis=1)  # 1-based session number
    status = np.array([c.ONGOING, c.COMPLETED, c.DROPOUT])[ap.status]
    return pd.DataFrame(
        {
            c.CLIENT_ID: pd.array(client_ids, dtype="str"),
            c.STATUS: pd.array(status, dtype="str"),
            "last_session": last.astype("int64"),
        }
    )


def _client_ids(n: int) -> np.ndarray:
    return np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), len(str(n))))


def _tables(
    cfg: SimulateConfig, cl: _Clients, ap: _Appointments, rng: np.random.Generator
) -> SyntheticData:
    """Flatten the appointment arrays into the contract's sessions, outcomes and clients."""
    n, n_appts = ap.recorded.shape
    client_ids = _client_ids(n)
    therapist_ids = np.char.add(
        "T", np.char.zfill(np.arange(1, cfg.n_therapists + 1).astype(str), 3)
    )

    keep = ap.recorded.copy()
    # rows lost from the export: never a client's first or last row, so episodes keep their ends
    last = n_appts - 1 - np.argmax(keep[:, ::-1], axis=1)
    col = np.arange(n_appts)
    inner = keep & (col > 0) & (col < last[:, None])
    keep &= ~(inner & (rng.random(keep.shape) < cfg.row_gap_share))

    rows, k = np.nonzero(keep)  # row-major: sorted by client, then appointment
    start = np.datetime64(cfg.first_intake, "D")
    attendance = np.array(c.ATTENDANCE_VALUES)[ap.attendance[rows, k]]
    sessions = pd.DataFrame(
        {
            c.CLIENT_ID: pd.array(client_ids[rows], dtype="str"),
            c.THERAPIST_ID: pd.array(therapist_ids[cl.therapist[rows]], dtype="str"),
            c.SESSION_NUMBER: (k + 1).astype("int64"),
            c.SESSION_DATE: pd.to_datetime(start + ap.day[rows, k].astype("timedelta64[D]")),
            c.ATTENDANCE: pd.array(attendance, dtype="str"),
            c.ALLIANCE_CLIENT: ap.alliance_client[rows, k],
            c.ALLIANCE_THERAPIST: ap.alliance_therapist[rows, k],
            c.SYMPTOM_SCORE: ap.symptom[rows, k],
            c.ALLIANCE_GOAL: ap.subscales[rows, k, 0],
            c.ALLIANCE_TASK: ap.subscales[rows, k, 1],
            c.ALLIANCE_BOND: ap.subscales[rows, k, 2],
        }
    )
    status = np.array([c.ONGOING, c.COMPLETED, c.DROPOUT])[ap.status]
    outcomes = pd.DataFrame(
        {
            c.CLIENT_ID: pd.array(client_ids, dtype="str"),
            c.STATUS: pd.array(status, dtype="str"),
        }
    )
    clients = pd.DataFrame(
        {
            c.CLIENT_ID: pd.array(client_ids, dtype="str"),
            "gender": pd.array(np.array(GENDERS)[cl.gender], dtype="str"),
            "age_band": pd.array(np.array(AGE_BANDS)[cl.age_band], dtype="str"),
            "employment_status": pd.array(np.array(EMPLOYMENT)[cl.employment], dtype="str"),
            "referral_route": pd.array(np.array(REFERRAL)[cl.referral], dtype="str"),
        }
    )
    return SyntheticData(sessions=sessions, outcomes=outcomes, clients=clients)


def simulate(cfg: SimulateConfig, truth: bool = False) -> SyntheticData:
    """Generate the synthetic sessions, outcomes and clients tables (deterministic by seed).

    ``truth=True`` also runs every episode past the cut-off to its end (``SyntheticData.truth``);
    the tables are the same either way.
    """
    rng = np.random.default_rng(cfg.seed)
    clients = _draw_clients(cfg, rng)
    state = copy.deepcopy(rng.bit_generator.state)
    appointments = _run_episodes(cfg, clients, rng)
    data = _tables(cfg, clients, appointments, rng)
    if truth:
        again = np.random.default_rng()
        again.bit_generator.state = state
        uncensored = _run_episodes(cfg, clients, again, censored=False)
        data.truth = _truth(_client_ids(cfg.n_clients), uncensored)
    return data


# --- headline figures, measured from the tables alone ----------------------------------------


def run(cfg: SimulateRunConfig) -> SyntheticData:
    """The simulate stage: generate the data set and write its three tables, all or none."""
    data = simulate(cfg.simulate, truth=cfg.truth)
    with io.staged_output_dir(Path(cfg.output_dir)) as staging:
        io.write_table(data.sessions, staging / "sessions.csv")
        io.write_table(data.outcomes, staging / "outcomes.csv")
        io.write_table(data.clients, staging / "clients.csv")
        if data.truth is not None:
            io.write_table(data.truth, staging / "truth.csv")
    return data


def _cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's d of a over b with the pooled SD."""
    na, nb = len(a), len(b)
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    return float((a.mean() - b.mean()) / pooled)


def therapist_icc(outcome: pd.Series, therapist: pd.Series) -> float:
    """One-way ANOVA ICC(1) of a 0/1 outcome nested in therapists (unequal group sizes).

    ICC = (MSB - MSW) / (MSB + (k0 - 1) MSW), k0 = (N - sum(n_j^2)/N) / (J - 1): the share of
    variance in dropout between therapists beyond what binomial noise within therapists gives.
    """
    y = outcome.astype(float)
    groups = y.groupby(therapist.to_numpy())
    n_j, mean_j = groups.size(), groups.mean()
    n_total, n_groups = len(y), len(n_j)
    if n_groups < 2 or n_total <= n_groups:
        return float("nan")
    ssb = float((n_j * (mean_j - y.mean()) ** 2).sum())
    ssw = float(((y - groups.transform("mean")) ** 2).sum())
    msb, msw = ssb / (n_groups - 1), ssw / (n_total - n_groups)
    k0 = (n_total - float((n_j**2).sum()) / n_total) / (n_groups - 1)
    return (msb - msw) / (msb + (k0 - 1) * msw)


def rupture_episodes(
    sessions: pd.DataFrame, drop_points: float = 0.5, repair_margin: float = 0.25
) -> pd.DataFrame:
    """Per client: whether its client-rated alliance ruptured, and whether that was repaired.

    A rupture is a drop of at least ``drop_points`` WAI-SR points from the previous measured
    session; it counts as repaired when a later measured session comes back to within
    ``repair_margin`` of the pre-rupture value. The first rupture of an episode is judged.
    """
    s = sessions.loc[sessions[c.ALLIANCE_CLIENT].notna(), [c.CLIENT_ID, c.ALLIANCE_CLIENT]]
    s = s.assign(_order=np.arange(len(s)))
    prev = s.groupby(c.CLIENT_ID)[c.ALLIANCE_CLIENT].shift()
    drop = (prev - s[c.ALLIANCE_CLIENT]) >= drop_points
    first = s[drop].groupby(c.CLIENT_ID).head(1)
    target = (prev[first.index] - repair_margin).rename("_target")
    later = s.merge(
        pd.concat([first[[c.CLIENT_ID, "_order"]], target], axis=1).rename(
            columns={"_order": "_rupture_order"}
        ),
        on=c.CLIENT_ID,
    )
    later = later[later["_order"] > later["_rupture_order"]]
    repaired = later.loc[later[c.ALLIANCE_CLIENT] >= later["_target"], c.CLIENT_ID].unique()
    clients = sessions[c.CLIENT_ID].unique()
    ruptured = np.isin(clients, first[c.CLIENT_ID].to_numpy())
    return pd.DataFrame(
        {
            c.CLIENT_ID: clients,
            "ruptured": ruptured,
            "repaired": ruptured & np.isin(clients, repaired),
        }
    )


def _trajectory_summaries(sessions: pd.DataFrame) -> pd.DataFrame:
    """Simple per-client summaries over all of a client's rows (for the sanity figure)."""
    s = sessions
    g = s.groupby(c.CLIENT_ID, sort=False)
    first_last = g[[c.ALLIANCE_CLIENT, c.ALLIANCE_THERAPIST, c.SYMPTOM_SCORE]].agg(
        ["first", "last"]
    )
    return pd.DataFrame(
        {
            "alliance_last": first_last[(c.ALLIANCE_CLIENT, "last")],
            "alliance_mean": g[c.ALLIANCE_CLIENT].mean(),
            "alliance_change": first_last[(c.ALLIANCE_CLIENT, "last")]
            - first_last[(c.ALLIANCE_CLIENT, "first")],
            "alliance_drop_from_best": g[c.ALLIANCE_CLIENT].max()
            - first_last[(c.ALLIANCE_CLIENT, "last")],
            "therapist_minus_client": first_last[(c.ALLIANCE_THERAPIST, "last")]
            - first_last[(c.ALLIANCE_CLIENT, "last")],
            "symptom_change": first_last[(c.SYMPTOM_SCORE, "last")]
            - first_last[(c.SYMPTOM_SCORE, "first")],
            "missed_share": g[c.ATTENDANCE].agg(lambda a: float((a != c.ATTENDED).mean())),
        }
    )


def _sanity_aucs(sessions: pd.DataFrame, y: pd.Series, seed: int) -> tuple[float, float]:
    """ROC AUC of latest client alliance alone vs. a cross-validated logistic regression."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = _trajectory_summaries(sessions[sessions[c.CLIENT_ID].isin(y.index)]).loc[y.index]
    alliance_last = x["alliance_last"].fillna(x["alliance_last"].median())
    auc_alliance = roc_auc_score(y, -alliance_last)
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(auc_alliance), float(roc_auc_score(y, proba))


def headline_figures(
    data: SyntheticData,
    *,
    rupture_drop: float = 0.5,
    repair_margin: float = 0.25,
    seed: int = 0,
) -> dict[str, Any]:
    """Realism figures measured from the generated tables (not from the simulator's internals)."""
    s, o = data.sessions, data.outcomes
    status = o.set_index(c.CLIENT_ID)[c.STATUS]
    labeled = status[status.isin([c.COMPLETED, c.DROPOUT])]
    y = (labeled == c.DROPOUT).astype(int)

    rows_per_client = s.groupby(c.CLIENT_ID).size()
    therapist_of = s.groupby(c.CLIENT_ID)[c.THERAPIST_ID].last()
    caseload = therapist_of.value_counts()
    attended = s[s[c.ATTENDANCE] == c.ATTENDED]
    no_questionnaire = attended[list(c.SESSION_SCORES)].isna().all(axis=1)
    mean_alliance = attended.groupby(c.CLIENT_ID)[c.ALLIANCE_CLIENT].mean()
    completers = mean_alliance.reindex(y.index[y == 0]).dropna().to_numpy()
    dropouts = mean_alliance.reindex(y.index[y == 1]).dropna().to_numpy()
    ruptures = rupture_episodes(s, rupture_drop, repair_margin)
    both = attended[[c.ALLIANCE_CLIENT, c.ALLIANCE_THERAPIST]].dropna()
    baseline = attended.groupby(c.CLIENT_ID)[c.SYMPTOM_SCORE].first().dropna()
    auc_alliance, auc_logreg = _sanity_aucs(s, y, seed)

    return {
        "n_episodes": int(status.size),
        "n_therapists": int(s[c.THERAPIST_ID].nunique()),
        "n_session_rows": len(s),
        "dropout_rate_labeled": float(y.mean()),
        "ongoing_share": float((status == c.ONGOING).mean()),
        "sessions_per_episode_median": float(rows_per_client.median()),
        "sessions_per_episode_min": int(rows_per_client.min()),
        "sessions_per_episode_max": int(rows_per_client.max()),
        "clients_per_therapist_median": float(caseload.median()),
        "clients_per_therapist_min": int(caseload.min()),
        "clients_per_therapist_max": int(caseload.max()),
        "rupture_share": float(ruptures["ruptured"].mean()),
        "rupture_repaired_share": float(ruptures["repaired"].mean()),
        "rupture_unrepaired_share": float((ruptures["ruptured"] & ~ruptures["repaired"]).mean()),
        "alliance_d_completers_vs_dropouts": _cohens_d(completers, dropouts),
        "therapist_icc_dropout": therapist_icc(y, therapist_of.loc[y.index]),
        "alliance_client_mean": float(attended[c.ALLIANCE_CLIENT].mean()),
        "alliance_client_sd": float(attended[c.ALLIANCE_CLIENT].std()),
        "alliance_therapist_mean": float(attended[c.ALLIANCE_THERAPIST].mean()),
        "alliance_therapist_sd": float(attended[c.ALLIANCE_THERAPIST].std()),
        "alliance_client_therapist_r": float(
            np.corrcoef(both[c.ALLIANCE_CLIENT], both[c.ALLIANCE_THERAPIST])[0, 1]
        ),
        "phq9_baseline_mean": float(baseline.mean()),
        "phq9_baseline_sd": float(baseline.std()),
        "missed_share": float((s[c.ATTENDANCE] != c.ATTENDED).mean()),
        "questionnaire_missing_share": float(no_questionnaire.mean()),
        "auc_latest_alliance": auc_alliance,
        "auc_logistic_summaries": auc_logreg,
    }


_LABELS = {
    "n_episodes": "episodes",
    "n_therapists": "therapists",
    "n_session_rows": "session rows",
    "dropout_rate_labeled": "dropout rate (labeled episodes)",
    "ongoing_share": "ongoing at cut-off",
    "sessions_per_episode_median": "rows per episode, median",
    "sessions_per_episode_min": "rows per episode, min",
    "sessions_per_episode_max": "rows per episode, max",
    "clients_per_therapist_median": "clients per therapist, median",
    "clients_per_therapist_min": "clients per therapist, min",
    "clients_per_therapist_max": "clients per therapist, max",
    "rupture_share": "episodes with a rupture",
    "rupture_repaired_share": "  repaired",
    "rupture_unrepaired_share": "  unrepaired",
    "alliance_d_completers_vs_dropouts": "client alliance d (completers - dropouts)",
    "therapist_icc_dropout": "therapist ICC for dropout",
    "alliance_client_mean": "client alliance mean",
    "alliance_client_sd": "client alliance SD",
    "alliance_therapist_mean": "therapist alliance mean",
    "alliance_therapist_sd": "therapist alliance SD",
    "alliance_client_therapist_r": "client-therapist alliance r",
    "phq9_baseline_mean": "PHQ-9 baseline mean",
    "phq9_baseline_sd": "PHQ-9 baseline SD",
    "missed_share": "missed appointments (share of rows)",
    "questionnaire_missing_share": "attended rows without questionnaires",
    "auc_latest_alliance": "AUC, latest client alliance alone",
    "auc_logistic_summaries": "AUC, logistic regression on summaries (5-fold CV)",
}


def format_headline_figures(figures: dict[str, Any]) -> str:
    """Aligned 'label  value' lines for the terminal (aggregates only, never client rows)."""
    width = max(len(label) for label in _LABELS.values())
    lines = []
    for key, value in figures.items():
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"  {_LABELS.get(key, key):<{width}}  {text}")
    return "\n".join(lines)
