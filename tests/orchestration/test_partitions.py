from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import pytest

from orchestration.partitions import dbt_vars, listen_date_window, partition_dates


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


def test_partition_dates_of_a_multi_day_time_window():
    window = dg.TimeWindow(datetime(2024, 3, 1), datetime(2024, 3, 4))
    assert partition_dates(window) == (date(2024, 3, 1), date(2024, 3, 4))
