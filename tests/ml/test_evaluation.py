from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from ml.evaluation import combine_runs, evaluate_detection, evaluation_markdown

START = date(2024, 3, 1)


def _day(i: int) -> date:
    return START + timedelta(days=i)


@pytest.fixture
def verdicts() -> pd.DataFrame:
    """Ten days of one user. Days 0-4 are labelled anomalies, 5-9 normal.

    rule_flag:  days 0, 1, 2 (TP) and 5 (FP)            -> 3 TP, 1 FP, 2 FN
    ml_flag:    days 0, 3 (TP) and 6, 7 (FP)            -> 2 TP, 2 FP, 3 FN
    is_anomaly: the union, days 0, 1, 2, 3, 5, 6, 7     -> 4 TP, 3 FP, 1 FN
    """
    rule = [True, True, True, False, False, True, False, False, False, False]
    ml = [True, False, False, True, False, False, True, True, False, False]
    return pd.DataFrame(
        {
            "user_id": "u1",
            "listen_date": [_day(i) for i in range(10)],
            "rule_flag": rule,
            "ml_flag": ml,
            "is_anomaly": np.logical_or(rule, ml),
            "ml_score": [0.9, 0.5, 0.4, 0.8, 0.3, 0.45, 0.85, 0.7, 0.35, 0.2],
        }
    )


@pytest.fixture
def labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": "u1",
            "listen_date": [_day(i) for i in range(5)],
            "anomaly_type": ["stream_farm", "stream_farm", "marathon", "marathon", "marathon"],
            "severity": "obvious",
        }
    )


def _value(evaluation, detector, metric, segment="all"):
    row = evaluation[(evaluation.detector == detector) & (evaluation.metric == metric) & (evaluation.segment == segment)]
    assert len(row) == 1, (detector, metric, segment)
    return row["value"].iloc[0]


@pytest.mark.parametrize(
    "detector, tp, fp, fn",
    [
        pytest.param("rules", 3, 1, 2, id="rules count 3 hits 1 false alarm 2 misses"),
        pytest.param("isolation_forest", 2, 2, 3, id="the forest counts 2 hits 2 false alarms 3 misses"),
        pytest.param("hybrid", 4, 3, 1, id="the hybrid counts the union of both"),
    ],
)
def test_precision_recall_f1_and_false_positive_rate_follow_the_counts(verdicts, labels, detector, tp, fp, fn):
    evaluation = evaluate_detection(verdicts, labels)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert _value(evaluation, detector, "true_positives") == tp
    assert _value(evaluation, detector, "precision") == pytest.approx(precision)
    assert _value(evaluation, detector, "recall") == pytest.approx(recall)
    assert _value(evaluation, detector, "f1") == pytest.approx(2 * precision * recall / (precision + recall))
    assert _value(evaluation, detector, "false_positive_rate") == pytest.approx(fp / 5)


def test_recall_per_anomaly_type(verdicts, labels):
    evaluation = evaluate_detection(verdicts, labels)
    assert _value(evaluation, "rules", "recall", "stream_farm") == 1.0
    assert _value(evaluation, "rules", "recall", "marathon") == pytest.approx(1 / 3)
    assert _value(evaluation, "isolation_forest", "recall", "marathon") == pytest.approx(1 / 3)


def test_pr_auc_is_the_average_precision_of_ml_score(verdicts, labels):
    # Ranked by score: days 0(+), 6(-), 3(+), 7(-), 1(+), 5(-), 2(+), 8(-), 4(+), 9(-).
    expected = np.mean([1 / 1, 2 / 3, 3 / 5, 4 / 7, 5 / 9])
    assert _value(evaluate_detection(verdicts, labels), "isolation_forest", "pr_auc") == pytest.approx(expected)


def test_flagged_rate_per_benign_scenario_ignores_labelled_anomaly_days(verdicts, labels):
    benign = pd.DataFrame(
        {"user_id": "u1", "listen_date": [_day(0), _day(5), _day(6), _day(8)], "scenario": ["travel", "travel", "holiday_spike", "travel"]}
    )
    evaluation = evaluate_detection(verdicts, labels, benign)
    travel = evaluation[(evaluation.detector == "rules") & (evaluation.segment == "travel")]
    assert travel["value"].iloc[0] == pytest.approx(1 / 2)
    assert travel["support"].iloc[0] == 2
    assert _value(evaluation, "isolation_forest", "flagged_rate", "holiday_spike") == 1.0


def test_no_labelled_anomalies_gives_nan_not_a_crash(verdicts, labels):
    evaluation = evaluate_detection(verdicts.assign(rule_flag=False), labels.iloc[:0])
    assert np.isnan(_value(evaluation, "rules", "recall"))
    assert np.isnan(_value(evaluation, "rules", "precision"))
    assert np.isnan(_value(evaluation, "isolation_forest", "pr_auc"))
    assert "–" in evaluation_markdown(evaluation)


def test_markdown_has_a_row_per_metric_and_a_column_per_detector(verdicts, labels):
    text = evaluation_markdown(evaluate_detection(verdicts, labels))
    lines = text.splitlines()
    assert lines[0] == "| metric | rules | isolation_forest | hybrid |"
    assert any(line.startswith("| precision | 0.750 | 0.500 | 0.571 |") for line in lines)
    assert any(line.startswith("| recall: marathon |") for line in lines)


def test_labels_without_their_columns_are_refused(verdicts, labels):
    with pytest.raises(ValueError, match="anomaly_type"):
        evaluate_detection(verdicts, labels.drop(columns=["anomaly_type"]))


def test_runs_combine_into_mean_and_spread_per_metric():
    def run(recall: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"detector": ["hybrid"], "metric": ["recall"], "segment": ["marathon"], "value": [recall], "support": [10]}
        )

    combined = combine_runs([run(0.8), run(1.0), run(0.9)])
    row = combined.iloc[0]
    assert row["value"] == pytest.approx(0.9)
    assert row["spread"] == pytest.approx(0.1)
    assert (row["support"], row["runs"]) == (30, 3)
    assert (row["lowest"], row["highest"]) == (0.8, 1.0)
    assert "| recall: marathon | 0.900 ± 0.100 (worst 0.800) |" in evaluation_markdown(combined)


def test_a_look_alikes_worst_run_is_its_highest_flagged_rate():
    def run(rate: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"detector": ["hybrid"], "metric": ["flagged_rate"], "segment": ["travel"], "value": [rate], "support": [100]}
        )

    text = evaluation_markdown(combine_runs([run(0.01), run(0.03), run(0.02)]))
    assert "| flagged rate: travel (benign) | 2.00% ± 1.00% (worst 3.00%) |" in text
