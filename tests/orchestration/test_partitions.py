from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import dagster as dg
import pytest

from ml.signals import dbt_var_defaults
from orchestration.partitions import (
    PLAN_RANGE_RUNS_ONCE,
    dbt_vars,
    listen_date_window,
    partition_dates,
    partition_range_tags,
    plan_range_runs_once,
    restated_date_window,
)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(date(2024, 3, 1), date(2024, 3, 2), {"start_date": "2024-03-01", "end_date": "2024-03-02"}, id="one day is a half-open one-day window"),
        pytest.param(date(2024, 2, 28), date(2024, 3, 2), {"start_date": "2024-02-28", "end_date": "2024-03-02"}, id="a range crossing a leap day keeps its bounds"),
    ],
)
def test_dbt_vars_are_the_half_open_partition_window(start, end, expected):
    assert dbt_vars(start, end) == expected


def test_an_empty_window_is_refused():
    with pytest.raises(ValueError, match="empty partition window"):
        dbt_vars(date(2024, 3, 2), date(2024, 3, 2))


def test_listen_window_starts_a_day_before_the_utc_window():
    assert listen_date_window(date(2024, 3, 10), date(2024, 3, 11)) == (date(2024, 3, 9), date(2024, 3, 11))


def test_verdicts_are_restated_as_far_back_as_the_rule_flags():
    restated_days = dbt_var_defaults()["restated_days"]
    assert restated_days >= 1
    assert restated_date_window(date(2024, 3, 10), date(2024, 3, 11)) == (
        date(2024, 3, 9) - timedelta(days=restated_days),
        date(2024, 3, 11),
    )


def test_partition_dates_of_a_multi_day_time_window():
    window = dg.TimeWindow(datetime(2024, 3, 1), datetime(2024, 3, 4))
    assert partition_dates(window) == (date(2024, 3, 1), date(2024, 3, 4))


def _planned_materialisations_of_a_three_day_run() -> int:
    @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2024-01-01"), backfill_policy=dg.BackfillPolicy.single_run())
    def daily_asset() -> None:
        pass

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([daily_asset], instance=instance, tags=partition_range_tags(date(2024, 1, 1), date(2024, 1, 3)))
    records = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return len(records.records)


def test_a_range_run_is_planned_once_per_asset_not_once_per_day(monkeypatch):
    """Guards the pinned Dagster: the switch is an environment variable it reads when creating a run."""
    monkeypatch.setattr(os, "environ", {key: value for key, value in os.environ.items() if key != PLAN_RANGE_RUNS_ONCE})
    assert _planned_materialisations_of_a_three_day_run() == 3
    plan_range_runs_once()
    assert _planned_materialisations_of_a_three_day_run() == 1


def test_an_explicit_setting_of_the_switch_is_kept(monkeypatch):
    monkeypatch.setenv(PLAN_RANGE_RUNS_ONCE, "false")
    plan_range_runs_once()
    assert os.environ[PLAN_RANGE_RUNS_ONCE] == "false"
