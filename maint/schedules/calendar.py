"""A :class:`Calendar`: wall-clock times given field by field, and how a systemd ``OnCalendar=``
expression and a crontab line write one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

SYSTEMD_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Field bounds, for deciding when a set of values is "any".
MINUTES = frozenset(range(60))
HOURS = frozenset(range(24))
SECONDS = frozenset(range(60))
DAYS = frozenset(range(1, 32))
MONTHS = frozenset(range(1, 13))
WEEKDAYS = frozenset(range(7))


class Unconvertible(ValueError):
    """A recurrence that a systemd calendar (or a crontab line) cannot express; the message says why."""


@dataclass(frozen=True)
class Calendar:
    """Wall-clock times, field by field: a time matches when every field holds its value (None: any).

    ``weekdays`` count from 0 (Monday) to 6 (Sunday). A day of the month is given either from its
    start (``days``, 1 to 31) or from its end (``last_days``, 1 the last day, 7 the seventh last),
    never both. A day that a month lacks (the 31st of April) never matches, as in cron and systemd.
    """

    weekdays: frozenset[int] | None = None
    months: frozenset[int] | None = None
    days: frozenset[int] | None = None
    last_days: frozenset[int] | None = None
    hours: frozenset[int] | None = None
    minutes: frozenset[int] | None = None
    seconds: frozenset[int] = frozenset({0})

    def __post_init__(self) -> None:
        if self.days is not None and self.last_days is not None:
            raise ValueError("a calendar counts the days of the month from the start or from the end, not both")

    def on_calendar(self, timezone: str) -> str:
        """The systemd ``OnCalendar=`` expression (``Tue *-*-08..14 22:00:00 Europe/Berlin``)."""
        weekdays = _systemd_weekdays(self.weekdays) + " " if self.weekdays is not None else ""
        months = _systemd_field(self.months, MONTHS)
        if self.last_days is not None:
            date = f"*-{months}~{_systemd_field(self.last_days, DAYS)}"
        else:
            date = f"*-{months}-{_systemd_field(self.days, DAYS)}"
        time = ":".join(_systemd_field(values, bounds) for values, bounds in
                        ((self.hours, HOURS), (self.minutes, MINUTES), (self.seconds, SECONDS)))  # fmt: skip
        return f"{weekdays}{date} {time} {timezone}"

    def cron(self) -> str:
        """The five crontab fields (minute hour day-of-month month day-of-week).

        Raises Unconvertible for what cron cannot say: seconds, days counted from the month's end,
        and days of the month together with weekdays (cron matches either, not both).
        """
        if self.seconds != frozenset({0}):
            raise Unconvertible("cron starts jobs at whole minutes; the rule asks for seconds "
                                f"{_list(sorted(self.seconds))}")  # fmt: skip
        if self.last_days is not None:
            raise Unconvertible("cron has no days counted from the end of the month (the last day, the last "
                                "Friday); the systemd timer can: use --systemd")  # fmt: skip
        if self.days is not None and self.weekdays is not None:
            raise Unconvertible("cron runs a job when the day of the month OR the weekday matches, never only "
                                "when both do (the 2nd Tuesday, Friday the 13th); the systemd timer can: "
                                "use --systemd")  # fmt: skip
        weekdays = None if self.weekdays is None else frozenset((day + 1) % 7 for day in self.weekdays)
        fields = ((self.minutes, MINUTES), (self.hours, HOURS), (self.days, DAYS), (self.months, MONTHS),
                  (weekdays, WEEKDAYS))  # fmt: skip
        return " ".join(_cron_field(values, bounds) for values, bounds in fields)


# Rendering fields


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted values as runs of consecutive numbers: [(first, last), ...]."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _progression(values: Sequence[int]) -> int | None:
    """The step of sorted ``values`` when they are an arithmetic progression of 3 or more with a step > 1."""
    if len(values) < 3:
        return None
    step = values[1] - values[0]
    if step < 2 or any(later - earlier != step for earlier, later in itertools.pairwise(values)):
        return None
    return step


def _list(values: Sequence[int], separator: str = "..", width: int = 2) -> str:
    parts = []
    for first, last in _runs(values):
        if last - first >= 2:
            parts.append(f"{first:0{width}d}{separator}{last:0{width}d}")
        else:
            parts.extend(f"{value:0{width}d}" for value in range(first, last + 1))
    return ",".join(parts)


def _systemd_field(values: frozenset[int] | None, bounds: frozenset[int]) -> str:
    """One date or time field: ``*``, ``00/15`` (from 0 every 15 to the end), ``05..30/10``, ``01..07,15``."""
    if values is None or values == bounds:
        return "*"
    ordered = sorted(values)
    step = _progression(ordered)
    if step is not None:
        # "start/step" runs to the field's end in systemd; a progression that stops earlier needs its end.
        ends_at_end = ordered[-1] + step > max(bounds)
        return f"{ordered[0]:02d}/{step}" if ends_at_end else f"{ordered[0]:02d}..{ordered[-1]:02d}/{step}"
    return _list(ordered)


def _systemd_weekdays(values: frozenset[int]) -> str:
    parts = []
    for first, last in _runs(sorted(values)):
        if last - first >= 2:
            parts.append(f"{SYSTEMD_WEEKDAYS[first]}..{SYSTEMD_WEEKDAYS[last]}")
        else:
            parts.extend(SYSTEMD_WEEKDAYS[day] for day in range(first, last + 1))
    return ",".join(parts)


def _cron_field(values: frozenset[int] | None, bounds: frozenset[int]) -> str:
    if values is None or values == bounds:
        return "*"
    ordered = sorted(values)
    step = _progression(ordered)
    if step is not None:
        if ordered[0] == min(bounds) and ordered[-1] + step > max(bounds):
            return f"*/{step}"
        return f"{ordered[0]}-{ordered[-1]}/{step}"
    return _list(ordered, "-", 1)
