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
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from maint.errors import BadInput, ExitCode
from maint.windows import Window

# Exit codes besides 0 after which the scheduled job still counts as having done its work: the run
# went through (steps that failed and unreachable hosts are findings, reported by tickets), or the
# window was closed when the timer fired (a blackout, a holiday, a late start after downtime).
SUCCESS_EXIT_STATUS = (ExitCode.FAILED, ExitCode.UNREACHABLE, ExitCode.NOT_STARTED)
UNIT_PREFIX = "maint-"
# cron's aliases as the five fields they stand for (crontab(5)).
CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
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


# Building calendars


def _values(values: Iterable[int] | None, bounds: frozenset[int]) -> frozenset[int] | None:
    """``values`` as a set, None when they are every value of the field (or not given)."""
    if values is None:
        return None
    found = frozenset(values) & bounds
    return None if found == bounds else found


def calendars(window: Window) -> list[Calendar]:
    """The calendars whose times are the openings of ``window``'s recurrence (in its time zone).

    Blackouts and holidays are not part of them. Raises Unconvertible when no set of calendars
    expresses the recurrence.
    """
    if window.cron is not None:
        return cron_calendars(window.cron)
    return rrule_calendars(str(window.rrule), window.timezone)


def cron_calendars(expression: str) -> list[Calendar]:
    """The calendars of a cron expression, read as maint.windows reads it (croniter).

    Lists, ranges, steps, month and weekday names and the ``@daily`` aliases; ``L`` (the last day
    of the month), ``2#2`` (the second Tuesday) and ``L5`` (the last Friday). When both the day of
    the month and the weekday are restricted, a time matches either (cron's rule): two calendars.
    Raises Unconvertible for ``W`` (the weekday nearest a date) and an ``#`` together with a day of
    the month.
    """
    from croniter import croniter

    text = CRON_ALIASES.get(expression.strip().lower(), expression.strip())
    fields = text.split()
    if len(fields) == 5 and "w" in fields[2].lower():
        raise Unconvertible(f"systemd calendars and crontabs cannot express '{fields[2]}' (the weekday nearest a "
                            "day of the month); list the days instead")  # fmt: skip
    expanded, nth = croniter.expand(text)
    minutes = _values(_ints(expanded[0]), MINUTES)
    hours = _values(_ints(expanded[1]), HOURS)
    months = _values(_ints(expanded[3]), MONTHS)
    base = Calendar(months=months, hours=hours, minutes=minutes)
    day_field, weekday_field = expanded[2], expanded[4]
    # croniter's weekdays: 0 is Sunday (7 too); ours: 0 is Monday.
    weekdays = None if weekday_field == ["*"] else frozenset((int(day) - 1) % 7 for day in weekday_field)
    by_days = _day_calendars(base, day_field)
    if nth:
        if day_field != ["*"]:
            raise Unconvertible(f"'{fields[2]}' together with '{fields[4]}' (an nth weekday) never matches in "
                                "maint's reading; use one of them")  # fmt: skip
        found: dict[tuple[frozenset[int] | None, frozenset[int] | None], set[int]] = {}
        for cron_day, counts in nth.items():
            weekday = (int(cron_day) - 1) % 7
            for count in counts:
                days, last_days = _nth_days(-1 if count == "l" else int(count), 5)
                found.setdefault((days, last_days), set()).add(weekday)
        return _merged([replace(base, weekdays=frozenset(days_of_week), days=days, last_days=last_days)
                        for (days, last_days), days_of_week in sorted(found.items(), key=_order)])  # fmt: skip
    if day_field != ["*"] and weekdays is not None:
        # cron's rule: with both restricted, either one matching is enough.
        return [*by_days, replace(base, weekdays=weekdays)]
    return [replace(calendar, weekdays=weekdays) for calendar in by_days]


def _ints(values: Sequence[Any]) -> list[int] | None:
    return None if values == ["*"] else [int(value) for value in values]


