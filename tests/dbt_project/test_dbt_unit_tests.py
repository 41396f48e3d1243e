"""dbt's own unit tests (baselines point in time, cold start, two families, population day).

Dagster's partition builds leave them out (they test SQL, not data); this runs them, on empty
tables in a temporary warehouse, the way `dbt test` would.
"""

from __future__ import annotations

import re
import subprocess

from orchestration.dbt import DBT_EXECUTABLE, DBT_PROJECT_DIR
from warehouse.connection import connect
from warehouse.store import ensure_raw_tables


def _dbt(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DBT_EXECUTABLE, *arguments, "--profiles-dir", str(DBT_PROJECT_DIR)],
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
    )


def test_every_dbt_unit_test_passes(warehouse_file, dbt_manifest):
    with connect(warehouse_file) as con:
        ensure_raw_tables(con)
    seeded = _dbt("seed")
    assert seeded.returncode == 0, seeded.stdout
    built = _dbt("run", "--empty")
    assert built.returncode == 0, built.stdout
    tested = _dbt("test", "--select", "test_type:unit")
    assert tested.returncode == 0, tested.stdout
    summary = re.search(r"PASS=(\d+) WARN=\d+ ERROR=(\d+)", tested.stdout)
    assert summary and int(summary.group(1)) > 0 and summary.group(2) == "0", tested.stdout


def test_the_staging_grain_test_fails_on_a_repeated_play(warehouse_file, dbt_manifest):
    """Every end-to-end run shows it passing on clean plays; this shows it can fail."""
    with connect(warehouse_file) as con:
        ensure_raw_tables(con)
        con.execute("insert into raw.users values ('u1', 'Europe/Berlin')")
        for minute, event_id in enumerate(["e1", "e2", "e2"]):
            con.execute(
                "insert into raw.listening_events (event_id, user_id, played_at, ms_played, track_id, source)"
                " values (?, 'u1', timestamp '2024-01-10 14:00:00' + to_minutes(?), 200000, 't1', 'test')",
                [event_id, minute * 4],
            )
    assert _dbt("seed").returncode == 0
    assert _dbt("run", "--select", "stg_listening__events").returncode == 0
    tested = _dbt("test", "--select", "stg_listening__events,test_type:data")
    assert tested.returncode != 0
    assert re.search(r"FAIL 1 one_complete_row_per_stg_listening__events", tested.stdout), tested.stdout
