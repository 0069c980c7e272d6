"""When a window opens: its cron expression or RRULE, read in its time zone and expanded into openings.

Wall-clock times follow RFC 5545 across DST changes (see :mod:`maint.windows`); an opening is an
instant in UTC.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import heapq
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadDateError, CroniterError, croniter
from dateutil import rrule as rrule_module
from dateutil.relativedelta import relativedelta

from maint.windows.calendars import DateRange

if TYPE_CHECKING:
    from maint.windows.model import Window

UTC = dt.UTC
# An RRULE without DTSTART starts here (in the window's time zone): the fields a rule leaves out
# (minute, second, weekday of a WEEKLY rule, day of a MONTHLY one) and INTERVAL counting come from it.
RULE_ANCHOR = dt.datetime(2000, 1, 1)
CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# UTC offsets stay within a day of each other (even Samoa's skipped day in 2011), so a wall-clock
# time maps to an instant less than a day from the same digits read as UTC.
_OFFSET_BOUND = dt.timedelta(days=1)


# Parsing: each returns the checked value or raises ValueError saying what was expected.


def parse_cron(value: Any) -> str:
    """A five-field cron expression (minute hour day-of-month month day-of-week) or an alias (@daily).

    Returns the expression stripped; raises ValueError when croniter refuses it.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a cron expression such as '0 2 * * 6', got {value!r}")
    text = value.strip()
    if text.startswith("@"):
        if text.lower() not in CRON_ALIASES:
            raise ValueError(f"invalid cron expression {text!r} (aliases: {', '.join(CRON_ALIASES)})")
        return text.lower()
    if len(text.split()) != 5:
        raise ValueError(f"invalid cron expression {text!r} (expected 5 fields: minute hour day-of-month "
                         "month day-of-week)")  # fmt: skip
    try:
        croniter(text, RULE_ANCHOR)
    except CroniterError as error:
        raise ValueError(f"invalid cron expression {text!r} ({error})") from None
    return text