def _day_calendars(base: Calendar, day_field: Sequence[Any]) -> list[Calendar]:
    """``base`` for each kind of day croniter's day field holds: days from the start, and ``l`` (the last)."""
    if day_field == ["*"]:
        return [base]
    found = []
    numbers = [int(day) for day in day_field if day != "l"]
    if numbers:
        found.append(replace(base, days=_values(numbers, DAYS)))
    if "l" in day_field:
        found.append(replace(base, last_days=frozenset({1})))
    return found


def _nth_days(count: int, largest: int) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """The days of a month (from the start, or from the end when ``count`` < 0) holding its ``count``-th weekday.

    The 2nd Tuesday is the Tuesday among days 8 to 14; the last Friday the one among the last 7 days.
    Raises Unconvertible when ``count`` is 0 or beyond ``largest``.
    """
    if count == 0 or abs(count) > largest:
        raise Unconvertible(f"the {count}th weekday of a month does not exist")
    days = frozenset(range(7 * (abs(count) - 1) + 1, min(7 * abs(count), 31) + 1))
    return (days, None) if count > 0 else (None, days)


def _order(item: tuple[tuple[frozenset[int] | None, frozenset[int] | None], set[int]]) -> tuple[Any, ...]:
    (days, last_days), weekdays = item
    return (days is None, sorted(days or ()), sorted(last_days or ()), sorted(weekdays))


# RRULE frequencies (dateutil's numbering) and the words for them.
_FREQUENCIES = {0: "YEARLY", 1: "MONTHLY", 2: "WEEKLY", 3: "DAILY", 4: "HOURLY", 5: "MINUTELY", 6: "SECONDLY"}
_EVERY = {0: "year", 1: "month", 2: "week", 3: "day"}


