import re

import numpy as np
import pandas as pd
import pytest

from alliance_dropout.contract import PHQ9, WAI_SR, Scale
from alliance_dropout.reasons import NOT_REASONS, Reason, phrases, top_reasons

PHRASES = phrases(recent_alliance=3, recent_attendance=4, symptom="PHQ-9")
# A reason: direction arrow, the words, and the effect in brackets.
REASON = re.compile(
    r"(?P<arrow>[↑↓]) (?P<text>.+) \((?P<verb>raises|lowers) risk (?P<size>[^()]+)\)"
)
EXAMPLE_VALUES = {  # a plausible value per feature, risk-factor-like where that applies
    "alliance_client_rated_sessions": 1.0,
    "alliance_therapist_rated_sessions": 2.0,
    "symptom_rated_sessions": 0.0,
    "alliance_client_latest": 2.4,
    "alliance_client_recent_slope": -0.4,
    "alliance_gap_latest": -0.9,
    "alliance_gap_mean": -0.7,
    "alliance_client_low_sessions": 2.0,
    "rupture_open": 1.0,
    "rupture_count": 2.0,
    "rupture_repaired_count": 1.0,
    "rupture_unrepaired_count": 1.0,
    "symptom_latest_vs_expected": -5.2,
    "symptom_reliable_deterioration": 1.0,
    "attendance_scheduled": 9.0,
    "attendance_attended": 6.0,
    "attendance_cancelled": 2.0,
    "attendance_no_shows": 1.0,
    "attendance_recent_missed_share": 0.5,
    "attendance_consecutive_missed": 2.0,
}


def _parse(reasons: str) -> list[dict[str, str]]:
    out = []
    for part in reasons.split(" | "):
        match = REASON.fullmatch(part)
        assert match, f"not in the reason format: {part!r}"
        out.append(match.groupdict())
    return out


def _one_row(contrib: dict[str, float], values: dict[str, float]) -> tuple[pd.DataFrame, ...]:
    return pd.DataFrame([contrib]), pd.DataFrame([values])


def test_reasons_say_what_moved_the_risk_which_way_and_by_about_how_much():
    contrib = pd.DataFrame(
        {
            "alliance_client_recent_slope": [0.9, -0.3],
            "attendance_recent_missed_share": [0.5, 0.1],
            "rupture_open": [0.7, 0.0],
            "symptom_latest": [-0.3, 0.4],
        }
    )
    values = pd.DataFrame(
        {
            "alliance_client_recent_slope": [-0.55, 0.1],
            "attendance_recent_missed_share": [0.5, 0.25],
            "rupture_open": [1.0, 0.0],
            "symptom_latest": [12.0, 19.0],
        }
    )
    out = top_reasons(contrib, values, {}, PHRASES, n=3, risk=np.array([0.4, 0.2]))
    # size: risk minus the risk without the contribution, 0.4 - sigmoid(logit(0.4) - 0.9)
    assert out[0].split(" | ") == [
        "↑ client's alliance rating fell 1.1 points over the last 3 ratings "
        "(raises risk by about 19 percentage points)",
        "↑ an alliance rupture is not yet repaired (raises risk by about 15 percentage points)",
        "↑ missed 2 of the last 4 appointments (raises risk by about 11 percentage points)",
    ]
    # A contribution below the noise floor (rupture_open 0.0) is no reason; the reason against
    # the client's overall direction comes last.
    assert out[1].split(" | ") == [
        "↑ latest PHQ-9 score 19 (raises risk by about 6 percentage points)",
        "↑ missed 1 of the last 4 appointments (raises risk by about 2 percentage points)",
        "↓ client's alliance rating rose 0.2 points over the last 3 ratings "
        "(lowers risk by about 5 percentage points)",
    ]


def test_without_the_risk_the_size_is_said_in_words():
    contrib, values = _one_row(
        {"rupture_open": 0.6, "alliance_client_latest": 0.2, "symptom_latest": 0.05},
        {"rupture_open": 1.0, "alliance_client_latest": 2.4, "symptom_latest": 14.0},
    )
    assert [r["size"] for r in _parse(top_reasons(contrib, values, {}, PHRASES)[0])] == [
        "strongly",
        "somewhat",
        "slightly",
    ]


