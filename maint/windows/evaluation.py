"""Whether a window is open at a moment, since and until when, and its next openings: the openings
that overlap or touch merged into periods, blackouts and holidays left out, worded for one line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from maint.windows.calendars import _skip_reason
from maint.windows.model import Opening, Window, WindowStatus
from maint.windows.recurrence import UTC, _openings

HORIZON = dt.timedelta(days=400)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def status(window: Window, at: dt.datetime, horizon: dt.timedelta = HORIZON) -> WindowStatus:
    """Whether ``window`` is open at ``at`` (timezone-aware), since and until when, and when it opens next.

    Searches back and forward at most ``horizon``; raises ValueError for a naive ``at``.
    """
    at = _utc(at)
    zone = window.zone
    candidates = _covering(window, at)
    covering = [opening for opening in candidates if _skip_reason(window, opening) is None]
    periods = _periods(window, min(covering) if covering else at, at + horizon)
    current = next(periods) if covering else None
    following = next((period for period in periods if period.opens_at > at), None)
    next_opens = following.opens_at if following else None
    next_closes = following.closes_at if following else None
    if current is not None:
        opened = _period_start(window, current.opens_at, at - horizon)
        closes = current.closes_at
        until = f"closes {_clock(closes, at, zone)}" if closes else f"does not close within {horizon.days} days"
        return WindowStatus(
            window.name, window.timezone, at, True, opened, closes, closes + window.grace if closes else None,
            next_opens, next_closes, f"open since {_since(opened, at, zone)}, {until}",
        )  # fmt: skip
    reasons = []
    # Closed though an opening covers ``at``: say which blackout or holiday shut it.
    for opening in candidates:
        skipped = _skip_reason(window, opening)
        if skipped:
            reasons.append(f"{_day_word(opening, at, zone)} is {skipped}")
            break
    reasons.append(f"opens {_full(next_opens.astimezone(zone))}" if next_opens
                   else f"does not open within {horizon.days} days")  # fmt: skip
    return WindowStatus(window.name, window.timezone, at, False, None, None, None, next_opens, next_closes,
                        "closed: " + "; ".join(reasons))  # fmt: skip


def next_openings(window: Window, after: dt.datetime, count: int, horizon: dt.timedelta = HORIZON) -> list[Opening]:
    """The next ``count`` periods (UTC) that open after ``after`` (timezone-aware).

    A period the window is already in at ``after`` is not one of them. Fewer (none: the window never
    opens) when the horizon after ``after`` ends first. Raises ValueError for a naive ``after``.
    """
    after = _utc(after)
    covering = [opening for opening in _covering(window, after) if _skip_reason(window, opening) is None]
    found: list[Opening] = []
    for period in _periods(window, min(covering) if covering else after, after + horizon):
        if len(found) >= count:
            break
        if period.opens_at > after:
            found.append(period)
    return found


def _utc(moment: dt.datetime) -> dt.datetime:
    # Arithmetic on an aware datetime keeps its wall clock; in UTC it is elapsed time.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a moment needs a time zone, got the naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _covering(window: Window, at: dt.datetime) -> list[dt.datetime]:
    """Openings (blackouts included) whose duration holds ``at``."""
    return [opening for opening in _openings(window, at - window.duration, at) if opening + window.duration > at]


# How many overlapping openings one period may merge before it counts as not closing (a minutely
# window open for hours would otherwise be walked opening by opening for the whole horizon).
MAX_MERGED = 5000


def _periods(window: Window, start: dt.datetime, limit: dt.datetime) -> Iterator[Opening]:
    """Periods (UTC) whose first opening is in [start, limit]: overlapping or touching openings merged."""
    duration = window.duration
    opens: dt.datetime | None = None
    closes = start
    merged = 0
    # Reading one duration past the limit tells whether the last period goes on beyond it.
    for opening in _openings(window, start, limit + duration):
        if _skip_reason(window, opening) is not None:
            continue
        if opens is not None and opening <= closes:
            closes = max(closes, opening + duration)
            merged += 1
            if merged > MAX_MERGED:
                # A frequent window whose openings overlap without end: say it does not close
                # rather than walk every one of them to the horizon.
                yield Opening(opens, None)
                return
            continue
        merged = 0
        if opens is not None:
            yield Opening(opens, closes)
        if opening > limit:
            return
        opens, closes = opening, opening + duration
    if opens is not None:
        yield Opening(opens, closes if closes < limit + duration else None)


def _period_start(window: Window, opens: dt.datetime, limit: dt.datetime) -> dt.datetime:
    """Where the period holding the opening ``opens`` began: earlier openings it overlaps, back to ``limit``."""
    duration = window.duration
    cursor = opens
    # Look back in spans that double, so a window open for months takes a few searches, not one per day.
    span = duration
    seen = 0
    while cursor > max(limit, opens - duration):
        start = max(cursor - span, limit)
        earlier = list(_openings(window, start, cursor))
        seen += len(earlier)
        if seen > MAX_MERGED:
            return opens  # open at least since then; older openings of a frequent window are not walked
        for opening in reversed(earlier):
            if opening >= opens or _skip_reason(window, opening) is not None:
                continue
            if opening + duration < opens:
                return opens
            opens = opening
        cursor, span = start, span * 2
    return opens


# One-line wording: the window's own time zone, with as much date as the distance from ``at`` needs.


def _day_word(moment: dt.datetime, at: dt.datetime, zone: ZoneInfo) -> str:
    days = (at.astimezone(zone).date() - moment.astimezone(zone).date()).days
    return {0: "today", 1: "yesterday"}.get(days, WEEKDAYS[moment.astimezone(zone).weekday()])


def _since(moment: dt.datetime, at: dt.datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    if abs((at.astimezone(zone).date() - local.date()).days) < 7:
        return f"{WEEKDAYS[local.weekday()]} {local:%H:%M %Z}"
    return _full(local)


def _clock(moment: dt.datetime, at: dt.datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    if local.date() == at.astimezone(zone).date():
        return f"{local:%H:%M %Z}"
    return _since(local, at, zone)


def _full(moment: dt.datetime) -> str:
    return f"{WEEKDAYS[moment.weekday()]} {moment:%Y-%m-%d %H:%M %Z}"
