"""A window's recurrence as calendars: its cron expression or RRULE, read as maint.windows reads it,
turned into the :class:`Calendar` set with the same times, or :class:`Unconvertible`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from maint.schedules.calendar import DAYS, HOURS, MINUTES, MONTHS, Calendar, Unconvertible
from maint.windows import Window

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
