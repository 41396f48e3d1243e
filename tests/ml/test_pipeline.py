from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml import pipeline
from ml.model import load_latest_model, train_model
from ml.scoring import score_days
from ml.verdicts import build_verdicts
from warehouse.connection import connect
from warehouse.store import ensure_raw_tables, read_frame


@pytest.fixture
def con(tmp_path, flags_factory, planter):
    """A warehouse with 40 users x 20 days of rule flags, 8 planted night-short days labelled as anomalies."""
    connection = connect(tmp_path / "warehouse.duckdb")
    frame = flags_factory(n_users=40, n_days=20, seed=2)
    planted = np.arange(12, len(frame), 100)[:8]
    frame = planter(frame, planted)
    connection.register("flags_frame", frame)
    connection.execute("create table analytics.user_day_rule_flags as select * from flags_frame")
    connection.unregister("flags_frame")
    ensure_raw_tables(connection)
    labels = frame.iloc[planted][["user_id", "listen_date"]].assign(anomaly_type="night_short", severity="obvious")
    connection.register("labels_frame", labels)
    connection.execute("insert into raw.anomaly_labels by name select * from labels_frame")
    connection.unregister("labels_frame")
    yield connection
    connection.close()


def _run(con, model_dir):
    model = pipeline.train_from_warehouse(con, through=date(2024, 1, 20), window_days=20, model_dir=model_dir)
    scores = pipeline.score_window_to_warehouse(con, model, date(2024, 1, 1), date(2024, 1, 21))
    verdicts = pipeline.write_verdicts(con, date(2024, 1, 1), date(2024, 1, 21))
    return model, scores, verdicts, pipeline.evaluate_warehouse(con)


def test_train_score_verdicts_and_evaluation_end_to_end(con, tmp_path):
    model, scores, verdicts, evaluation = _run(con, tmp_path / "models")
    assert load_latest_model(tmp_path / "models").version == model.version
    assert model.n_training_rows == 800
    stored = read_frame(con, "select * from analytics.user_day_verdicts")
    assert len(stored) == 800 and len(scores) == 800
    assert set(stored["verdict"]) <= {"normal", "rule_only", "ml_only", "both"}
    types = dict(read_frame(con, "describe analytics.user_day_verdicts")[["column_name", "column_type"]].values)
    assert types["listen_date"] == "DATE"
    recall = evaluation.query("detector == 'isolation_forest' and metric == 'recall' and segment == 'all'")["value"].iloc[0]
    assert recall == 1.0
    stored_evaluation = read_frame(con, "select * from analytics.detection_evaluation")
    assert len(stored_evaluation) == len(evaluation)
    assert stored_evaluation["window_end"].iloc[0].date() == date(2024, 1, 21)


def test_rerunning_a_window_replaces_it(con, tmp_path):
    _run(con, tmp_path / "models")
    _run(con, tmp_path / "models")
    for table in ("analytics.user_day_ml_scores", "analytics.user_day_verdicts"):
        assert read_frame(con, f"select count(*) as n from {table}")["n"].iloc[0] == 800
    n_eval = read_frame(con, "select count(*) as n from analytics.detection_evaluation")["n"].iloc[0]
    assert n_eval == len(pipeline.evaluate_warehouse(con))


def test_each_step_reads_only_the_columns_it_uses_and_writes_what_every_column_gives(con, tmp_path):
    con.execute(
        "update analytics.user_day_rule_flags set rule_flag = true, rule_signal_count = 2, "
        "rule_signals = 'volume,timing', rule_reasons = 'plays: 90 vs usual 30' where user_id in ('u000', 'u003')"
    )
    model, scores, verdicts, _ = _run(con, tmp_path / "models")
    every_column = pipeline.read_rule_flags(con, date(2024, 1, 1), date(2024, 1, 21))
    assert train_model(every_column).version == model.version
    by_day = ["listen_date", "user_id"]
    expected_scores = score_days(model, every_column)
    assert expected_scores["ml_drivers"].str.contains(" vs usual ").any()
    pd.testing.assert_frame_equal(
        scores.sort_values(by_day, ignore_index=True), expected_scores.sort_values(by_day, ignore_index=True)
    )
    expected_verdicts = build_verdicts(every_column, expected_scores)
    assert set(expected_verdicts["verdict"]) == {"normal", "rule_only", "ml_only", "both"}
    pd.testing.assert_frame_equal(
        verdicts.sort_values(by_day, ignore_index=True), expected_verdicts.sort_values(by_day, ignore_index=True)
    )


