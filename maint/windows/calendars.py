"""The days a window stays shut: blackout dates and public holiday calendars, read from maint.yml and
checked against an opening's date in the window's time zone.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maint.windows.model import Window

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


# Parsing: each returns the checked value or raises ValueError saying what was expected.


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
