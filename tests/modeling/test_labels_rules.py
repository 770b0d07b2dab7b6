import numpy as np
import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout.config import to_object
from alliance_dropout.config.modeling import LabelConfig, LabelDefinition, ReferenceRulesConfig
from alliance_dropout.modeling.fitting import Examples
from alliance_dropout.modeling.labels import describe_label, episode_labels
from alliance_dropout.modeling.reference_rules import (
    LATEST_ALLIANCE,
    PCOMS_ALERT,
    reference_scores,
)
from alliance_dropout.training import _open_label_rows


def sessions_frame(rows):
    df = pd.DataFrame(
        rows, columns=[c.CLIENT_ID, c.SESSION_NUMBER, c.ATTENDANCE, c.ALLIANCE_CLIENT]
    )
    df[c.THERAPIST_ID] = "t1"
    df[c.SESSION_DATE] = pd.Timestamp("2025-01-01") + pd.to_timedelta(
        df[c.SESSION_NUMBER] * 7, unit="D"
    )
    return df


SESSIONS = sessions_frame(
    [
        ("a", 1, c.ATTENDED, 4.5),
        ("a", 2, c.ATTENDED, 4.0),
        ("a", 3, c.NO_SHOW, np.nan),
        ("a", 4, c.ATTENDED, 4.6),
        ("b", 1, c.ATTENDED, 3.0),
        ("c", 1, c.CANCELLED, np.nan),
        ("d", 1, c.ATTENDED, 4.2),
    ]
)
OUTCOMES = pd.DataFrame(
    {
        c.CLIENT_ID: ["a", "b", "c", "d", "ghost"],
        c.STATUS: [c.COMPLETED, c.DROPOUT, c.DROPOUT, c.ONGOING, c.DROPOUT],
    }
)


def test_dropout_label_uses_status_and_leaves_ongoing_unlabeled():
    labels = episode_labels(OUTCOMES, SESSIONS, LabelConfig())
    assert labels.to_dict() == {"a": 0, "b": 1, "c": 1}


def test_early_termination_label_counts_attended_sessions():
    cfg = LabelConfig(definition=LabelDefinition.early_termination, min_attended=2)
    labels = episode_labels(OUTCOMES, SESSIONS, cfg)
    # a attended 3 (not early), b attended 1 (early), c attended 0 (early); d is ongoing
    assert labels.to_dict() == {"a": 0, "b": 1, "c": 1}


def test_early_termination_description_says_only_open_landmarks_are_used():
    text = describe_label(LabelConfig(definition=LabelDefinition.early_termination, min_attended=3))
    assert "fewer than 3 attended sessions = 1" in text
    # the model card and the run's tag carry this text: they must name the landmark restriction
    assert "only at landmarks where the client has attended fewer than 3 sessions so far" in text
    assert "landmarks" not in describe_label(LabelConfig())


@pytest.mark.parametrize(
    ("experiment", "kept_attended"),
    [("early_termination", [0, 1]), ("default", [0, 1, 2, 3])],
)
def test_training_keeps_the_landmarks_the_label_description_names(
    compose_cfg, experiment, kept_attended
):
    overrides = [] if experiment == "default" else [f"experiment={experiment}"]
    cfg = to_object(compose_cfg("train", overrides))
    attended = [0, 1, 2, 3]
    examples = Examples(
        X=pd.DataFrame({c.CLIENT_ID: list("abcd"), "attendance_attended": attended}),
        y=np.zeros(4, dtype=int),
        groups=np.array(list("abcd")),
    )
    kept = _open_label_rows(examples, cfg)
    assert kept.X["attendance_attended"].tolist() == kept_attended
    if experiment == "early_termination":
        assert f"fewer than {cfg.label.min_attended} sessions so far" in describe_label(cfg.label)


def test_reference_rules_use_only_rows_up_to_the_landmark():
    rows = pd.DataFrame({c.CLIENT_ID: ["a", "a", "a", "a"], "landmark_session": [1, 2, 3, 4]})
    scale = c.WAI_SR
    rules = reference_scores(
        SESSIONS, rows, scale, ReferenceRulesConfig(alert_cutoff=3.5, alert_drop=0.25)
    )
    # latest alliance carried over the no-show at session 3
    assert rules[LATEST_ALLIANCE].tolist() == pytest.approx([0.5, 1.0, 1.0, 0.4])
    # the drop 4.5 -> 4.0 alerts at session 2 and stays flagged while it is the latest rating
    assert rules[PCOMS_ALERT].tolist() == [0.0, 1.0, 1.0, 0.0]
    later_changed = SESSIONS.copy()
    later_changed.loc[3, c.ALLIANCE_CLIENT] = 1.0
    again = reference_scores(later_changed, rows.iloc[:3], scale, ReferenceRulesConfig())
    assert again[LATEST_ALLIANCE].tolist() == pytest.approx(rules[LATEST_ALLIANCE][:3].tolist())


def test_reference_rules_put_unrated_clients_at_the_midpoint_and_alert_low_alliance():
    rows = pd.DataFrame({c.CLIENT_ID: ["b", "c"], "landmark_session": [1, 1]})
    rules = reference_scores(SESSIONS, rows, c.WAI_SR, ReferenceRulesConfig(alert_cutoff=3.5))
    assert rules[LATEST_ALLIANCE].tolist() == pytest.approx([2.0, 2.0])
    assert rules[PCOMS_ALERT].tolist() == [1.0, 0.0]


def test_pcoms_alert_counts_a_drop_of_exactly_the_threshold():
    # 2.05 - 1.80 is 0.24999999999999978 in binary floating point, yet it is a 0.25-point drop
    sessions = sessions_frame([("e", 1, c.ATTENDED, 2.05), ("e", 2, c.ATTENDED, 1.80)])
    rows = pd.DataFrame({c.CLIENT_ID: ["e"], "landmark_session": [2]})
    # a cut-off below both ratings, so only the drop can raise the alert
    rules = reference_scores(
        sessions, rows, c.WAI_SR, ReferenceRulesConfig(alert_cutoff=1.0, alert_drop=0.25)
    )
    assert rules[PCOMS_ALERT].tolist() == [1.0]