def parse_rrule(value: Any) -> str:
    """An RFC 5545 RRULE (``FREQ=WEEKLY;BYDAY=SA;BYHOUR=2``), optionally after a ``DTSTART:...`` line.

    Returns the text stripped; raises ValueError when it is not one valid rule.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected an RRULE such as 'FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0', got {value!r}")
    text = value.strip()
    _rule(text, "UTC")
    return text


def parse_timezone(value: Any) -> str:
    """An IANA time zone name (``Europe/Berlin``, ``UTC``); raises ValueError for an unknown one."""
    if isinstance(value, str) and value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return value
    close = difflib.get_close_matches(str(value), sorted(available_timezones()), n=1)
    hint = f"did you mean '{close[0]}'?" if close else "an IANA name such as Europe/Berlin or UTC"
    raise ValueError(f"unknown time zone {value!r} ({hint})")


def _openings(window: Window, start: dt.datetime, until: dt.datetime) -> Iterator[dt.datetime]:
    """Every opening of the recurrence (UTC, ascending, once each) in [start, until], blackouts included."""
    zone = window.zone
    # Across a DST gap, wall-clock order and instant order differ by up to the gap: hold instants in
    # a heap until no later wall-clock time can map before them.
    pending: list[dt.datetime] = []
    last: dt.datetime | None = None
    begin = start.astimezone(UTC).replace(tzinfo=None) - _OFFSET_BOUND
    for wall in _wall_times(window, begin, until.astimezone(UTC).replace(tzinfo=None) + _OFFSET_BOUND):
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
        if start <= instant <= until:
            heapq.heappush(pending, instant)
        settled = wall.replace(tzinfo=UTC) - _OFFSET_BOUND
        while pending and pending[0] < settled:
            ready = heapq.heappop(pending)
            if ready != last:
                yield ready
                last = ready
        if settled > until:
            return
    while pending:
        ready = heapq.heappop(pending)
        if ready != last:
            yield ready
            last = ready


def _wall_times(window: Window, begin: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    """The recurrence's wall-clock times (naive, the window's time zone) from ``begin`` on, ascending.

    ``end`` bounds how far croniter looks for one more match before it gives up (Feb 30 never comes).
    """
    if window.cron is not None:
        # croniter on naive times counts wall-clock minutes, with no DST of its own.
        years = (end - begin).days // 365 + 2
        times = croniter(window.cron, begin, max_years_between_matches=years)
        while True:
            try:
                yield times.get_next(dt.datetime)
            except CroniterBadDateError:
                return
    rule, anchor = _rule(str(window.rrule), window.timezone)
    for wall in _moved(rule, anchor, begin):
        if wall >= begin:
            yield wall


def _moved(rule: Any, anchor: dt.datetime, begin: dt.datetime) -> Any:
    """``rule`` with its start moved forward by whole periods to just before ``begin``, for speed.

    Expanding a rule from 2000 to today costs a second for an hourly one. Whole periods keep every
    occurrence after the new start, and the fields the rule takes from its start (time of day,
    weekday, day of month) stay the same; a COUNT, or a start day a shorter month lacks, rules it out.
    """
    interval = int(rule._interval)
    frequency = rule._freq
    if rule._count is not None or begin <= anchor:
        return rule
    if frequency in (rrule_module.YEARLY, rrule_module.MONTHLY):
        if anchor.day > 28:
            return rule
        months = 12 * interval if frequency == rrule_module.YEARLY else interval
        elapsed = (begin.year - anchor.year) * 12 + begin.month - anchor.month
        steps = max(elapsed // months - 1, 0)
        start = anchor + relativedelta(months=steps * months)
    else:
        days = 7 * interval if frequency == rrule_module.WEEKLY else interval
        steps = max((begin - anchor).days // days - 1, 0)
        start = anchor + dt.timedelta(days=steps * days)
    return rule.replace(dtstart=start) if steps else rule


@functools.lru_cache(maxsize=256)
def _rule(text: str, timezone: str) -> tuple[Any, dt.datetime]:
    """The parsed rule (naive wall clock in ``timezone``) and its start; ValueError when invalid."""
    zone = ZoneInfo(timezone)
    start = RULE_ANCHOR
    rules = []
    for line in (part.strip() for part in text.splitlines()):
        if not line:
            continue
        upper = line.upper()
        if upper.startswith("DTSTART"):
            start = _dtstart(line, zone)
        elif upper.startswith("EXDATE"):
            exdates(line, zone.key)  # validated here; the dates become blackouts (see exdates)
        elif upper.startswith("RRULE:"):
            rules.append(line[len("RRULE:"):])
        elif ":" in line:
            raise ValueError(f"invalid RRULE {text!r} (expected one RRULE and an optional DTSTART line, "
                             f"got {line!r})")  # fmt: skip
        else:
            rules.append(line)
    if len(rules) != 1:
        raise ValueError(f"invalid RRULE {text!r} (expected one rule, got {len(rules)})")
    # A UTC UNTIL (as RFC 5545 asks when DTSTART has a zone) becomes the window's wall clock.
    body = re.sub(r"UNTIL=(\d{8}T\d{6})Z", lambda match: "UNTIL=" + _local(match.group(1), zone), rules[0],
                  flags=re.IGNORECASE)  # fmt: skip
    try:
        rule = rrule_module.rrulestr(body, dtstart=start, ignoretz=True)
    except TypeError:
        raise ValueError(f"invalid RRULE {text!r} (FREQ is required)") from None
    except (ValueError, KeyError, IndexError) as error:
        raise ValueError(f"invalid RRULE {text!r} ({error})") from None
    return rule, start


def exdates(text: str | None, timezone: str) -> tuple[DateRange, ...]:
    """The dates of the ``EXDATE`` lines of an RRULE text, as blackout dates in ``timezone``.

    An EXDATE names an excluded opening; the window does not open on that opening's date (in its
    time zone). Raises ValueError for an EXDATE that is not a date or date-time list.
    """
    found: list[DateRange] = []
    zone = ZoneInfo(timezone)
    for line in (part.strip() for part in (text or "").splitlines()):
        if not line.upper().startswith("EXDATE"):
            continue
        values = line.partition(":")[2]
        for value in (item.strip() for item in values.split(",") if item.strip()):
            try:
                if "T" in value.upper():
                    moment = dt.datetime.strptime(value.upper().rstrip("Z"), "%Y%m%dT%H%M%S")
                    if value.upper().endswith("Z"):
                        moment = moment.replace(tzinfo=UTC).astimezone(zone)
                    day = moment.date()
                else:
                    day = dt.datetime.strptime(value, "%Y%m%d").date()
            except ValueError:
                raise ValueError(
                    f"invalid EXDATE value {value!r} in {line!r} (YYYYMMDD or YYYYMMDDTHHMMSS[Z])"
                ) from None
            found.append(DateRange(day, day))
    return tuple(found)


def _dtstart(line: str, zone: ZoneInfo) -> dt.datetime:
    try:
        start: dt.datetime = rrule_module.rrulestr(f"{line}\nRRULE:FREQ=DAILY;COUNT=1")._dtstart
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise ValueError(f"invalid DTSTART {line!r} ({error})") from None
    if start.tzinfo is not None:
        start = start.astimezone(zone).replace(tzinfo=None)
    return start


def _local(utc_text: str, zone: ZoneInfo) -> str:
    moment = dt.datetime.strptime(utc_text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y%m%dT%H%M%S")
