"""DDL of the loader's own raw tables: the quarantine and the load audit.

They live next to the tables of :data:`warehouse.contract.RAW_TABLE_DDL` in the ``raw`` schema.
``raw.quarantined_events`` holds every input row that was not loaded (with its reason) and
``raw.load_audit`` one row per load, so that ``rows_read = rows_loaded + rows_quarantined +
rows_duplicate`` can be tested in SQL.
"""

from __future__ import annotations

import duckdb

from warehouse.store import ensure_raw_tables

LOADER_TABLE_DDL = {
    "raw.quarantined_events": """
        create table if not exists raw.quarantined_events (
            quarantine_id varchar not null,
            load_id varchar not null,
            row_kind varchar not null,       -- 'event' or 'user' (a users-file row)
            source_file varchar not null,
            row_number bigint not null,
            reason varchar not null,
            original_row varchar,
            loaded_at timestamp not null
        )
    """,
    "raw.load_audit": """
        create table if not exists raw.load_audit (
            load_id varchar not null,
            loaded_at timestamp not null,
            rows_read bigint not null,
            rows_loaded bigint not null,
            rows_quarantined bigint not null,
            rows_duplicate bigint not null,
            rows_non_music bigint not null,
            first_played_at timestamp,
            last_played_at timestamp,
            files_read bigint,
            files_ignored bigint,
            user_rows_quarantined bigint
        )
    """,
}


def ensure_loader_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables of the contract and the loader's own tables when missing."""
    ensure_raw_tables(con)
    for ddl in LOADER_TABLE_DDL.values():
        con.execute(ddl)
