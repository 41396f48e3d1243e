from __future__ import annotations

from datetime import date

import pytest

from warehouse.windows import budgeted_day_chunks, day_chunks


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        pytest.param(3, [(date(2024, 3, 1), date(2024, 3, 4)), (date(2024, 3, 4), date(2024, 3, 7)), (date(2024, 3, 7), date(2024, 3, 8))], id="a range longer than a chunk ends with a short chunk"),
        pytest.param(30, [(date(2024, 3, 1), date(2024, 3, 8))], id="a range shorter than a chunk is one chunk"),
    ],
)
def test_day_chunks_cover_the_range_without_gaps_or_overlap(days, expected):
    assert day_chunks(date(2024, 3, 1), date(2024, 3, 8), days) == expected


def test_a_chunk_needs_at_least_one_day():
    with pytest.raises(ValueError, match="at least one day"):
        day_chunks(date(2024, 3, 1), date(2024, 3, 8), 0)


@pytest.mark.parametrize(
    ("rows_per_day", "expected"),
    [
        pytest.param(35_000, 90, id="a small population takes the whole range at once"),
        pytest.param(355_000, 16, id="ten thousand users' plays take about two weeks at a time"),
        pytest.param(50_000_000, 1, id="a day larger than the budget is still a chunk, alone"),
        pytest.param(0, 90, id="an empty range is one chunk"),
    ],
)
def test_budgeted_chunks_keep_each_chunk_under_the_row_budget(rows_per_day, expected):
    start, end = date(2024, 1, 1), date(2024, 3, 31)  # 90 days
    chunks = budgeted_day_chunks(start, end, rows_per_day, max_rows=6_000_000)
    assert chunks == day_chunks(start, end, expected)


def test_an_empty_range_has_no_chunks():
    assert budgeted_day_chunks(date(2024, 3, 1), date(2024, 3, 1), 1_000, max_rows=6_000_000) == []
