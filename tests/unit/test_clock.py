"""The one stored time format (maint.clock)."""

from __future__ import annotations

import datetime as dt

import pytest

from maint.clock import now_text, stored, timestamp


def test_times_are_stored_in_utc_with_milliseconds_and_a_z() -> None:
    moment = dt.datetime(2026, 12, 5, 3, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert timestamp(moment) == "2026-12-05T01:04:05.678Z"
    assert len(now_text()) == len("2026-12-05T01:04:05.678Z") and now_text().endswith("Z")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-12-05T02:00", "2026-12-05T02:00:00.000Z"),  # naive: taken as UTC
        ("2026-12-05T02:00:00Z", "2026-12-05T02:00:00.000Z"),
        ("2026-12-05T03:30:00+01:30", "2026-12-05T02:00:00.000Z"),
        ("2026-12-05", "2026-12-05T00:00:00.000Z"),
    ],
)
def test_any_iso_time_compares_with_stored_times_as_text(given: str, expected: str) -> None:
    assert stored(given) == expected


def test_text_that_is_no_time_is_refused() -> None:
    with pytest.raises(ValueError):
        stored("yesterday")