def test_small_effects_at_a_low_risk_are_not_rounded_to_zero():
    contrib, values = _one_row({"alliance_client_latest": -0.1}, {"alliance_client_latest": 4.6})
    (reason,) = top_reasons(contrib, values, {}, PHRASES, risk=np.array([0.03]))[0].split(" | ")
    assert reason.endswith("(lowers risk by less than 1 percentage point)")


def test_a_client_without_a_risk_gets_the_size_in_words():
    contrib, values = _one_row({"rupture_open": 0.6}, {"rupture_open": 1.0})
    contrib = pd.concat([contrib, contrib], ignore_index=True)
    values = pd.concat([values, values], ignore_index=True)
    out = top_reasons(contrib, values, {}, PHRASES, risk=np.array([np.nan, 0.3]))
    assert out == [
        "↑ an alliance rupture is not yet repaired (raises risk strongly)",
        "↑ an alliance rupture is not yet repaired (raises risk by about 11 percentage points)",
    ]


def test_therapist_context_and_missing_values_are_never_reasons():
    # therapist context and the hazard's clock: strong contributions, never reasons
    names = [*sorted(NOT_REASONS), "alliance_client_latest", "symptom_latest"]
    strong = [5.0 - k * 0.5 for k in range(len(NOT_REASONS))]
    contrib = pd.DataFrame([[*strong, 1.0, 2.0]], columns=names)
    values = pd.DataFrame([[*([4.0] * len(NOT_REASONS)), 2.4, np.nan]], columns=names)
    assert top_reasons(contrib, values, {}, PHRASES) == [
        "↑ client's latest alliance rating 2.4 of 5 (raises risk strongly)"
    ]


def test_a_feature_without_a_phrase_reads_as_its_definition_and_value():
    contrib = pd.DataFrame({"some_new_feature": [1.0]})
    values = pd.DataFrame({"some_new_feature": [2.5]})
    definitions = {"some_new_feature": "Mean of something over rated sessions. More text."}
    assert top_reasons(contrib, values, definitions, PHRASES) == [
        "↑ mean of something over rated sessions: 2.5 (raises risk strongly)"
    ]


def test_a_plain_callable_still_works_as_a_phrase():
    contrib, values = _one_row({"x": -0.3}, {"x": 1.0})
    assert top_reasons(contrib, values, {}, {"x": lambda v: f"x is {v:.0f}"}) == [
        "↓ x is 1 (lowers risk somewhat)"
    ]


# --- direction --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PHRASES))
def test_the_direction_is_the_contributions_never_the_wordings(name):
    """A feature that lowers the risk is never phrased as a risk factor, and vice versa: the
    words only describe the value; arrow and verb follow the sign of the contribution."""
    value = EXAMPLE_VALUES.get(name, 1.0)
    context = {c: EXAMPLE_VALUES.get(c, 9.0) for c in PHRASES[name].context}
    texts = {}
    for sign in (1.0, -1.0):
        contrib, values = _one_row({name: 0.4 * sign}, {name: value, **context})
        for risk in (None, np.array([0.3])):
            (reason,) = _parse(top_reasons(contrib, values, {}, PHRASES, risk=risk)[0])
            assert reason["arrow"] == ("↑" if sign > 0 else "↓")
            assert reason["verb"] == ("raises" if sign > 0 else "lowers")
            assert not re.search(
                r"\b(raises|lowers|increases|decreases) (the )?risk", reason["text"]
            )
            texts[sign] = reason["text"]
    assert texts[1.0] == texts[-1.0]


def test_protective_values_read_as_protective():
    """A low-risk client whose record holds no rupture and no missed appointment is not told
    'an alliance rupture is open' or 'appointments missed' (values phrased as they are)."""
    names = [
        "rupture_open",
        "attendance_consecutive_missed",
        "attendance_recent_missed_share",
        "attendance_no_shows",
        "attendance_scheduled",
        "symptom_reliable_deterioration",
    ]
    contrib = pd.DataFrame([[-0.6, -0.5, -0.4, -0.3, 0.0, -0.2]], columns=names)
    values = pd.DataFrame([[0.0, 0.0, 0.0, 0.0, 8.0, 0.0]], columns=names)
    reasons = _parse(top_reasons(contrib, values, {}, PHRASES, n=5, risk=np.array([0.05]))[0])
    # (the three attendance features are one group: only the strongest speaks)
    assert [r["text"] for r in reasons] == [
        "no unrepaired alliance rupture at present",
        "came to the latest appointment",
        "no reliable worsening of PHQ-9",
    ]
    assert all(r["arrow"] == "↓" and r["verb"] == "lowers" for r in reasons)