def rrule_calendars(text: str, timezone: str = "UTC") -> list[Calendar]:
    """The calendars of an RRULE, read as maint.windows reads it (dateutil, start 2000-01-01 unless DTSTART).

    FREQ=YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY, MINUTELY with BYMONTH, BYMONTHDAY (negative: from
    the end), BYDAY (with an ordinal such as 2TU or -1FR: the days that weekday can fall on),
    BYHOUR, BYMINUTE and BYSECOND, and the fields a rule takes from its start. INTERVAL>1 only for
    HOURLY and MINUTELY when it divides a day or an hour. Raises Unconvertible otherwise.
    """
    from maint.windows.recurrence import _rule

    rule, _anchor = _rule(text, timezone)
    frequency = int(rule._freq)
    name = _FREQUENCIES.get(frequency, str(frequency))
    for attribute, part in (("_bysetpos", "BYSETPOS"), ("_byyearday", "BYYEARDAY"), ("_byweekno", "BYWEEKNO"),
                            ("_byeaster", "BYEASTER")):  # fmt: skip
        if getattr(rule, attribute, None):
            raise Unconvertible(f"systemd calendars and crontabs cannot express {part}")
    if frequency not in _FREQUENCIES or name == "SECONDLY":
        raise Unconvertible(f"FREQ={name} is too frequent for a schedule; use MINUTELY or slower")
    interval = int(rule._interval)
    start = rule._dtstart
    hours = None if rule._byhour is None else frozenset(rule._byhour)
    minutes = None if rule._byminute is None else frozenset(rule._byminute)
    if interval > 1:
        if name == "HOURLY" and 24 % interval == 0:
            # Every N hours with N dividing a day: the same hours every day, counted from the start.
            hours = frozenset(range(start.hour % interval, 24, interval)) & (hours if hours is not None else HOURS)
        elif name == "MINUTELY" and 60 % interval == 0:
            minutes = frozenset(range(start.minute % interval, 60, interval)) & (
                minutes if minutes is not None else MINUTES
            )
        else:
            every = _EVERY.get(frequency, name.lower().removesuffix("ly"))
            raise Unconvertible(
                f"INTERVAL={interval} (every {_ordinal(interval)} {every}): systemd calendars and crontabs cannot "
                "count every other week or day; use a rule without INTERVAL, e.g. FREQ=MONTHLY;BYDAY=1SA,3SA for "
                "the 1st and 3rd Saturday of each month"
            )
    base = Calendar(
        months=_values(rule._bymonth, MONTHS), hours=_values(hours, HOURS), minutes=_values(minutes, MINUTES),
        seconds=frozenset(rule._bysecond or (0,)),
    )  # fmt: skip
    if base.hours == frozenset() or base.minutes == frozenset():
        raise Unconvertible("the rule's hours or minutes never match its INTERVAL")
    positive = frozenset(rule._bymonthday or ())
    negative = frozenset(-day for day in rule._bynmonthday or ())
    plain = frozenset(rule._byweekday) if rule._byweekday else None
    ordinals = tuple(rule._bynweekday or ())
    if not ordinals:
        found = []
        if positive:
            found.append(replace(base, weekdays=plain, days=_values(positive, DAYS)))
        if negative:
            found.append(replace(base, weekdays=plain, last_days=negative))
        return found or [replace(base, weekdays=plain)]
    if plain:
        raise Unconvertible("BYDAY mixes weekdays with and without an ordinal (MO,2TU), which never matches in "
                            "maint's reading; give them in two windows")  # fmt: skip
    if positive and negative:
        raise Unconvertible("BYDAY with an ordinal together with BYMONTHDAY counted from both ends of the month")
    # Without BYMONTH a YEARLY rule counts the weekday in the year: the 2nd Tuesday is in January.
    in_year = frequency == 0 and not rule._bymonth
    grouped: dict[tuple[frozenset[int] | None, frozenset[int] | None, frozenset[int] | None], set[int]] = {}
    for weekday, count in ordinals:
        days, last_days = _nth_days(int(count), 4 if in_year else 5)
        months = (frozenset({1}) if count > 0 else frozenset({12})) if in_year else base.months
        if positive:
            if days is None:
                raise Unconvertible("BYDAY with a negative ordinal together with BYMONTHDAY counted from the start")
            days = days & positive
        if negative:
            if last_days is None:
                raise Unconvertible("BYDAY with a positive ordinal together with BYMONTHDAY counted from the end")
            last_days = last_days & negative
        if days == frozenset() or last_days == frozenset():
            continue  # that weekday can never fall on those days
        grouped.setdefault((months, days, last_days), set()).add(int(weekday))
    if not grouped:
        raise Unconvertible("BYDAY and BYMONTHDAY never fall on the same day")
    ordered = sorted(grouped.items(), key=lambda item: (sorted(item[0][0] or ()), *_order((item[0][1:], item[1]))))
    return _merged([replace(base, weekdays=frozenset(weekdays), months=months, days=days, last_days=last_days)
                    for (months, days, last_days), weekdays in ordered])  # fmt: skip


def _merged(found: Sequence[Calendar]) -> list[Calendar]:
    """``found`` with calendars that differ only in their days (counted from the same end) made one."""
    merged: dict[tuple[Any, ...], Calendar] = {}
    for calendar in found:
        key = (calendar.weekdays, calendar.months, calendar.hours, calendar.minutes, calendar.seconds,
               calendar.days is None, calendar.last_days is None)  # fmt: skip
        earlier = merged.get(key)
        if earlier is None:
            merged[key] = calendar
        elif calendar.days is not None and earlier.days is not None:
            merged[key] = replace(earlier, days=earlier.days | calendar.days)
        elif calendar.last_days is not None and earlier.last_days is not None:
            merged[key] = replace(earlier, last_days=earlier.last_days | calendar.last_days)
    return list(merged.values())


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


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


# Export


@dataclass(frozen=True)
class Target:
    """How a generated job runs maint: in ``project_dir``, with ``command`` (the maint executable, absolute),
    on ``inventory`` (sources as ``-i`` takes them, paths absolute), with ``config`` as MAINT_CONFIG when set."""

    project_dir: Path
    command: tuple[str, ...]
    inventory: tuple[str, ...]
    config: Path | None = None

    def arguments(self, window: str) -> list[str]:
        """The command line of ``maint schedule run WINDOW -i ...``."""
        inventory = [part for source in self.inventory for part in ("-i", source)]
        return [*self.command, "schedule", "run", window, *inventory]


