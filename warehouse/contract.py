"""The canonical raw-event contract every source produces (DESIGN.md, "Contracts").

``played_at`` is the UTC start of the play, stored as a naive ``TIMESTAMP`` meaning UTC.
``event_id`` is optional on input: when absent it is derived deterministically from the play
itself, so loading the same play twice yields the same id (and is counted as a duplicate).
"""

from __future__ import annotations

import pyarrow as pa

REQUIRED_EVENT_COLUMNS = ("user_id", "played_at", "ms_played", "track_id")
OPTIONAL_EVENT_COLUMNS = (
    "artist_id",
    "track_duration_ms",
    "skipped",
    "platform",
    "country",
    "event_id",
)

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("played_at", pa.timestamp("us"), nullable=False),
        pa.field("ms_played", pa.int64(), nullable=False),
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("artist_id", pa.string()),
        pa.field("track_duration_ms", pa.int64()),
        pa.field("skipped", pa.bool_()),
        pa.field("platform", pa.string()),
        pa.field("country", pa.string()),
    ]
)

USER_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("timezone", pa.string(), nullable=False),
    ]
)

ANOMALY_LABEL_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("listen_date", pa.date32(), nullable=False),
        pa.field("anomaly_type", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
    ]
)

BENIGN_LABEL_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("listen_date", pa.date32(), nullable=False),
        pa.field("scenario", pa.string(), nullable=False),
    ]
)

DEFAULT_TIMEZONE = "UTC"

RAW_TABLE_DDL = {
    "raw.listening_events": """
        create table if not exists raw.listening_events (
            event_id varchar not null,
            user_id varchar not null,
            played_at timestamp not null,
            ms_played bigint not null,
            track_id varchar not null,
            artist_id varchar,
            track_duration_ms bigint,
            skipped boolean,
            platform varchar,
            country varchar,
            source varchar not null
        )
    """,
    "raw.users": """
        create table if not exists raw.users (
            user_id varchar primary key,
            timezone varchar not null
        )
    """,
    "raw.anomaly_labels": """
        create table if not exists raw.anomaly_labels (
            user_id varchar not null,
            listen_date date not null,
            anomaly_type varchar not null,
            severity varchar not null
        )
    """,
    "raw.benign_labels": """
        create table if not exists raw.benign_labels (
            user_id varchar not null,
            listen_date date not null,
            scenario varchar not null
        )
    """,
    # Every input row of a file load that was not loaded, with its reason (never IPs, user agents or usernames).
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
    # One row per file load: rows_read = rows_loaded + rows_quarantined + rows_duplicate.
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

# A play is identified by who played what, when, for how long: the same play loaded twice gets
# the same id whatever file it came from.
DERIVED_EVENT_ID_SQL = (
    "md5(concat_ws('|', user_id, strftime(played_at, '%Y-%m-%dT%H:%M:%S.%f'), track_id, "
    "cast(ms_played as varchar)))"
)


def conform_events(table: pa.Table) -> pa.Table:
    """Return ``table`` with exactly the columns of :data:`EVENT_SCHEMA`, in order.

    Missing optional columns become nulls; required columns must be present.
    """
    missing = [name for name in REQUIRED_EVENT_COLUMNS if name not in table.column_names]
    if missing:
        raise ValueError(f"events are missing required column(s): {', '.join(missing)}")
    columns = []
    for field in EVENT_SCHEMA:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA.remove_metadata())
