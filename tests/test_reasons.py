import numpy as np
import pandas as pd

from alliance_dropout.reasons import NOT_REASONS, phrases, top_reasons

PHRASES = phrases(recent_alliance=3, recent_attendance=4, symptom="PHQ-9")


def test_reasons_are_the_largest_positive_contributions_in_words_with_values():
    contrib = pd.DataFrame(
        {
            "alliance_client_recent_slope": [0.9, -0.2],
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
    out = top_reasons(contrib, values, {}, PHRASES, n=3)
    assert out[0].split(" | ") == [
        "client alliance fell 1.1 points over the last 3 ratings",
        "an alliance rupture is open (not yet repaired)",
        "2 of the last 4 appointments missed",
    ]
    # only positive contributions count: the second client has two
    assert out[1].split(" | ") == [
        "PHQ-9 19 at the last measurement",
        "1 of the last 4 appointments missed",
    ]


def test_therapist_context_and_missing_values_are_never_reasons():
    names = [*sorted(NOT_REASONS), "alliance_client_latest", "symptom_latest"]
    contrib = pd.DataFrame([[5.0, 4.0, 3.0, 1.0, 2.0]], columns=names)
    values = pd.DataFrame([[0.4, 4.0, 30.0, 2.4, np.nan]], columns=names)
    assert top_reasons(contrib, values, {}, PHRASES) == [
        "client-rated alliance 2.4 of 5 at the last rating"
    ]


def test_a_feature_without_a_phrase_reads_as_its_definition_and_value():
    contrib = pd.DataFrame({"some_new_feature": [1.0]})
    values = pd.DataFrame({"some_new_feature": [2.5]})
    definitions = {"some_new_feature": "Mean of something over rated sessions. More text."}
    assert top_reasons(contrib, values, definitions, PHRASES) == [
        "mean of something over rated sessions: 2.5"
    ]
