"""The whole DAG on a person's own files, through the CLI: load, dbt, model, verdicts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from orchestration.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "loaders"


def _one(warehouse: Path, sql: str):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def loaded_warehouse(tmp_path_factory, dbt_manifest):
    warehouse = tmp_path_factory.mktemp("files") / "warehouse.duckdb"
    code = main(["run", "--events", str(FIXTURES / "people"), "--users", str(FIXTURES / "users" / "users.csv"), "--warehouse", str(warehouse)])
    assert code == 0
    return warehouse


def test_every_active_user_day_of_the_files_gets_a_verdict(loaded_warehouse):
    active_days = _one(
        loaded_warehouse,
        "select count(*) from (select distinct user_id, listen_date from analytics.stg_listening__events)",
    )[0][0]
    verdicts = _one(loaded_warehouse, "select count(*), count(distinct (user_id, listen_date)) from analytics.user_day_verdicts")[0]
    assert active_days > 0
    assert verdicts == (active_days, active_days)


def test_the_load_reconciles_read_rows_with_loaded_quarantined_and_duplicates(loaded_warehouse):
    audits = _one(loaded_warehouse, "select rows_read, rows_loaded, rows_quarantined, rows_duplicate from raw.load_audit")
    assert len(audits) == 1
    read, loaded, quarantined, duplicate = audits[0]
    assert read == loaded + quarantined + duplicate
    assert loaded == _one(loaded_warehouse, "select count(*) from raw.listening_events")[0][0]


def test_loading_the_same_files_again_changes_nothing(loaded_warehouse, capsys):
    before = _one(loaded_warehouse, "select count(*), sum(hash(event_id)) from raw.listening_events")
    verdicts_before = _one(loaded_warehouse, "select count(*) from analytics.user_day_verdicts")
    code = main(["run", "--events", str(FIXTURES / "people"), "--users", str(FIXTURES / "users" / "users.csv"), "--warehouse", str(loaded_warehouse)])
    assert code == 0
    assert "no new plays" in capsys.readouterr().out
    assert _one(loaded_warehouse, "select count(*), sum(hash(event_id)) from raw.listening_events") == before
    assert _one(loaded_warehouse, "select count(*) from analytics.user_day_verdicts") == verdicts_before


def test_a_file_that_is_not_listening_history_fails_in_one_line_and_writes_nothing(loaded_warehouse, capsys):
    before = _one(loaded_warehouse, "select count(*) from raw.listening_events")
    code = main(["run", "--events", str(FIXTURES / "broken" / "empty.csv"), "--warehouse", str(loaded_warehouse)])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(error) == 1 and "empty.csv" in error[0]
    assert _one(loaded_warehouse, "select count(*) from raw.listening_events") == before