def test_the_clients_own_direction_comes_first():
    names = ["rupture_open", "alliance_client_latest", "symptom_latest", "attendance_no_shows"]
    values = pd.DataFrame([[1.0, 4.5, 9.0, 1.0]] * 2, columns=names).assign(
        attendance_scheduled=8.0
    )
    contrib = pd.DataFrame(
        [
            [0.9, -0.3, 0.5, 0.4],  # above-average risk: raising reasons first
            [0.3, -0.9, -0.5, -0.4],  # below average: lowering (protective) reasons first
        ],
        columns=names,
    ).assign(attendance_scheduled=0.0)
    high, low = (_parse(r) for r in top_reasons(contrib, values, {}, PHRASES, n=3))
    assert [r["arrow"] for r in high] == ["↑", "↑", "↑"]
    assert [r["arrow"] for r in low] == ["↓", "↓", "↓"]
    # A reason against the client's direction takes a place only when more than twice as
    # strong as the one it would displace, and then comes after the client's own direction.
    contrib.loc[0, "alliance_client_latest"] = -0.9
    high = _parse(top_reasons(contrib, values, {}, PHRASES, n=3)[0])
    assert [r["arrow"] for r in high] == ["↑", "↑", "↓"]
    assert high[-1]["text"] == "client's latest alliance rating 4.5 of 5"


# --- duplicates -------------------------------------------------------------------------------


def test_two_phrasings_of_the_client_therapist_gap_are_one_reason():
    contrib, values = _one_row(
        {"alliance_gap_mean": 0.5, "alliance_gap_latest": 0.6, "alliance_gap_slope": 0.4},
        {"alliance_gap_mean": -0.6, "alliance_gap_latest": -0.6, "alliance_gap_slope": -0.1},
    )
    assert top_reasons(contrib, values, {}, PHRASES) == [
        "↑ client rates the alliance 0.6 points lower than the therapist does "
        "(raises risk strongly)"
    ]


def test_no_client_gets_two_reasons_of_one_group():
    """Random contributions over every phrased feature: each shown reason is traced back to
    the feature(s) that phrase it so, and no two come from the same group."""
    rng = np.random.default_rng(3)
    names = sorted(PHRASES)
    n = 300
    contrib = pd.DataFrame(rng.normal(0, 0.4, (n, len(names))), columns=names)
    values = pd.DataFrame(
        {name: rng.choice([0.0, 1.0, 2.0, 3.0, 0.25, -0.5, 4.2, 12.0], n) for name in names}
    )
    out = top_reasons(contrib, values, {}, PHRASES, n=4, risk=rng.uniform(0.01, 0.8, n))
    for i, reasons in enumerate(out):
        groups = []
        for reason in _parse(reasons):
            owners = {
                PHRASES[name].group
                for name in names
                if PHRASES[name](
                    values.at[i, name], *(values.at[i, c] for c in PHRASES[name].context)
                )
                == reason["text"]
            }
            assert owners, reason
            groups.append(owners)
        flat = [g for owners in groups for g in owners]
        assert len(flat) == len(set(flat)), (i, reasons)


def test_every_group_of_similar_features_is_deduplicated():
    groups: dict[str, list[str]] = {}
    for name, reason in PHRASES.items():
        groups.setdefault(reason.group, []).append(name)
    assert groups.pop("", None) is None, "every phrased feature belongs to a group"
    assert {"alliance_gap_latest", "alliance_gap_mean"} <= set(groups["gap"])
    assert {"rupture_open", "rupture_count", "rupture_unrepaired_count"} <= set(groups["rupture"])
    assert {"attendance_no_shows", "attendance_recent_missed_share"} <= set(groups["missed"])


# --- counts -----------------------------------------------------------------------------------

