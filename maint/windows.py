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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import heapq
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadDateError, CroniterError, croniter
from dateutil import rrule as rrule_module
from dateutil.relativedelta import relativedelta

from maint.errors import BadInput

UTC = dt.UTC
HORIZON = dt.timedelta(days=400)
DEFAULT_GRACE = dt.timedelta(minutes=5)
# An RRULE without DTSTART starts here (in the window's time zone): the fields a rule leaves out
# (minute, second, weekday of a WEEKLY rule, day of a MONTHLY one) and INTERVAL counting come from it.
RULE_ANCHOR = dt.datetime(2000, 1, 1)
CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# UTC offsets stay within a day of each other (even Samoa's skipped day in 2011), so a wall-clock
# time maps to an instant less than a day from the same digits read as UTC.
_OFFSET_BOUND = dt.timedelta(days=1)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class DateRange:
    """Blackout dates from ``first`` to ``last``, both included (one date: first == last)."""

    first: dt.date
    last: dt.date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.first <= day <= self.last

    def __str__(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


@dataclass(frozen=True)
class HolidayCalendar:
    """The public holidays of a country (ISO 3166-1 code), optionally of one of its subdivisions, with
    their names in ``language`` (default: the country's own)."""

    country: str
    subdivision: str | None = None
    language: str | None = None

    def __str__(self) -> str:
        return f"{self.country}-{self.subdivision}" if self.subdivision else self.country

    def holiday(self, day: dt.date) -> str | None:
        """The name of the holiday on ``day`` (in ``language``, else the country's own), or None."""
        name: str | None = _calendar(self.country, self.subdivision, self.language).get(day)
        return name


@dataclass(frozen=True)
class Ping:
    """URLs (or env:/file: references to them) requested when a windowed run starts, succeeds or fails."""

    start: str | None = None
    success: str | None = None
    fail: str | None = None


@dataclass(frozen=True)
class Window:
    """A maintenance window from maint.yml.

    Exactly one of ``cron`` and ``rrule`` gives the openings; ``duration`` is how long each stays
    open. Construction checks every field and raises ValueError on the first one that is invalid.
    """

    name: str
    duration: dt.timedelta
    cron: str | None = None
    rrule: str | None = None
    timezone: str = "UTC"
    blackouts: tuple[DateRange, ...] = ()
    holidays: tuple[HolidayCalendar, ...] = ()
    hosts: str = "all"
    playbooks: tuple[str, ...] = ()
    grace: dt.timedelta = DEFAULT_GRACE
    ping: Ping = field(default_factory=Ping)

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.rrule is None):
            raise ValueError("give exactly one of 'cron' and 'rrule'")
        if self.duration <= dt.timedelta(0):
            raise ValueError(f"the duration must be longer than 0, got {self.duration}")
        if self.grace < dt.timedelta(0):
            raise ValueError(f"the grace must not be negative, got {self.grace}")
        parse_timezone(self.timezone)
        if self.cron is not None:
            parse_cron(self.cron)
        if self.rrule is not None:
            _rule(self.rrule, self.timezone)

    @property
    def schedule(self) -> str:
        """The recurrence as written: the cron expression or the RRULE."""
        return self.cron if self.cron is not None else str(self.rrule)

    @property
    def zone(self) -> ZoneInfo:
        """The window's time zone."""
        return ZoneInfo(self.timezone)

    def as_dict(self) -> dict[str, Any]:
        """The window as plain data (durations in seconds) for JSON output."""
        return {
            "name": self.name,
            "cron": self.cron,
            "rrule": self.rrule,
            "duration": self.duration.total_seconds(),
            "timezone": self.timezone,
            "blackouts": [str(blackout) for blackout in self.blackouts],
            "holidays": [str(calendar) for calendar in self.holidays],
            "hosts": self.hosts,
            "playbooks": list(self.playbooks),
            "grace": self.grace.total_seconds(),
            "ping": dataclasses.asdict(self.ping),
        }


@dataclass(frozen=True)
class Opening:
    """One period the window is open (UTC): ``closes_at`` is None when it does not close within the horizon."""

    opens_at: dt.datetime
    closes_at: dt.datetime | None


@dataclass(frozen=True)
class WindowStatus:
    """Whether a window is open at ``at``, and when it opens and closes next.

    Times are in UTC, so comparing them is safe across DST folds; ``as_dict`` shows them in the
    window's ``timezone``. ``opened_at``, ``closes_at`` and ``grace_until`` (``closes_at`` plus the
    window's grace) are set when it is open; ``next_opens_at`` and ``next_closes_at`` are the next
    period that begins after ``at`` (after the current one, when open), None when there is none
    within the horizon.
    """

    window: str
    timezone: str
    at: dt.datetime
    open: bool
    opened_at: dt.datetime | None
    closes_at: dt.datetime | None
    grace_until: dt.datetime | None
    next_opens_at: dt.datetime | None
    next_closes_at: dt.datetime | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The status as plain data, times in ISO 8601 in the window's time zone (with its UTC offset)."""
        zone = ZoneInfo(self.timezone)
        return {
            key: value.astimezone(zone).isoformat() if isinstance(value, dt.datetime) else value
            for key, value in dataclasses.asdict(self).items()
        }


