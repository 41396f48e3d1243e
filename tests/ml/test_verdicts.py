from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml.verdicts import VERDICT_COLUMNS, build_verdicts, changed_verdicts, top_anomalies_markdown, verdict_summary

DAY = date(2024, 2, 1)


@pytest.fixture
def flags() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["normal", "rules", "model", "both", "unscored"],
            "listen_date": [DAY] * 5,
            "observed_until_hour": [24, 24, 24, 16, 24],
            "baseline_days": [20, 20, 2, 20, 20],
            "is_cold_start": [False, False, True, False, False],
            "rule_flag": [False, True, False, True, False],
            "rule_signal_count": [0, 2, 0, 3, 0],
            "rule_signals": ["", "volume,continuity", "", "volume,engagement,timing", ""],
            "rule_reasons": ["", "412 min vs usual 65; longest session 380 min vs usual 40", "",
                             "1,800 plays vs usual 30; 78% plays under 40 s vs usual 4%", ""],
            "play_count": [30, 140, 900, 1800, 20],
        }
    )


@pytest.fixture
def scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["normal", "rules", "model", "both"],
            "listen_date": [pd.Timestamp(DAY)] * 4,
            "ml_score": [0.41, 0.52, 0.71, 0.80],
            "ml_flag": [False, False, True, True],
            "ml_drivers": ["", "", "short plays at night: 85% of plays at night, 90% under 40 s",
                           "median_play_seconds 33 s vs usual 190 s"],
            "model_version": "iforest-20240131-abcdef12",
        }
    )


def test_every_verdict_kind_comes_from_its_flags(flags, scores):
    verdicts = build_verdicts(flags, scores)
    assert list(verdicts.columns) == VERDICT_COLUMNS
    assert verdicts["verdict"].tolist() == ["normal", "rule_only", "ml_only", "both", "normal"]
    assert verdicts["is_anomaly"].tolist() == [False, True, True, True, False]


def test_a_day_still_running_says_until_when_it_is_observed(flags, scores):
    verdicts = build_verdicts(flags, scores).set_index("user_id")
    assert verdicts.loc["both", "observed_until_hour"] == 16
    assert (verdicts.drop(index="both")["observed_until_hour"] == 24).all()


def test_an_unscored_day_keeps_its_rule_verdict_without_a_score(flags, scores):
    verdicts = build_verdicts(flags, scores).set_index("user_id")
    assert np.isnan(verdicts.loc["unscored", "ml_score"])
    assert not verdicts.loc["unscored", "ml_flag"]
    assert verdicts.loc["unscored", "model_version"] is None


@pytest.mark.parametrize(
    "user, expected",
    [
        pytest.param("rules", r"^Rules \(volume, continuity\): 412 min vs usual 65", id="rule reasons come with numbers"),
        pytest.param("model", r"Isolation Forest \(score 0\.71\): short plays at night: 85%", id="model drivers come with numbers"),
        pytest.param("model", r"too few baseline days \(2\) for the rules' deviations", id="a cold-start day says why the rules did not judge it"),
        pytest.param("both", r"^Rules .*78% plays under 40 s.*\. Isolation Forest .*33 s vs usual 190 s\.$", id="rules first then the model"),
        pytest.param("normal", r"^within usual pattern$", id="a normal day reads as usual"),
    ],
)
def test_reasons_read_as_a_sentence(flags, scores, user, expected):
    reasons = build_verdicts(flags, scores).set_index("user_id").loc[user, "reasons"]
    assert re.search(expected, reasons), reasons


@pytest.mark.parametrize(
    "user, engagement_departs, verdict",
    [
        pytest.param("model", True, "ml_only", id="the plays are played differently: the forest counts alone"),
        pytest.param("model", False, "normal", id="the rules judged every other change"),
        pytest.param("model", None, "ml_only", id="no baseline to tell by: the forest counts alone"),
        pytest.param("both", False, "both", id="with the rules the forest's flag always counts"),
    ],
)
def test_a_forest_flag_alone_counts_where_the_rules_cannot_judge(flags, scores, user, engagement_departs, verdict):
    departs = pd.array([engagement_departs if u == user else True for u in scores["user_id"]], dtype="boolean")
    row = build_verdicts(flags, scores.assign(is_engagement_departure=departs)).set_index("user_id").loc[user]
    assert row["verdict"] == verdict
    assert row["is_anomaly"] == (verdict != "normal")
    assert row["ml_flag"], "the forest's own flag is kept, counted or not"


def test_a_forest_flag_that_does_not_count_alone_says_so(flags, scores):
    reasons = build_verdicts(flags, scores.assign(is_engagement_departure=False)).set_index("user_id").loc["model", "reasons"]
    assert reasons.startswith("within usual pattern: the Isolation Forest scores it 0.71 (short plays at night: 85%")
    assert "how the plays are played" in reasons


def test_scores_written_before_engagement_departures_keep_their_verdicts(flags, scores):
    assert build_verdicts(flags, scores).set_index("user_id").loc["model", "verdict"] == "ml_only"


def test_one_row_per_flags_row_even_with_duplicate_scores(flags, scores):
    doubled = pd.concat([scores, scores])
    assert len(build_verdicts(flags, doubled)) == len(flags)


def test_missing_columns_are_named(flags, scores):
    with pytest.raises(ValueError, match="rule_reasons"):
        build_verdicts(flags.drop(columns=["rule_reasons"]), scores)
    with pytest.raises(ValueError, match="ml_drivers"):
        build_verdicts(flags, scores.drop(columns=["ml_drivers"]))


def test_summary_counts_every_kind(flags, scores):
    summary = verdict_summary(build_verdicts(flags, scores)).set_index("verdict")
    assert summary["days"].to_dict() == {"normal": 2, "rule_only": 1, "ml_only": 1, "both": 1}
    assert summary["share"].sum() == pytest.approx(1.0)


def test_top_anomalies_put_agreement_first_and_skip_normal_days(flags, scores):
    table = top_anomalies_markdown(build_verdicts(flags, scores), n=2)
    lines = table.splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| both |")
    assert "normal" not in table


def test_top_anomalies_of_a_quiet_day(flags, scores):
    quiet = build_verdicts(flags.assign(rule_flag=False), scores.assign(ml_flag=False))
    assert top_anomalies_markdown(quiet) == "No anomalous user-days."


def test_changed_verdicts_are_the_days_whose_anomaly_turned(flags, scores):
    verdicts = build_verdicts(flags, scores)
    earlier = pd.DataFrame(
        {
            "user_id": ["normal", "rules", "model", "both"],
            "listen_date": [pd.Timestamp(DAY)] * 4,
            "is_anomaly": [True, False, True, True],
        }
    )
    changed = changed_verdicts(earlier, verdicts)
    assert list(changed.columns) == VERDICT_COLUMNS
    # "unscored" is absent from the earlier verdicts: a new day, not a changed one.
    assert changed[["user_id", "is_anomaly"]].values.tolist() == [["normal", False], ["rules", True]]
    assert changed_verdicts(earlier.iloc[:0], verdicts).empty
