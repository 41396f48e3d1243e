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
