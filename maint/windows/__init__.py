"""Maintenance windows: when a window opens, how long it stays open, and the days it stays shut.

A window opens at each occurrence of its recurrence (a cron expression or an RFC 5545 RRULE, read in
the window's time zone) and stays open for ``duration``. It does not open on a blackout date or a
public holiday of its calendars (the date of the opening, in the window's time zone). Occurrences
that overlap or touch form one period: the window closes when the last of them ends.

Wall-clock times follow RFC 5545 (and Python's zoneinfo with ``fold=0``) across DST changes: a time
that does not exist (spring forward, 02:30 in Europe/Berlin on the last Sunday of March) is read with
the offset before the change, so the window opens at 03:30 CEST, the same instant; a time that
occurs twice (fall back) is the first of the two. ``duration`` is elapsed time.

Everything here is pure: the moment to judge is always a parameter, and searches end at a horizon
(``HORIZON``, 400 days), beyond which a window is reported as never opening (or never closing).

The modules: ``model`` (the window, its status record, finding one by name), ``recurrence`` (cron and
RRULE, time zones, the openings they give), ``calendars`` (blackout dates and holidays) and
``evaluation`` (the status at a moment and the next openings).
"""

from __future__ import annotations

from maint.windows.calendars import DateRange, HolidayCalendar, parse_blackouts, parse_holidays
from maint.windows.evaluation import HORIZON, MAX_MERGED, WEEKDAYS, next_openings, status
from maint.windows.model import (
    DEFAULT_GRACE,
    Opening,
    Ping,
    UnknownWindow,
    Window,
    WindowStatus,
    find_window,
    parse_url,
    window_name,
)
from maint.windows.recurrence import (
    CRON_ALIASES,
    RULE_ANCHOR,
    UTC,
    exdates,
    parse_cron,
    parse_rrule,
    parse_timezone,
)

__all__ = [
    "CRON_ALIASES",
    "DEFAULT_GRACE",
    "HORIZON",
    "MAX_MERGED",
    "RULE_ANCHOR",
    "UTC",
    "WEEKDAYS",
    "DateRange",
    "HolidayCalendar",
    "Opening",
    "Ping",
    "UnknownWindow",
    "Window",
    "WindowStatus",
    "exdates",
    "find_window",
    "next_openings",
    "parse_blackouts",
    "parse_cron",
    "parse_holidays",
    "parse_rrule",
    "parse_timezone",
    "parse_url",
    "status",
    "window_name",
]
