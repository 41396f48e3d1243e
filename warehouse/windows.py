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


def budgeted_day_chunks(start: date, end: date, rows_per_day: float, max_rows: int) -> list[tuple[date, date]]:
    """``[start, end)`` cut into chunks of as many days as hold at most ``max_rows`` rows (at least one day each)."""
    days = (end - start).days
    if days < 1:
        return []
    if rows_per_day > 0:
        days = int(min(max(max_rows // rows_per_day, 1), days))
    return day_chunks(start, end, days)