COUNTS = (
    "alliance_client_rated_sessions",
    "alliance_therapist_rated_sessions",
    "symptom_rated_sessions",
    "alliance_client_low_sessions",
    "alliance_therapist_low_sessions",
    "attendance_scheduled",
    "attendance_attended",
    "attendance_cancelled",
    "attendance_no_shows",
    "attendance_consecutive_missed",
    "rupture_count",
    "rupture_repaired_count",
    "rupture_unrepaired_count",
    "sudden_gain_count",
    "sudden_loss_count",
)
NUMBER = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine)"
BARE_COUNT = re.compile(rf"{NUMBER} [a-z][a-z\- ]*?( so far)?")


@pytest.mark.parametrize("name", COUNTS)
def test_no_reason_is_a_bare_count(name):
    """'1 alliance rating so far', '0 cancellations so far': a count with no reference point
    says nothing a clinician can act on. Counts are phrased against a reference or as an
    absence, or are no reason at that value."""
    k = np.arange(0, 31, dtype=float)
    reference = np.maximum(k, 12.0)
    values = pd.DataFrame(
        {
            "attendance_scheduled": reference,
            "alliance_client_rated_sessions": reference,
            "alliance_therapist_rated_sessions": reference,
            "rupture_repaired_count": np.minimum(k, 1.0),
        }
    ).assign(**{name: k})
    contrib = pd.DataFrame({name: np.full(len(k), 0.5)})
    for count, reasons in zip(k, top_reasons(contrib, values, {}, PHRASES), strict=True):
        if not reasons:
            continue
        (reason,) = _parse(reasons)
        text = reason["text"]
        assert not BARE_COUNT.fullmatch(text), (count, text)
        assert not re.fullmatch(r"\d+ [a-z ]+ so far", text), (count, text)


def test_rating_counts_are_reasons_only_while_there_are_few_ratings():
    contrib = pd.DataFrame({"alliance_client_rated_sessions": [0.3] * 4})
    values = pd.DataFrame({"alliance_client_rated_sessions": [0.0, 1.0, 2.0, 7.0]})
    assert top_reasons(contrib, values, {}, PHRASES) == [
        "↑ no alliance rating from the client yet (raises risk somewhat)",
        "↑ only one alliance rating from the client so far (raises risk somewhat)",
        "↑ only two alliance ratings from the client so far (raises risk somewhat)",
        "",
    ]


def test_counts_of_missed_appointments_name_their_reference():
    contrib, values = _one_row(
        {"attendance_cancelled": 0.5, "attendance_scheduled": 0.0},
        {"attendance_cancelled": 2.0, "attendance_scheduled": 9.0},
    )
    assert top_reasons(contrib, values, {}, PHRASES) == [
        "↑ 2 of 9 appointments cancelled (raises risk strongly)"
    ]


# --- words ------------------------------------------------------------------------------------


def test_better_and_worse_follow_the_scales_direction():
    higher_is_better = Scale("WEMWBS", 14, 70, higher_is_worse=False)
    for scale, better in ((PHQ9, -3.0), (higher_is_better, 3.0)):
        reason = phrases(3, 4, scale)["symptom_latest_vs_expected"]
        assert reason(better) == f"{scale.name} 3 points better than expected by now"
        assert reason(-better) == f"{scale.name} 3 points worse than expected by now"
        assert reason(0.2) == f"{scale.name} on its expected course"


def test_phrases_use_the_models_feature_settings():
    p = phrases(4, 6, PHQ9, 5, recent_symptom=4, low_cutoff=2.5, repair_window=5)
    assert p["alliance_client_recent_slope"](-0.2) == (
        "client's alliance rating fell 0.6 points over the last 4 ratings"
    )
    assert p["symptom_recent_slope"](-1.0) == "PHQ-9 3 points better over the last 4 scores"
    assert p["alliance_client_low_sessions"](2.0, 8.0) == (
        "client's alliance rating below 2.5 of 5 in 2 of 8 ratings"
    )
    assert (
        p["rupture_unrepaired_count"](1.0) == "one alliance rupture not repaired within 5 sessions"
    )
    assert p["attendance_recent_missed_share"](0.5, 20.0) == "missed 3 of the last 6 appointments"
    assert p["symptom_early_response"](0.0) == (
        "no early response: PHQ-9 not clearly better by session 5"
    )
    assert WAI_SR.max == 5  # phrases say "of 5": the contract's alliance scale


def test_every_reason_is_a_reason_object_with_a_group():
    assert all(isinstance(r, Reason) and r.group for r in PHRASES.values())