@pytest.mark.parametrize(
    ("max_rows_per_chunk", "expected_reads"),
    [
        pytest.param(90, 10, id="40 user-days a day, 90 at a time: ten chunks of two days"),
        pytest.param(pipeline.MAX_ROWS_PER_CHUNK, 1, id="a small population's whole window at once"),
    ],
)
def test_scores_and_verdicts_do_not_depend_on_how_the_window_is_cut(
    con, tmp_path, monkeypatch, max_rows_per_chunk, expected_reads
):
    model, whole_scores, whole_verdicts, _ = _run(con, tmp_path / "models")
    read_windows = []
    read_rule_flags = pipeline.read_rule_flags

    def counted_read(connection, start, end, columns=None):
        read_windows.append((start, end))
        return read_rule_flags(connection, start, end, columns)

    monkeypatch.setattr(pipeline, "read_rule_flags", counted_read)
    monkeypatch.setattr(pipeline, "MAX_ROWS_PER_CHUNK", max_rows_per_chunk)
    scores = pipeline.score_window_to_warehouse(con, model, date(2024, 1, 1), date(2024, 1, 21))
    assert len(read_windows) == expected_reads
    verdicts = pipeline.write_verdicts(con, date(2024, 1, 1), date(2024, 1, 21))
    assert len(read_windows) == 2 * expected_reads
    by_day = ["listen_date", "user_id"]
    for written, whole in ((scores, whole_scores), (verdicts, whole_verdicts)):
        pd.testing.assert_frame_equal(
            written.sort_values(by_day, ignore_index=True), whole.sort_values(by_day, ignore_index=True)
        )
    assert read_frame(con, "select count(*) as n from analytics.user_day_verdicts")["n"].iloc[0] == 800


def test_restating_verdicts_reports_the_earlier_days_it_turned(con, tmp_path):
    _run(con, tmp_path / "models")
    normal = read_frame(
        con,
        "select user_id, listen_date from analytics.user_day_verdicts"
        " where not is_anomaly and not coalesce(ml_flag, false) order by listen_date, user_id",
    )
    restated_day, own_day = normal.iloc[0], normal[normal["listen_date"] >= pd.Timestamp(2024, 1, 12)].iloc[0]
    for day in (restated_day, own_day):
        con.execute(
            "update analytics.user_day_rule_flags set rule_flag = true, rule_signal_count = 3,"
            " rule_signals = 'volume,continuity,timing' where user_id = ? and listen_date = ?",
            [day["user_id"], day["listen_date"].date()],
        )
    verdicts, restated = pipeline.restate_verdicts(con, date(2024, 1, 1), date(2024, 1, 12), date(2024, 1, 21))
    assert len(verdicts) == 800
    assert restated[["user_id", "is_anomaly"]].values.tolist() == [[restated_day["user_id"], True]]
    assert pd.Timestamp(restated["listen_date"].iloc[0]) == restated_day["listen_date"]
    _, unchanged = pipeline.restate_verdicts(con, date(2024, 1, 1), date(2024, 1, 12), date(2024, 1, 21))
    assert unchanged.empty


def test_training_window_reads_only_the_trailing_days(con):
    model = pipeline.train_from_warehouse(con, window_days=7, min_rows=40 * 7)
    assert (model.trained_from, model.trained_through) == (date(2024, 1, 14), date(2024, 1, 20))
    assert model.n_training_rows == 40 * 7


def test_too_few_user_days_reach_back_until_there_are_enough(con):
    # 40 users a day: 500 user-days need 13 days.
    model = pipeline.train_from_warehouse(con, window_days=7, min_rows=500)
    assert (model.trained_from, model.trained_through) == (date(2024, 1, 8), date(2024, 1, 20))
    assert model.n_training_rows == 40 * 13


def test_a_history_shorter_than_the_minimum_is_used_whole(con):
    model = pipeline.train_from_warehouse(con, window_days=7, min_rows=10_000)
    assert (model.trained_from, model.trained_through) == (date(2024, 1, 1), date(2024, 1, 20))
    assert model.n_training_rows == 40 * 20


def test_evaluation_without_labels_is_none(con, tmp_path):
    _run(con, tmp_path / "models")
    con.execute("delete from raw.anomaly_labels")
    assert pipeline.evaluate_warehouse(con) is None


def test_an_empty_window_writes_nothing_and_does_not_fail(con):
    model = pipeline.train_from_warehouse(con)
    scores = pipeline.score_window_to_warehouse(con, model, date(2025, 1, 1), date(2025, 1, 2))
    assert scores.empty
    assert pipeline.write_verdicts(con, date(2025, 1, 1), date(2025, 1, 2)).empty


def test_missing_flags_table_says_what_to_build(tmp_path):
    connection = connect(tmp_path / "empty.duckdb")
    try:
        with pytest.raises(ValueError, match="user_day_rule_flags does not exist"):
            pipeline.train_from_warehouse(connection)
    finally:
        connection.close()
