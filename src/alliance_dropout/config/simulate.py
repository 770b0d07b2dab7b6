"""Typed configuration of the synthetic data generator (``conf/simulate/default.yaml``).

Every default cites its research source; ``docs/simulation.md`` tells the generative story.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass
class DropoutHazardConfig:
    """Per-appointment dropout hazard on the logit scale (applied after every appointment).

    Coefficients were tuned so that the measured figures hit the published targets: dropout
    ~20% of labeled episodes (Swift & Greenberg 2012), client alliance d ~0.55 between
    completers and dropouts (Sharf, Primavera & Diener 2010) and therapist ICC ~0.057-0.126
    (Zimmermann et al. 2017; Saxon et al. 2017). Thresholds and interactions are there on
    purpose: part of the signal is nonlinear, as a tree model can find and a linear one cannot
    (on the project's landmark features LightGBM beats logistic regression by ~0.03 AUC, which
    beats latest alliance alone by ~0.1; see docs/simulation.md).
    """

    intercept: float = -7.8
    # most dropout happens early (Swift & Greenberg 2012): extra hazard over attended sessions 1-4
    early_phase: float = 0.55
    early_phase_sessions: int = 4
    # per WAI-SR point the client's current alliance lies below the hinge: near the ceiling a
    # little more or less alliance makes no difference
    low_alliance: float = 0.05
    alliance_hinge: float = 3.8
    # per WAI-SR point the alliance fell since the client's best session so far
    falling_alliance: float = 0.1
    # an unrepaired rupture, and extra when the alliance is already below ``low_alliance_level``
    unrepaired_rupture: float = 0.3
    rupture_when_low: float = 0.5
    low_alliance_level: float = 3.6
    # client and therapist disagree about the alliance, in either direction, by more than
    # ``disagreement_gap`` points beyond the usual gap (clients rate ~``usual_gap`` higher):
    # incongruent views of the relationship (Rubel et al. 2018); U-shaped in the gap
    disagreement: float = 2.5
    disagreement_gap: float = 0.5
    usual_gap: float = 0.45
    # fewer than ``flat_symptom_points`` PHQ-9 points better after ``flat_after_sessions``
    flat_symptoms: float = 0.2
    flat_symptom_points: float = 3.0
    flat_after_sessions: int = 4
    # flat symptoms with a weak alliance: the client sees neither progress nor a working
    # relationship (an interaction, on top of both main effects)
    flat_and_low_alliance: float = 1.8
    # clients who reached remission early (PHQ-9 below the cutoff of 10 and a reliable
    # improvement of 6 points) sometimes stop on their own: improved dropouts (Swift &
    # Greenberg 2012 discuss dropouts who leave satisfied); makes the symptom effect U-shaped
    remission_exit: float = 2.5
    remission_level: float = 10.0
    remission_points: float = 6.0
    # one missed appointment vs. a run of at least two (threshold effect)
    one_missed: float = 0.3
    repeated_missed: float = 1.2
    # therapist random effect SD (logit) and client-level unobserved heterogeneity SD
    therapist_sd: float = 0.7
    client_sd: float = 0.4
    # baseline covariates (Swift & Greenberg 2012: younger age, unemployment; small effects)
    age_18_24: float = 0.35
    unemployed: float = 0.3

    def __post_init__(self) -> None:
        for name in ("therapist_sd", "client_sd", "disagreement_gap", "flat_symptom_points"):
            if getattr(self, name) < 0:
                raise ValueError(f"simulate.hazard.{name} must be >= 0")
        for name in ("low_alliance_level", "alliance_hinge"):
            if not 1.0 <= getattr(self, name) <= 5.0:
                raise ValueError(f"simulate.hazard.{name} must be within the WAI-SR range 1-5")
        if self.early_phase_sessions < 0 or self.flat_after_sessions < 0:
            raise ValueError("simulate.hazard session counts must be >= 0")


@dataclass
class SimulateConfig:
    """Schema of the synthetic data generator (``conf/simulate/default.yaml`` sets the values)."""

    seed: int = 20240917
    n_clients: int = 6000
    n_therapists: int = 150
    # Dirichlet concentration of caseload shares: 6 gives caseloads of roughly 20-70 clients
    caseload_concentration: float = 6.0
    # intake dates are spread uniformly from first_intake up to the data cut-off; episodes
    # unfinished at the cut-off are 'ongoing' and their rows stop there
    first_intake: str = "2023-01-02"
    cutoff_date: str = "2025-01-31"
    # planned number of attended sessions: lognormal around the median, clipped to the range
    # (NICE CG90: 16-20 CBT sessions for depression; routine care is often shorter)
    planned_sessions_median: float = 12.0
    planned_sessions_spread: float = 0.35
    planned_sessions_min: int = 6
    planned_sessions_max: int = 25
    # appointments beyond the plan a client may accumulate by missing sessions
    max_extra_appointments: int = 15

    # --- client-rated WAI-SR, latent logit scale mapped to 1 + 4*sigmoid (ceiling skew) -------
    # Hatcher & Gillaspy 2006; Munder et al. 2010: item means ~3.7-4.0, SD ~0.6-0.7, skewed
    alliance_logit_mean: float = 1.15
    alliance_logit_sd: float = 0.8
    # slow rise over treatment (logit per attended session)
    alliance_slope_mean: float = 0.03
    alliance_slope_sd: float = 0.03
    # session-to-session state (AR(1)) and measurement noise of the alliance
    alliance_ar: float = 0.6
    alliance_state_sd: float = 0.12
    alliance_noise_sd: float = 0.12
    # therapist effect on alliance (Baldwin, Wampold & Imel 2007; Del Re et al. 2012)
    therapist_alliance_sd: float = 0.25
    # subscale offsets (logit) around the total and their client-specific spread;
    # bond usually highest, goal lowest (Hatcher & Gillaspy 2006)
    goal_offset: float = -0.25
    task_offset: float = -0.05
    bond_offset: float = 0.3
    subscale_client_sd: float = 0.3
    subscale_noise_sd: float = 0.2

    # --- therapist-rated WAI-SR-T: lower and less variable than clients' ratings,
    # correlated r ~.3-.5 (Tryon, Blackwell & Hammel 2007: r = .36) -------------------------
    therapist_rating_logit_mean: float = 0.55
    therapist_rating_loading: float = 0.25
    therapist_rater_sd: float = 0.3
    therapist_rating_client_sd: float = 0.35
    therapist_rating_noise_sd: float = 0.15

    # --- ruptures (Larsson et al. 2018: 14.7% repaired, 10.7% unrepaired episodes) ---------
    rupture_share: float = 0.22
    repair_share: float = 0.68
    # rupture depth on the logit scale (uniform); ~0.6-1.5 WAI-SR points near the ceiling
    rupture_depth_min: float = 1.5
    rupture_depth_max: float = 2.6
    # share of the rupture left after each further session: fast if repaired, slow if not
    repaired_decay: float = 0.2
    unrepaired_decay: float = 0.92

    # --- PHQ-9 (Kroenke, Spitzer & Williams 2001); IAPT intake mean ~15, SD ~5 -------------
    phq9_baseline_mean: float = 15.0
    phq9_baseline_sd: float = 4.7
    phq9_noise_sd: float = 1.5
    phq9_state_sd: float = 1.0
    # change classes (Stulz et al. 2007); deterioration is commonly put at 5-10% (Lambert 2007);
    # gradual responders are the rest
    early_responder_share: float = 0.2
    non_responder_share: float = 0.3
    deteriorator_share: float = 0.07
    # sudden gains (Tang & DeRubeis 1999; Aderka et al. 2012): a one-session drop of 6-9 points
    sudden_gain_share: float = 0.18
    # reciprocal session-to-session links (Falkenström, Granström & Holmqvist 2013;
    # Zilcha-Mano et al. 2014): alliance above the client's own level -> fewer symptoms next
    # session; symptom improvement -> higher alliance next session
    alliance_to_symptoms: float = 0.3
    symptoms_to_alliance: float = 0.05

    # --- attendance and recording ------------------------------------------------------------
    # missed appointments: about 20% in mental health (Mitchell & Selmes 2007); fewer here
    missed_base_share: float = 0.09
    # missed appointments cluster in at-risk clients: logit per unit of dropout-risk logit
    missed_risk_loading: float = 0.25
    no_show_share: float = 0.5
    # share of attended rows whose questionnaires are all missing, and single-measure gaps
    questionnaire_missing_share: float = 0.05
    therapist_rating_missing_share: float = 0.04
    phq9_missing_share: float = 0.02
    # share of rows lost from the export (gaps in session_number; first/last rows kept)
    row_gap_share: float = 0.01

    hazard: DropoutHazardConfig = field(default_factory=DropoutHazardConfig)

    def __post_init__(self) -> None:
        if self.n_clients < 1 or self.n_therapists < 1:
            raise ValueError("simulate.n_clients and simulate.n_therapists must be >= 1")
        if self.n_therapists > self.n_clients:
            raise ValueError("simulate.n_therapists cannot exceed simulate.n_clients")
        if date.fromisoformat(self.cutoff_date) <= date.fromisoformat(self.first_intake):
            raise ValueError("simulate.cutoff_date must be after simulate.first_intake")
        if not 1 <= self.planned_sessions_min <= self.planned_sessions_max:
            raise ValueError("simulate: need 1 <= planned_sessions_min <= planned_sessions_max")
        if not self.planned_sessions_min <= self.planned_sessions_median:
            raise ValueError("simulate.planned_sessions_median is below planned_sessions_min")
        if self.rupture_depth_min > self.rupture_depth_max:
            raise ValueError("simulate.rupture_depth_min exceeds rupture_depth_max")
        shares = (
            "rupture_share",
            "repair_share",
            "early_responder_share",
            "non_responder_share",
            "deteriorator_share",
            "sudden_gain_share",
            "missed_base_share",
            "no_show_share",
            "questionnaire_missing_share",
            "therapist_rating_missing_share",
            "phq9_missing_share",
            "row_gap_share",
            "alliance_ar",
            "repaired_decay",
            "unrepaired_decay",
        )
        for name in shares:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"simulate.{name} must be within [0, 1]")
        classes = self.early_responder_share + self.non_responder_share + self.deteriorator_share
        if classes > 1.0:
            raise ValueError("simulate: responder class shares sum to more than 1")
        nonneg = (
            "caseload_concentration",
            "planned_sessions_spread",
            "max_extra_appointments",
            "alliance_logit_sd",
            "alliance_slope_sd",
            "alliance_state_sd",
            "alliance_noise_sd",
            "therapist_alliance_sd",
            "subscale_client_sd",
            "subscale_noise_sd",
            "therapist_rater_sd",
            "therapist_rating_client_sd",
            "therapist_rating_noise_sd",
            "phq9_baseline_sd",
            "phq9_noise_sd",
            "phq9_state_sd",
        )
        for name in nonneg:
            if getattr(self, name) < 0:
                raise ValueError(f"simulate.{name} must be >= 0")
        if self.caseload_concentration == 0:
            raise ValueError("simulate.caseload_concentration must be > 0")
