"""A maintenance window as maint.yml defines it, its status at a moment, and finding one by name."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from maint.errors import BadInput
from maint.windows.calendars import DateRange, HolidayCalendar
from maint.windows.recurrence import _rule, parse_cron, parse_timezone

DEFAULT_GRACE = dt.timedelta(minutes=5)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
