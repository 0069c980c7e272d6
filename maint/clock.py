"""Time as maint stores it: one format, one default clock.

Every time in the store, the ledger and the records is ISO 8601 in UTC with milliseconds and a ``Z``
(``2026-12-05T02:00:00.123Z``), so times compare correctly as text. Code that depends on the time takes
a :data:`Clock` as a parameter, so windows, escalations and records are testable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The current time in UTC (the default clock)."""
    return dt.datetime.now(dt.UTC)


def timestamp(moment: dt.datetime) -> str:
    """``moment`` as stored: ISO 8601 UTC with milliseconds and a Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_text() -> str:
    """The current time as stored."""
    return timestamp(utc_now())


def stored(moment: str) -> str:
    """An ISO 8601 time (a naive one is taken as UTC) in the stored form, so it compares with stored times
    as text. Raises ValueError for text that is not an ISO 8601 time."""
    parsed = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return timestamp(parsed)