@dataclass(frozen=True)
class Export:
    """What an export produced: ``files`` by name (unit files, or one crontab text) and ``notes`` for stderr."""

    files: Mapping[str, str]
    notes: Sequence[str] = field(default_factory=tuple)


class ScheduleError(BadInput):
    """The windows cannot be exported; ``errors`` holds every problem found (the message shows the first)."""

    def __init__(self, errors: Sequence[str]) -> None:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(errors[0] + more)
        self.errors = list(errors)


def window_lines(path: Path | None) -> dict[str, dict[str, int]]:
    """Line numbers in maint.yml: window name -> {"": the window's line, option: its line}; {} if unknown."""
    from maint.yamlfile import LineDict, load_yaml_file

    if path is None:
        return {}
    try:
        data, _ = load_yaml_file(path)
    except BadInput:
        return {}
    section = data.get("windows") if isinstance(data, dict) else None
    if not isinstance(section, LineDict):
        return {}
    lines: dict[str, dict[str, int]] = {}
    for name, options in section.items():
        found = {"": section.line_of(name)}
        if isinstance(options, LineDict):
            found.update(options.key_lines)
        lines[str(name)] = found
    return lines


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}: " if line else f"{source}: "


def scheduled(windows: Mapping[str, Window], source: str, lines: Mapping[str, Mapping[str, int]]
              ) -> tuple[list[Window], list[str]]:  # fmt: skip
    """The windows that have playbooks (the ones a schedule runs), and a note for each one skipped.

    Raises ScheduleError when there is no window, or none with playbooks.
    """
    if not windows:
        raise ScheduleError([f"{source}: defines no windows (add one under 'windows:' with 'playbooks:' to "
                             "schedule it)"])  # fmt: skip
    chosen = [window for window in windows.values() if window.playbooks]
    notes = [
        f"{_where(source, lines.get(window.name, {}).get(''))}window '{window.name}' has no playbooks: not scheduled"
        for window in windows.values() if not window.playbooks
    ]  # fmt: skip
    if not chosen:
        raise ScheduleError([f"{source}: no window has 'playbooks' (what a schedule runs in it); add "
                             "'playbooks: [NAME]' to a window"])  # fmt: skip
    return chosen, notes


def _converted(windows: Sequence[Window], source: str, lines: Mapping[str, Mapping[str, int]],
               convert: Any) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """``convert(window)`` for each window; every Unconvertible becomes an error naming the window and line."""
    results: dict[str, Any] = {}
    errors = []
    for window in windows:
        try:
            results[window.name] = convert(window)
        except Unconvertible as error:
            key = "cron" if window.cron is not None else "rrule"
            line = lines.get(window.name, {}).get(key) or lines.get(window.name, {}).get("")
            errors.append(f"{_where(source, line)}At 'windows.{window.name}.{key}': {error}")
    return results, errors


def on_calendars(window: Window) -> list[str]:
    """The ``OnCalendar=`` expressions of ``window`` (in its time zone); raises Unconvertible."""
    return [calendar.on_calendar(window.timezone) for calendar in calendars(window)]


def cron_lines(window: Window) -> list[str]:
    """The crontab schedules (five fields each) of ``window`` (in its time zone); raises Unconvertible.

    A calendar of days and one of weekdays that agree on everything else are one crontab line, the
    way cron reads a line that restricts both.
    """
    found = calendars(window)
    if len(found) == 2:
        days, weekdays = found
        if (days.weekdays is None and weekdays.days is None and days.days is not None and weekdays.weekdays is not None
                and replace(days, days=None) == replace(weekdays, weekdays=None)):
            fields = days.cron().split()
            return [" ".join([*fields[:4], weekdays.cron().split()[4]])]
    return [calendar.cron() for calendar in found]


def _until_note(window: Window, source: str, lines: Mapping[str, Mapping[str, int]]) -> list[str]:
    if window.rrule is None or not re.search(r"\b(COUNT|UNTIL)=", window.rrule, re.IGNORECASE):
        return []
    line = lines.get(window.name, {}).get("rrule")
    return [f"{_where(source, line)}window '{window.name}': the schedule does not end with the rule's COUNT or "
            "UNTIL; later runs find the window closed and exit 7"]  # fmt: skip


