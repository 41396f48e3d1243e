"""Bulk, idempotent writes into the warehouse and the small read/write interface the Python steps use.

Every write of a time window deletes that window and inserts the new rows inside one
transaction: re-running a window gives the same tables, never duplicates, and a failure leaves
the warehouse as it was.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.connection import transaction
from warehouse.contract import DEFAULT_TIMEZONE, DERIVED_EVENT_ID_SQL, RAW_TABLE_DDL, conform_events


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``raw`` tables when they do not exist yet."""
    for ddl in RAW_TABLE_DDL.values():
        con.execute(ddl)


def _insert_events_sql(relation: str, source_sql: str) -> str:
    return f"""
        insert into raw.listening_events
        select
            coalesce(event_id, {DERIVED_EVENT_ID_SQL}) as event_id,
            user_id, played_at, ms_played, track_id, artist_id, track_duration_ms,
            skipped, platform, country, {source_sql} as source
        from {relation}
    """


def replace_event_window(
    con: duckdb.DuckDBPyConnection,
    events: pa.Table,
    start: date,
    end: date,
    *,
    source: str,
    anomaly_labels: pa.Table | None = None,
    benign_labels: pa.Table | None = None,
) -> int:
    """Replace the events of ``source`` played in ``[start, end)`` UTC with ``events``.

    Labels, when given, replace the labels whose ``listen_date`` lies in ``[start, end)``.
    Returns the number of events written.
    """
    ensure_raw_tables(con)
    incoming = conform_events(events)
    with transaction(con):
        con.execute(
            "delete from raw.listening_events where source = ? and played_at >= ? and played_at < ?",
            [source, start, end],
        )
        con.register("incoming_events", incoming)
        try:
            con.execute(_insert_events_sql("incoming_events", "?"), [source])
        finally:
            con.unregister("incoming_events")
        for table, labels in (("raw.anomaly_labels", anomaly_labels), ("raw.benign_labels", benign_labels)):
            if labels is None:
                continue
            con.execute(f"delete from {table} where listen_date >= ? and listen_date < ?", [start, end])
            con.register("incoming_labels", labels)
            try:
                con.execute(f"insert into {table} by name select * from incoming_labels")
            finally:
                con.unregister("incoming_labels")
    return incoming.num_rows


def upsert_users(con: duckdb.DuckDBPyConnection, users: pa.Table) -> int:
    """Insert or update users (``user_id``, ``timezone``). Returns the number of rows given."""
    ensure_raw_tables(con)
    con.register("incoming_users", users)
    try:
        with transaction(con):
            con.execute(
                """
                insert or replace into raw.users
                select user_id, coalesce(timezone, ?) from incoming_users
                """,
                [DEFAULT_TIMEZONE],
            )
    finally:
        con.unregister("incoming_users")
    return users.num_rows


def export_raw_tables(con: duckdb.DuckDBPyConnection, folder: str | Path) -> dict[str, int]:
    """Write every ``raw`` table as Parquet, ``<folder>/<table>/<table>.parquet``, for another engine.

    A folder per table is what a Spark catalog registers as a table (the dbt macro
    ``register_raw_parquet_tables``). Returns the rows written per table.
    """
    folder = Path(folder)
    ensure_raw_tables(con)
    written = {}
    for qualified_name in sorted(RAW_TABLE_DDL):
        table = qualified_name.split(".")[1]
        (folder / table).mkdir(parents=True, exist_ok=True)
        target = (folder / table / f"{table}.parquet").as_posix().replace("'", "''")
        (written[table],) = con.execute(f"copy {qualified_name} to '{target}' (format parquet)").fetchone()
    return written


def read_frame(con: duckdb.DuckDBPyConnection, sql: str, parameters: list | None = None) -> pd.DataFrame:
    """Run a query and return its result as a pandas DataFrame."""
    return con.execute(sql, parameters or []).df()


def table_exists(con: duckdb.DuckDBPyConnection, qualified_name: str) -> bool:
    """Whether ``schema.table`` exists in the warehouse."""
    schema, name = qualified_name.split(".")
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(found and found[0])


def table_columns(con: duckdb.DuckDBPyConnection, qualified_name: str) -> list[str]:
    """Names of the columns of ``schema.table``, in table order."""
    return [row[0] for row in con.execute(f"describe {qualified_name}").fetchall()]


def replace_date_window(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    start: date,
    end: date,
    *,
    date_column: str = "listen_date",
) -> int:
    """Replace the rows of ``table`` whose ``date_column`` lies in ``[start, end)`` with ``frame``.

    The table is created from ``frame``'s columns on first write; an empty frame has no column
    types to create it from, so it only clears the window of an existing table. A column the frame
    has and the table lacks (a table written by an older version) is added, null in the rows
    outside the window until they are rewritten. Returns rows written.
    """
    if frame.empty and not table_exists(con, table):
        return 0
    con.register("incoming_frame", frame)
    try:
        with transaction(con):
            if not table_exists(con, table):
                con.execute(f"create table {table} as select * from incoming_frame limit 0")
            existing = set(table_columns(con, table))
            for name, column_type, *_ in con.execute("describe incoming_frame").fetchall():
                if name not in existing:
                    con.execute(f'alter table {table} add column "{name}" {column_type}')
            con.execute(f"delete from {table} where {date_column} >= ? and {date_column} < ?", [start, end])
            con.execute(f"insert into {table} by name select * from incoming_frame")
    finally:
        con.unregister("incoming_frame")
    return len(frame)
