"""Daily partitions and the pure functions that turn a partition window into work windows."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import dagster as dg

from ml.signals import dbt_var_defaults

# Spotify launched in 2008: no listening export starts earlier.
FIRST_PARTITION_DATE = "2008-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_PARTITION_DATE)


def partition_dates(window: dg.TimeWindow) -> tuple[date, date]:
    """The UTC dates ``[start, end)`` of a (possibly multi-day) partition window."""
    return _as_date(window.start), _as_date(window.end)


def dbt_vars(start: date, end: date) -> dict[str, str]:
    """dbt vars selecting the UTC partition window ``[start, end)`` (see dbt macros/run_window.sql)."""
    if end <= start:
        raise ValueError(f"empty partition window: {start} to {end}")
    return {"start_date": start.isoformat(), "end_date": end.isoformat()}


def partition_range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one Dagster run materialise the daily partitions ``first`` to ``last``
    (both inclusive): a backfill in one run when every selected asset has a single-run policy."""
    return {"dagster/asset_partition_range_start": first.isoformat(), "dagster/asset_partition_range_end": last.isoformat()}


#: Dagster's own switch, read when a run is created: a run over a range of days records one planned
#: materialisation per asset instead of one per asset and day. Over the 1,576 days of eleven people's
#: exports those were 14,262 events, 26 s of a 149 s run. What it gives up: the days of a range run
#: that fails are not marked failed in the UI (the run is, and the CLI says why).
PLAN_RANGE_RUNS_ONCE = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def plan_range_runs_once() -> None:
    """Make the runs this process creates plan a range of days as one event per asset
    (:data:`PLAN_RANGE_RUNS_ONCE`), unless the environment already says otherwise."""
    os.environ.setdefault(PLAN_RANGE_RUNS_ONCE, "true")


def listen_date_window(start: date, end: date) -> tuple[date, date]:
    """Local days ``[start - 1, end)`` recomputed for the UTC window ``[start, end)``.

    A UTC day's plays fall on local days from the day before to the day after; the day before
    is completed by this window, the last one is provisional until the next partition arrives.
    Mirrors ``listen_window_start``/``listen_window_end`` in the dbt project.
    """
    return start - timedelta(days=1), end


def restated_date_window(start: date, end: date) -> tuple[date, date]:
    """Local days ``[start - 1 - restated_days, end)`` whose verdicts a run over the UTC window
    ``[start, end)`` rewrites: those of :func:`listen_date_window` and the dbt var ``restated_days``
    before them, whose rule flags the run restates (a silence that became a lasting collapse in the
    window flags the days it began with). Mirrors ``restated_window_start`` in the dbt project.
    """
    first, last = listen_date_window(start, end)
    return first - timedelta(days=int(dbt_var_defaults()["restated_days"])), last


def _as_date(moment: datetime) -> date:
    return moment.date() if isinstance(moment, datetime) else moment
