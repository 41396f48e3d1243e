"""Half-open date windows."""

from __future__ import annotations

from datetime import date, timedelta


def day_chunks(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """``[start, end)`` cut into consecutive half-open windows of at most ``days`` days."""
    if days < 1:
        raise ValueError(f"chunks need at least one day, got {days}")
    chunks = []
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + timedelta(days=days), end)
        chunks.append((chunk_start, chunk_end))
        chunk_start = chunk_end
    return chunks


def days_per_chunk(rows_per_day: float, max_rows: int, max_days: int) -> int:
    """How many days one chunk may take so that it holds at most ``max_rows`` rows (at least one day)."""
    if rows_per_day <= 0:
        return max_days
    return int(min(max(max_rows // rows_per_day, 1), max_days))
