from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml.model import ModelFileError, load_latest_model, load_model, save_model, train_model
import ml.scoring
from ml.scoring import score_days


@pytest.fixture
def planted(flags_factory, planter):
    """1,200 ordinary days and 12 planted night-short days (1 %) on seasoned users."""
    frame = flags_factory(n_users=60, n_days=20, seed=1)
    rows = np.arange(15, len(frame), 100)[:12]
    return planter(frame, rows), rows


def test_training_is_deterministic_with_a_fixed_random_state(flags):
    first, second = train_model(flags, random_state=3), train_model(flags.sample(frac=1.0, random_state=9), random_state=3)
    assert first.version == second.version
    assert first.threshold == second.threshold
    assert np.array_equal(score_days(first, flags)["ml_score"], score_days(second, flags)["ml_score"])


def test_another_random_state_gives_another_version(flags):
    assert train_model(flags, random_state=0).version != train_model(flags, random_state=1).version


def test_version_names_the_last_training_day(flags):
    model = train_model(flags)
    assert model.version.startswith("iforest-20240120-")
    assert (model.trained_from, model.trained_through) == (date(2024, 1, 1), date(2024, 1, 20))
    assert model.n_training_rows == len(flags)


def test_training_rows_are_capped_by_a_seeded_sample(flags):
    model = train_model(flags, max_training_rows=500)
    assert model.n_training_rows == 500
    assert model.version == train_model(flags, max_training_rows=500).version


def test_planted_night_short_days_score_highest_and_are_flagged(planted):
    frame, rows = planted
    scores = score_days(train_model(frame), frame)
    is_planted = np.zeros(len(frame), bool)
    is_planted[rows] = True
    assert scores["ml_score"][is_planted].min() > scores["ml_score"][~is_planted].quantile(0.99)
    assert scores["ml_flag"][is_planted].all()
    assert scores["ml_flag"][~is_planted].mean() <= 0.015


def test_a_day_that_departs_only_in_amount_is_left_to_the_rules(planted):
    frame, rows = planted
    long_day = 16  # a seasoned user's day next to the first planted one
    frame = frame.copy()
    frame.loc[frame.index[long_day], ["minutes_played", "play_count", "active_hours", "longest_session_minutes"]] = [
        900.0, 300.0, 16.0, 600.0,
    ]
    frame.loc[frame.index[long_day], ["minutes_played_z", "play_count_z", "active_hours_z", "longest_session_minutes_z"]] = 8.0
    model = train_model(frame)
    model.threshold = -np.inf  # every score is above it: only the amount rule can keep a day unflagged
    scores = score_days(model, frame)
    assert not scores["ml_flag"].iloc[long_day]
    assert scores["ml_drivers"].iloc[long_day] == ""
    assert scores["ml_flag"].iloc[rows].all()
    assert scores["ml_score"].iloc[long_day] > scores["ml_score"].median()


def test_flagged_days_name_their_drivers_with_numbers(planted):
    frame, rows = planted
    scores = score_days(train_model(frame), frame)
    driver = scores["ml_drivers"].iloc[rows[0]]
    assert "short" in driver or "night" in driver
    assert any(ch.isdigit() for ch in driver)
    assert (scores.loc[~scores["ml_flag"], "ml_drivers"] == "").all()


def test_drivers_are_words_not_column_names(planted):
    frame, rows = planted
    scores = score_days(train_model(frame), frame)
    drivers = "; ".join(scores.loc[scores["ml_flag"], "ml_drivers"])
    assert drivers
    assert "_" not in drivers, drivers


def test_short_plays_are_named_by_the_rules_threshold(planted, monkeypatch):
    frame, rows = planted
    model = train_model(frame)
    night_short = score_days(model, frame)["ml_drivers"].iloc[rows].str.contains("short plays at night")
    assert night_short.any()
    monkeypatch.setattr(ml.scoring, "dbt_var_defaults", lambda: {"short_play_seconds": 33})
    drivers = score_days(model, frame)["ml_drivers"].iloc[rows][night_short.to_numpy()]
    assert drivers.str.contains("under 33 s").all(), drivers.tolist()


def test_scores_have_the_contract_columns_and_dates(flags):
    model = train_model(flags)
    scores = score_days(model, flags)
    assert list(scores.columns) == [
        "user_id", "listen_date", "ml_score", "ml_flag", "ml_drivers", "model_version", "is_engagement_departure",
    ]
    unmeasured = flags["play_count_z"].isna().to_numpy()
    assert unmeasured.any() and not unmeasured.all()
    assert scores["is_engagement_departure"].isna().to_numpy().tolist() == unmeasured.tolist()
    assert isinstance(scores["listen_date"].iloc[0], date)
    assert (scores["model_version"] == model.version).all()


def test_save_and_load_give_identical_scores(flags, tmp_path):
    model = train_model(flags)
    path = save_model(model, tmp_path / "models")
    loaded = load_model(path)
    assert loaded.version == model.version
    pd.testing.assert_frame_equal(score_days(loaded, flags), score_days(model, flags))
    assert load_latest_model(tmp_path / "models").version == model.version


def test_saving_keeps_only_the_most_recent_models(flags, tmp_path):
    import dataclasses

    folder = tmp_path / "models"
    model = train_model(flags)
    days = ["20240101", "20240108", "20240115", "20240122"]
    for day in days:
        save_model(dataclasses.replace(model, version=f"iforest-{day}-00000000"), folder, keep=2)
    assert sorted(p.name for p in folder.iterdir()) == [f"iforest-{day}-00000000.joblib" for day in days[-2:]]
    assert load_latest_model(folder).version == f"iforest-{days[-1]}-00000000"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(None, id="a missing file says to train first"),
        pytest.param(b"not a model", id="a foreign file is rejected"),
    ],
)
def test_unusable_model_files_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "iforest-20240101-00000000.joblib"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=str(path)):
        load_model(path)


def test_a_model_of_another_format_is_rejected(flags, tmp_path):
    import joblib

    path = tmp_path / "old.joblib"
    joblib.dump({"format": 0, "sklearn_version": "0.0", "model": train_model(flags)}, path)
    with pytest.raises(ModelFileError, match="format"):
        load_model(path)


def test_training_on_nothing_is_refused(flags):
    with pytest.raises(ValueError, match="empty"):
        train_model(flags.iloc[:0])


def test_scoring_without_required_columns_names_them(flags):
    model = train_model(flags)
    with pytest.raises(ValueError, match="skip_rate_z"):
        score_days(model, flags.drop(columns=["skip_rate_z"]))


def test_the_threshold_sits_the_given_robust_deviations_above_the_median():
    from ml.model import calibrate_threshold

    scores = np.array([0.40, 0.42, 0.44, 0.46, 0.48, 0.90])
    median = np.median(scores)
    robust_sd = 1.4826 * np.median(np.abs(scores - median))
    assert calibrate_threshold(scores, 5.0) == pytest.approx(median + 5 * robust_sd)
    assert calibrate_threshold(scores, 5.0) < 0.90 < calibrate_threshold(scores, 40.0)
