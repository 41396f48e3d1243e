"""Writing simulated days into the warehouse, a few days at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

import duckdb

from warehouse.simulator import SimulationConfig, simulate_users, simulate_window
from warehouse.store import replace_event_window, upsert_users

SIMULATOR_SOURCE = "simulator"

# Seven simulated days of the default population are ~200k plays; a week per chunk keeps memory
# proportional to a week, not to the backfill, even at 40,000 users.
DEFAULT_CHUNK_DAYS = 7


@dataclass(frozen=True)
class IngestSummary:
    """What a write of simulated days did."""

    events_written: int
    anomaly_labels_written: int
    users_written: int
    days: int


def write_simulated_window(
    con: duckdb.DuckDBPyConnection,
    config: SimulationConfig,
    start: date,
    end: date,
    *,
    chunk_days: int = DEFAULT_CHUNK_DAYS,
    progress: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Simulate the UTC days ``[start, end)`` and replace them in ``raw``.

    Each chunk of ``chunk_days`` days is generated and written in one transaction, so re-running
    any window gives the same tables and an interrupted run leaves whole days behind.
    """
    users = simulate_users(config)
    upsert_users(con, users)
    events_written = labels_written = 0
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + timedelta(days=chunk_days), end)
        window = simulate_window(config, chunk_start, chunk_end)
        events_written += replace_event_window(
            con,
            window.events,
            chunk_start,
            chunk_end,
            source=SIMULATOR_SOURCE,
            anomaly_labels=window.anomaly_labels,
            benign_labels=window.benign_labels,
        )
        labels_written += window.anomaly_labels.num_rows
        if progress is not None:
            progress(f"simulated {chunk_start} to {chunk_end - timedelta(days=1)}: {events_written:,} plays so far")
        chunk_start = chunk_end
    return IngestSummary(
        events_written=events_written,
        anomaly_labels_written=labels_written,
        users_written=users.num_rows,
        days=(end - start).days,
    )
