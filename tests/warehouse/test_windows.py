from __future__ import annotations

from datetime import date

import pytest

from warehouse.windows import day_chunks


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
