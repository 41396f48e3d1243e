"""Runs a few days at a time build the same tables as one run over all of them.

The daily schedule materialises one UTC day at a time, before the next day's plays exist. West of
UTC a run's last local day is then still running when its data ends (``observed_until_hour`` below
24), and the next run recomputes it. Two runs, days 1-8 and then days 9-12 (whose plays arrive
only with the second run), must leave the same features, baselines and rule flags as one run over
days 1-12; the window crosses the US change to daylight-saving time.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

START = date(2024, 3, 1)
DAYS = 12
FIRST_RUN_DAYS = 8
TABLES = ("user_day_features", "user_day_baselines", "user_day_rule_flags")
#: Columns of the rule flags a daily run reads back from the table, which tables written before them lack.
SILENCE_COLUMNS = ("near_silent_since", "near_silent_days", "light_day_play_count_before_silence")


def _materialise_events_and_dbt(warehouse: Path, first_day: date, last_day: date) -> None:
    import dagster as dg

    from orchestration import assets, definitions
    from orchestration.partitions import partition_range_tags
    from orchestration.resources import ListeningSourceResource, WarehouseResource

    source = ListeningSourceResource(n_users=40, n_days=DAYS, start_date=START.isoformat(), seed=5)
    with contextlib.redirect_stdout(io.StringIO()):
        result = dg.materialize(
            [*definitions.defs.assets, *definitions.defs.asset_checks],
            selection=dg.AssetSelection.assets(assets.raw_listening_events, assets.listening_dbt_models),
            resources={
                "warehouse": WarehouseResource(path=str(warehouse)),
                "source": source,
                "dbt": definitions.defs.resources["dbt"],
            },
            tags=partition_range_tags(first_day, last_day),
        )
    assert result.success


def _tables(warehouse: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            table: con.execute(f"select * from analytics.{table} order by user_id, listen_date").df() for table in TABLES
        }


def _running_days(warehouse: Path) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select listen_date, count(*) as days from analytics.user_day_features where observed_until_hour < 24 group by 1"
        ).df()


@pytest.fixture(scope="module")
def built(tmp_path_factory, dbt_manifest):
    folder = tmp_path_factory.mktemp("daily")
    last_day = START + timedelta(days=DAYS - 1)
    split_day = START + timedelta(days=FIRST_RUN_DAYS)
    _materialise_events_and_dbt(folder / "one_run.duckdb", START, last_day)
    _materialise_events_and_dbt(folder / "two_runs.duckdb", START, split_day - timedelta(days=1))
    running_after_first_run = _running_days(folder / "two_runs.duckdb")
    shutil.copy(folder / "two_runs.duckdb", folder / "older_table.duckdb")
    with duckdb.connect(str(folder / "older_table.duckdb")) as con:
        for column in SILENCE_COLUMNS:
            con.execute(f"alter table analytics.user_day_rule_flags drop column {column}")
    _materialise_events_and_dbt(folder / "two_runs.duckdb", split_day, last_day)
    _materialise_events_and_dbt(folder / "older_table.duckdb", split_day, last_day)
    return {
        "one run": _tables(folder / "one_run.duckdb"),
        "two runs": _tables(folder / "two_runs.duckdb"),
        "older table": _tables(folder / "older_table.duckdb"),
        "running after the first run": running_after_first_run,
        "running after the second run": _running_days(folder / "two_runs.duckdb"),
        "last day": last_day,
        "first run's last day": split_day - timedelta(days=1),
    }


def test_the_first_run_ends_on_days_still_running(built):
    running = built["running after the first run"]
    assert not running.empty
    assert set(pd.to_datetime(running["listen_date"]).dt.date) == {built["first run's last day"]}


def test_the_next_run_completes_them(built):
    running = built["running after the second run"]
    assert set(pd.to_datetime(running["listen_date"]).dt.date) <= {built["last day"]}


@pytest.mark.parametrize("table", TABLES)
def test_two_runs_build_the_same_table_as_one(built, table):
    pd.testing.assert_frame_equal(built["two runs"][table], built["one run"][table])


def test_a_table_from_before_the_silence_columns_takes_the_next_run(built):
    """The run reads the day before its window back from the table; one written by an earlier version
    lacks those columns, and the run starts its silences afresh instead of failing."""
    older, one_run = built["older table"]["user_day_rule_flags"], built["one run"]["user_day_rule_flags"]
    assert set(SILENCE_COLUMNS) <= set(older.columns)
    pd.testing.assert_series_equal(older["rule_flag"], one_run["rule_flag"])
    # Whether a day is near silent does not depend on the run before: the second run writes it.
    in_second_run = pd.to_datetime(older["listen_date"]).dt.date > built["first run's last day"]
    pd.testing.assert_series_equal(
        older.loc[in_second_run, "near_silent_since"].notna(), one_run.loc[in_second_run, "near_silent_since"].notna()
    )