def systemd_units(
    windows: Mapping[str, Window],
    target: Target,
    *,
    source: str,
    lines: Mapping[str, Mapping[str, int]] | None = None,
    user_units: bool = False,
    randomized_delay: float = 0.0,
    user: str | None = None,
) -> Export:
    """A ``maint-WINDOW.service`` and ``maint-WINDOW.timer`` for each window with playbooks.

    ``source`` (maint.yml) and ``lines`` place errors and notes. ``user_units`` writes units for the
    user's own manager (``systemctl --user``); otherwise the system units run as ``user`` (no
    ``User=`` when None). ``randomized_delay`` (seconds) spreads the start; it must be shorter than
    each window. Raises ScheduleError listing every window that cannot be exported.
    """
    lines = lines or {}
    chosen, notes = scheduled(windows, source, lines)
    expressions, errors = _converted(chosen, source, lines, on_calendars)
    for window in chosen:
        if randomized_delay and randomized_delay >= window.duration.total_seconds():
            line = lines.get(window.name, {}).get("duration")
            span = _span(window.duration.total_seconds())
            errors.append(f"{_where(source, line)}window '{window.name}' is open for {span}: "
                          f"a randomized delay of {_span(randomized_delay)} could start its run after it closed; "
                          "give a shorter --randomized-delay")  # fmt: skip
    if errors:
        raise ScheduleError(errors)
    files: dict[str, str] = {}
    for window in chosen:
        unit = f"{UNIT_PREFIX}{window.name}"
        files[f"{unit}.service"] = _service(window, target, source, user_units, user)
        files[f"{unit}.timer"] = _timer(window, expressions[window.name], source, user_units, randomized_delay)
        notes.extend(_until_note(window, source, lines))
    return Export(files, notes)


def _header(window: Window, source: str, option: str) -> str:
    return (f"# maint: window '{window.name}' of {source}, written by 'maint schedule export {option}'.\n"
            "# Export again after changing the window rather than editing this file.\n")  # fmt: skip


def _service(window: Window, target: Target, source: str, user_units: bool, user: str | None) -> str:
    playbooks = ", ".join(window.playbooks)
    unit = [
        "[Unit]",
        f"Description={_specifiers(f'maint: {playbooks} in window {window.name} on {window.hosts}')}",
    ]
    if not user_units:
        # The hosts are reached over the network; a user manager has no network-online.target.
        unit += ["Wants=network-online.target", "After=network-online.target"]
    service = [
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={_specifiers(_one_line(str(target.project_dir)))}",
        "ExecStart=" + " ".join(_systemd_word(word) for word in target.arguments(window.name)),
        "# 4 (a step failed) and 5 (a host was unreachable): the run went through, tickets report the findings;",
        "# 7 (not started): the window was closed when the timer fired (a blackout, a holiday, a late boot).",
        "SuccessExitStatus=" + " ".join(str(int(code)) for code in SUCCESS_EXIT_STATUS),
    ]
    if target.config is not None:
        service.append("Environment=" + _systemd_word(f"MAINT_CONFIG={_one_line(str(target.config))}", dollar=False))
    if user and not user_units:
        service.append(f"User={user}")
    return _header(window, source, "--systemd" + (" --user" if user_units else "")) + "\n".join(
        [*unit, "", *service, ""]
    )


