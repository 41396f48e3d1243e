"""dbt's own unit tests (baselines point in time, cold start, two families, population day).

Dagster's partition builds leave them out (they test SQL, not data); this runs them, on empty
tables in a temporary warehouse, the way `dbt test` would.
"""

from __future__ import annotations

import re

from warehouse.connection import connect
from warehouse.store import ensure_raw_tables


def test_every_dbt_unit_test_passes(warehouse_file, dbt_manifest, dbt):
    with connect(warehouse_file) as con:
        ensure_raw_tables(con)
    done = dbt(["seed"], ["run", "--empty"], ["test", "--select", "test_type:unit"])
    assert done.returncode == 0, done.stdout
    tested = re.findall(r"PASS=(\d+) WARN=\d+ ERROR=(\d+)", done.stdout)[-1]
    assert int(tested[0]) > 0 and tested[1] == "0", done.stdout


def _load_plays(warehouse_file, event_ids: list[str]) -> None:
    """One user's plays four minutes apart, one per id (a repeated id is a repeated play)."""
    with connect(warehouse_file) as con:
        ensure_raw_tables(con)
        con.execute("insert into raw.users values ('u1', 'Europe/Berlin')")
        for minute, event_id in enumerate(event_ids):
            con.execute(
                "insert into raw.listening_events (event_id, user_id, played_at, ms_played, track_id, source)"
                " values (?, 'u1', timestamp '2024-01-10 14:00:00' + to_minutes(?), 200000, 't1', 'test')",
                [event_id, minute * 4],
            )


def test_the_staging_grain_test_fails_on_a_repeated_play(warehouse_file, dbt_manifest, dbt):
    """Every end-to-end run shows it passing on clean plays; this shows it can fail."""
    _load_plays(warehouse_file, ["e1", "e2", "e2"])
    done = dbt(["seed"], ["run", "--select", "stg_listening__events"], ["test", "--select", "stg_listening__events,test_type:data"])
    assert done.returncode != 0
    assert re.search(r"FAIL 1 one_complete_row_per_stg_listening__events", done.stdout), done.stdout


def test_the_complete_rows_test_names_the_columns_left_null(warehouse_file, dbt_manifest, dbt):
    _load_plays(warehouse_file, ["e1", "e2", "e3"])
    passed = dbt(["seed"], ["run"], ["test", "--select", "user_day_features,test_type:data"])
    assert passed.returncode == 0, passed.stdout
    with connect(warehouse_file) as con:
        con.execute("update analytics.user_day_features set short_play_share = null, night_share = null")
    tested = dbt(["test", "--select", "user_day_features,test_type:data", "--store-failures"])
    assert tested.returncode != 0
    assert re.search(r"FAIL 1 one_complete_row_per_user_day_features", tested.stdout), tested.stdout
    with connect(warehouse_file) as con:
        (audit_table,) = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_name like 'one_complete_row_per_user_day%'"
        ).fetchall()[0]
        failures = con.execute(f"select user_id, rows_with_key, columns_with_nulls from {audit_table}").fetchall()
    assert failures == [("u1", 1, "short_play_share, night_share")]