class UnknownWindow(BadInput):
    """A window name that maint.yml does not define."""


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


def parse_blackouts(value: Any) -> tuple[DateRange, ...]:
    """Dates (``2026-12-24``) and inclusive ranges (``2026-12-20..2027-01-06``), one or a list.

    Returns them as DateRange; raises ValueError naming the first entry that is neither.
    """
    items = value if isinstance(value, list) else [value]
    ranges = []
    for item in items:
        # YAML reads an unquoted 2026-12-24 as a date already.
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            ranges.append(DateRange(item, item))
            continue
        dates = [_date(part) for part in item.split("..")] if isinstance(item, str) else []
        first, last = (dates[0], dates[-1]) if 1 <= len(dates) <= 2 else (None, None)
        if first is None or last is None:
            expected = "a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD)"
            raise ValueError(f"expected {expected}, got {item!r}")
        if last < first:
            raise ValueError(f"the range {item!r} ends before it starts")
        ranges.append(DateRange(first, last))
    return tuple(ranges)


def _date(text: str) -> dt.date | None:
    """``YYYY-MM-DD`` (spaces around it aside) as a date, or None."""
    text = text.strip()
    if not _DATE.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def parse_holidays(value: Any) -> tuple[HolidayCalendar, ...]:
    """``{country: DE, subdivision: BY}`` or a list of such: public holiday calendars of the holidays package.

    ``language`` (optional) names the holidays in another of the country's languages. Returns them as
    HolidayCalendar; raises ValueError for an unknown key, country, subdivision or language.
    """
    items = value if isinstance(value, list) else [value]
    if not items:
        return ()
    import holidays

    supported: Mapping[str, Sequence[str]] = holidays.list_supported_countries()
    calendars = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("country"), str):
            raise ValueError(f"expected {{country: CODE, subdivision: CODE}} or a list of them, got {item!r}")
        unknown = sorted(set(item) - {"country", "subdivision", "language"})
        if unknown:
            raise ValueError(f"unknown key '{unknown[0]}' in {dict(item)!r} (keys: country, subdivision, language)")
        country = item["country"].strip().upper()
        if country not in supported:
            raise ValueError(f"unknown holiday country {item['country']!r} (an ISO 3166-1 code such as DE or US)")
        subdivision = _one_of(item.get("subdivision"), supported[country], "subdivision", country)
        languages = holidays.country_holidays(country).supported_languages
        language = _one_of(item.get("language"), languages, "holiday language", country)
        calendars.append(HolidayCalendar(country, subdivision, language))
    return tuple(calendars)


def _one_of(value: Any, known: Sequence[str], noun: str, country: str) -> str | None:
    """``value`` as spelled in ``known`` (case aside), None when not given; ValueError when not known."""
    if value is None:
        return None
    match = next((name for name in known if name.upper() == str(value).strip().upper()), None)
    if match is None:
        raise ValueError(f"unknown {noun} {value!r} of {country} (known: {', '.join(known) or 'none'})")
    return match


def parse_url(value: Any) -> str:
    """An http(s) URL, or a secret reference (env:NAME, file:PATH) to one; raises ValueError otherwise."""
    from maint.secrets import is_reference

    if isinstance(value, str) and (re.match(r"^https?://[^\s/]+", value) or is_reference(value)):
        return value
    raise ValueError(f"expected an http(s) URL or an env:/file: reference, got {value!r}")


def window_name(value: str) -> str:
    """A window's name: letters, digits, '-', '_' and '.', as ``--window NAME`` takes it; ValueError otherwise."""
    if not _NAME.match(value):
        raise ValueError(f"a window name is letters, digits, '-', '_' and '.', got {value!r}")
    return value


def find_window(windows: Mapping[str, Window], name: str) -> Window:
    """The window called ``name``; raises UnknownWindow (exit 3) naming the ones defined."""
    if name in windows:
        return windows[name]
    if not windows:
        raise UnknownWindow(f"unknown window '{name}'", hint="maint.yml defines no windows")
    close = difflib.get_close_matches(name, list(windows), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UnknownWindow(f"unknown window '{name}'", hint=f"{hint}known: {', '.join(windows)}")


# Status and openings


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


def _skip_reason(window: Window, opening: dt.datetime) -> str | None:
    """Why the window does not open at ``opening`` (``a blackout date (2026-12-24)``), or None."""
    day = opening.astimezone(window.zone).date()
    for blackout in window.blackouts:
        if day in blackout:
            return f"a blackout date ({day.isoformat()})"
    for calendar in window.holidays:
        name = calendar.holiday(day)
        if name:
            return f"a holiday ({name}, {calendar})"
    return None


@functools.lru_cache(maxsize=64)
def _calendar(country: str, subdivision: str | None, language: str | None) -> Any:
    import holidays

    calendar = holidays.country_holidays(country, subdiv=subdivision)
    # Without a language the package follows the process's locale: name the language so the same
    # maint.yml gives the same words on every machine.
    return holidays.country_holidays(country, subdiv=subdivision, language=language or calendar.default_language)


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
