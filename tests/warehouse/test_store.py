from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pytest

from warehouse.connection import WarehouseLockedError, WarehouseMissingError, connect
from warehouse.store import export_raw_tables, replace_date_window, replace_event_window, upsert_users


def _events(*plays: tuple[str, datetime, int]) -> pa.Table:
    return pa.table(
        {
            "user_id": [user for user, _, _ in plays],
            "played_at": pa.array([moment for _, moment, _ in plays], pa.timestamp("us")),
            "ms_played": [ms for _, _, ms in plays],
            "track_id": ["t1"] * len(plays),
        }
    )


def _labels(user: str, day: date) -> pa.Table:
    return pa.table(
        {
            "user_id": [user],
            "listen_date": pa.array([day], pa.date32()),
            "anomaly_type": ["marathon"],
            "severity": ["obvious"],
        }
    )


def test_rewriting_a_window_replaces_it_instead_of_adding_duplicates(warehouse_file):
    con = connect(warehouse_file)
    first = _events(("u1", datetime(2024, 1, 1, 10), 1000), ("u1", datetime(2024, 1, 2, 10), 2000))
    replace_event_window(con, first, date(2024, 1, 1), date(2024, 1, 3), source="simulator")
    replace_event_window(con, first, date(2024, 1, 1), date(2024, 1, 3), source="simulator")
    assert con.execute("select count(*) from raw.listening_events").fetchone()[0] == 2

    replacement = _events(("u2", datetime(2024, 1, 2, 11), 3000))
    replace_event_window(con, replacement, date(2024, 1, 2), date(2024, 1, 3), source="simulator")
    rows = con.execute("select user_id, cast(played_at as date) from raw.listening_events order by 2").fetchall()
    assert rows == [("u1", date(2024, 1, 1)), ("u2", date(2024, 1, 2))]


def test_event_ids_are_derived_deterministically_when_absent(warehouse_file):
    con = connect(warehouse_file)
    plays = _events(("u1", datetime(2024, 1, 1, 10), 1000), ("u1", datetime(2024, 1, 1, 11), 1000))
    replace_event_window(con, plays, date(2024, 1, 1), date(2024, 1, 2), source="simulator")
    first_ids = sorted(row[0] for row in con.execute("select event_id from raw.listening_events").fetchall())
    replace_event_window(con, plays, date(2024, 1, 1), date(2024, 1, 2), source="simulator")
    second_ids = sorted(row[0] for row in con.execute("select event_id from raw.listening_events").fetchall())
    assert first_ids == second_ids
    assert len(set(first_ids)) == 2 and all(first_ids)


def test_a_failed_write_leaves_the_window_as_it_was(warehouse_file):
    con = connect(warehouse_file)
    replace_event_window(con, _events(("u1", datetime(2024, 1, 1, 10), 1000)), date(2024, 1, 1), date(2024, 1, 2), source="simulator")
    broken_labels = pa.table({"user_id": ["u1"], "no_such_column": [1]})
    with pytest.raises(Exception):
        replace_event_window(
            con,
            _events(("u9", datetime(2024, 1, 1, 12), 5)),
            date(2024, 1, 1),
            date(2024, 1, 2),
            source="simulator",
            anomaly_labels=broken_labels,
        )
    assert con.execute("select user_id from raw.listening_events").fetchall() == [("u1",)]


def test_labels_of_the_window_are_replaced_with_the_events(warehouse_file):
    con = connect(warehouse_file)
    plays = _events(("u1", datetime(2024, 1, 1, 10), 1000))
    replace_event_window(con, plays, date(2024, 1, 1), date(2024, 1, 2), source="simulator", anomaly_labels=_labels("u1", date(2024, 1, 1)))
    replace_event_window(con, plays, date(2024, 1, 1), date(2024, 1, 2), source="simulator", anomaly_labels=_labels("u2", date(2024, 1, 1)))
    assert con.execute("select user_id from raw.anomaly_labels").fetchall() == [("u2",)]


def test_users_are_upserted_with_utc_when_the_zone_is_missing(warehouse_file):
    con = connect(warehouse_file)
    upsert_users(con, pa.table({"user_id": ["u1", "u2"], "timezone": ["Europe/Berlin", None]}))
    upsert_users(con, pa.table({"user_id": ["u1"], "timezone": ["Asia/Tokyo"]}))
    assert con.execute("select * from raw.users order by 1").fetchall() == [("u1", "Asia/Tokyo"), ("u2", "UTC")]


def test_date_window_replacement_creates_then_replaces(warehouse_file):
    import pandas as pd

    con = connect(warehouse_file)
    frame = pd.DataFrame({"user_id": ["a", "b"], "listen_date": [date(2024, 1, 1), date(2024, 1, 2)], "score": [1.0, 2.0]})
    replace_date_window(con, "analytics.scores", frame, date(2024, 1, 1), date(2024, 1, 3))
    replace_date_window(con, "analytics.scores", frame.iloc[1:].assign(score=5.0), date(2024, 1, 2), date(2024, 1, 3))
    assert con.execute("select user_id, score from analytics.scores order by 1").fetchall() == [("a", 1.0), ("b", 5.0)]


def test_a_column_new_to_the_table_is_added_and_null_outside_the_window(warehouse_file):
    import pandas as pd

    con = connect(warehouse_file)
    frame = pd.DataFrame({"user_id": ["a", "b"], "listen_date": [date(2024, 1, 1), date(2024, 1, 2)], "score": [1.0, 2.0]})
    replace_date_window(con, "analytics.scores", frame, date(2024, 1, 1), date(2024, 1, 3))
    newer = frame.iloc[1:].assign(hours=pd.array([16], dtype="Int64"))
    replace_date_window(con, "analytics.scores", newer, date(2024, 1, 2), date(2024, 1, 3))
    assert con.execute("select user_id, score, hours from analytics.scores order by 1").fetchall() == [
        ("a", 1.0, None),
        ("b", 2.0, 16),
    ]


def test_raw_tables_are_exported_as_one_parquet_folder_each(warehouse_file, tmp_path):
    con = connect(warehouse_file)
    plays = _events(("u1", datetime(2024, 1, 1, 10), 1000), ("u2", datetime(2024, 1, 1, 11), 2000))
    replace_event_window(con, plays, date(2024, 1, 1), date(2024, 1, 2), source="simulator")
    written = export_raw_tables(con, tmp_path / "raw")
    assert written["listening_events"] == 2 and written["load_audit"] == 0
    exported = con.execute(
        f"select * from read_parquet('{(tmp_path / 'raw' / 'listening_events').as_posix()}/*.parquet') order by event_id"
    ).fetchall()
    assert exported == con.execute("select * from raw.listening_events order by event_id").fetchall()
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(written)


def test_a_second_writer_gets_a_clear_lock_error(warehouse_file):
    import subprocess
    import sys

    connect(warehouse_file).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(warehouse_file)!r}); print('ready', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseLockedError, match="in use by another process"):
            connect(warehouse_file)
    finally:
        holder.kill()
        holder.wait()


def test_reading_a_missing_warehouse_says_how_to_create_it(tmp_path):
    with pytest.raises(WarehouseMissingError, match="make run"):
        connect(tmp_path / "absent.duckdb", read_only=True)
