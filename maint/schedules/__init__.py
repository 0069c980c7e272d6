"""Schedules: the windows of maint.yml as systemd timers or crontab lines that run ``maint schedule run``.

A window's recurrence (cron or RRULE) becomes a :class:`Calendar`: a set of wall-clock times given
field by field (weekdays, months, days of the month from the start or from the end, hours, minutes,
seconds), which is what both a systemd ``OnCalendar=`` expression and a crontab line can say. Some
recurrences need several calendars: cron's day-of-month *or* day-of-week rule when both are
restricted, RRULE day lists that count from both ends of the month. A recurrence no calendar can
express (``INTERVAL=2`` of a weekly rule, ``BYSETPOS``) raises :class:`Unconvertible`.

What a calendar cannot say is left to the window itself: on a blackout date or a holiday the timer
still fires, ``maint schedule run`` finds the window closed and exits 7 (not started), which the
generated units count as success. Everything here is pure: the caller gives the paths and the
command that runs maint, and writes the files.

The modules: ``calendar`` (the Calendar and how systemd and cron write it), ``conversion`` (a
recurrence as calendars), ``export`` (what the exports share), ``systemd`` (units), ``cron``
(crontab lines) and ``request`` (the scheduled run).
"""

from __future__ import annotations

from maint.schedules.calendar import (
    DAYS,
    HOURS,
    MINUTES,
    MONTHS,
    SECONDS,
    SYSTEMD_WEEKDAYS,
    WEEKDAYS,
    Calendar,
    Unconvertible,
)
from maint.schedules.conversion import CRON_ALIASES, calendars, cron_calendars, rrule_calendars
from maint.schedules.cron import cron_lines, crontab
from maint.schedules.export import Export, ScheduleError, Target, scheduled, window_lines, write_units
from maint.schedules.request import run_request
from maint.schedules.systemd import SUCCESS_EXIT_STATUS, UNIT_PREFIX, on_calendars, systemd_units

__all__ = [
    "CRON_ALIASES",
    "DAYS",
    "HOURS",
    "MINUTES",
    "MONTHS",
    "SECONDS",
    "SUCCESS_EXIT_STATUS",
    "SYSTEMD_WEEKDAYS",
    "UNIT_PREFIX",
    "WEEKDAYS",
    "Calendar",
    "Export",
    "ScheduleError",
    "Target",
    "Unconvertible",
    "calendars",
    "cron_calendars",
    "cron_lines",
    "crontab",
    "on_calendars",
    "rrule_calendars",
    "run_request",
    "scheduled",
    "systemd_units",
    "window_lines",
    "write_units",
]