def _timer(window: Window, expressions: Sequence[str], source: str, user_units: bool, randomized_delay: float) -> str:
    timer = [
        "[Unit]",
        f"Description={_specifiers(f'maint: window {window.name} ({_one_line(window.schedule)}, {window.timezone})')}",
        "",
        "[Timer]",
        *(f"OnCalendar={expression}" for expression in expressions),
        "# The window opens at these times: start within a second, not within systemd's default minute.",
        "AccuracySec=1s",
    ]
    if randomized_delay:
        timer.append(f"RandomizedDelaySec={_span(randomized_delay)}")
    timer += [
        "# After downtime the missed run starts at boot; maint runs it only if the window is still open.",
        "Persistent=true",
        f"Unit={UNIT_PREFIX}{window.name}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ]
    return _header(window, source, "--systemd" + (" --user" if user_units else "")) + "\n".join(timer)


def _span(seconds: float) -> str:
    """A systemd time span: ``5min``, ``90s``, ``1.5s``."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}min"
    return f"{seconds:g}s"


def _one_line(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise ScheduleError([f"a line break in {text!r} cannot be written into a unit file or a crontab"])
    return text


def _specifiers(text: str) -> str:
    # systemd expands %-specifiers in most settings; a literal % is written %%.
    return text.replace("%", "%%")


def _systemd_word(word: str, dollar: bool = True) -> str:
    """One word of ExecStart= (or an Environment= assignment), quoted when it needs to be."""
    escaped = _specifiers(_one_line(word))
    if dollar:
        escaped = escaped.replace("$", "$$")  # ExecStart= expands $VARIABLE
    if escaped and not re.search(r"[\s\"'\\;]", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def crontab(
    windows: Mapping[str, Window], target: Target, *, source: str, lines: Mapping[str, Mapping[str, int]] | None = None
) -> Export:
    """Crontab lines for each window with playbooks: ``CRON_TZ=`` its time zone, then its schedule lines.

    ``files`` holds one entry, ``crontab``. Raises ScheduleError listing every window cron cannot express.
    """
    lines = lines or {}
    chosen, notes = scheduled(windows, source, lines)
    schedules, errors = _converted(chosen, source, lines, cron_lines)
    if errors:
        raise ScheduleError(errors)
    command = "cd " + shlex.quote(_one_line(str(target.project_dir))) + " && "
    if target.config is not None:
        command += "MAINT_CONFIG=" + shlex.quote(_one_line(str(target.config))) + " "
    text = [
        f"# maint windows of {source}, written by 'maint schedule export --cron'.",
        "# CRON_TZ is read by cronie (RHEL, Fedora, SUSE, Arch); other crons use the system's time zone.",
    ]
    for window in chosen:
        arguments = " ".join(shlex.quote(_one_line(word)) for word in target.arguments(window.name))
        # cron turns an unescaped % into a line break.
        job = (command + arguments).replace("%", "\\%")
        text += ["", f"# window {window.name}: {_one_line(window.schedule)} ({', '.join(window.playbooks)})",
                 f"CRON_TZ={window.timezone}"]  # fmt: skip
        text += [f"{schedule} {job}" for schedule in schedules[window.name]]
        notes.extend(_until_note(window, source, lines))
    return Export({"crontab": "\n".join(text) + "\n"}, notes)


def write_units(directory: Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` into ``directory`` (created if missing), each atomically with mode 0644; returns the paths.

    Raises BadInput when the directory or a file cannot be written.
    """
    from maint.files import write_atomic

    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = directory / name
            write_atomic(path, text)
            written.append(path)
    except OSError as error:
        raise BadInput(f"cannot write the units: {error.strerror}", source=str(error.filename or directory)) from None
    return written


def run_request(window: Window, inventory: Sequence[str], *, project_dir: Path, source: str,
                lines: Mapping[str, Mapping[str, int]] | None = None, **options: Any) -> Any:  # fmt: skip
    """The RunRequest of a scheduled run of ``window``: its playbooks on its hosts, kept to the window.

    ``options`` are further RunRequest fields (db_url, argv, ...). Raises BadInput when the window
    has no playbooks.
    """
    from maint.run import RunRequest

    if not window.playbooks:
        line = (lines or {}).get(window.name, {}).get("")
        raise BadInput(f"window '{window.name}' has no playbooks to run", source=source, line=line,
                       hint="add 'playbooks: [NAME]' to the window")  # fmt: skip
    return RunRequest(
        playbooks=tuple(window.playbooks), inventory=list(inventory), limit=window.hosts, project_dir=project_dir,
        window=window.name, reason=f"scheduled: window {window.name}", **options,
    )  # fmt: skip
