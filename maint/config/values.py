"""The checks of single option values that the schema names: a number, a duration, a host pattern, a
cron expression ...
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

# Value checks: each returns the converted value or raises ValueError with what was expected.


def _whole(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"expected a whole number >= {minimum}, got {value!r}")
        return value

    return check


def _percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError(f"expected a percentage from 0 to 100, got {value!r}")
    return float(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"expected a number >= 0, got {value!r}")
    return float(value)


def _duration(value: Any) -> float:
    from maint.checks import duration

    seconds = duration(value)
    if seconds < 0:
        raise ValueError(f"expected a duration >= 0, got {value!r}")
    return seconds


def _timeout(value: Any) -> float:
    from maint.checks import timeout_seconds

    return timeout_seconds(value)


def _host_pattern(value: Any, matched_without_inventory: bool = False) -> str:
    from maint.inventory.patterns import check_matchable, check_pattern

    text = _text(value)
    try:
        (check_matchable if matched_without_inventory else check_pattern)(text)
    except ValueError as error:
        raise ValueError(f"invalid host pattern {text!r}: {error}") from None
    return text


def _rule_host_pattern(value: Any) -> str:
    """A host pattern matched without the inventory (tickets' quiet rules): no subscripts."""
    return _host_pattern(value, matched_without_inventory=True)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected text, got {value!r}")
    return value


def _moment(value: Any) -> str:
    # YAML reads an unquoted 2026-11-28T02:00:00Z as a datetime (and 2026-11-28 as a date).
    import datetime as dt

    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, str):
        try:
            dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return value.strip()
    raise ValueError(f"expected a time in ISO 8601 (e.g. 2026-11-28T02:00:00Z), got {value!r}")


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return str(value)

    return check


def _texts(choices: Sequence[str] = ()) -> Callable[[Any], list[str]]:
    def check(value: Any) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
            raise ValueError(f"expected a name or a list of names, got {value!r}")
        for item in items:
            if choices and item not in choices:
                raise ValueError(f"expected names from {', '.join(choices)}, got {item!r}")
        return list(items)

    return check


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {value!r}")
    return dict(value)


# Window checks: maint.windows (croniter, dateutil, holidays) is imported only when maint.yml has windows.


def _positive_duration(value: Any) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration longer than 0, got {value!r}")
    return seconds


def _cron(value: Any) -> str:
    from maint.windows import parse_cron

    return parse_cron(value)


def _rrule(value: Any) -> str:
    from maint.windows import parse_rrule

    return parse_rrule(value)


def _timezone(value: Any) -> str:
    from maint.windows import parse_timezone

    return parse_timezone(value)


def _blackouts(value: Any) -> Any:
    from maint.windows import parse_blackouts

    return parse_blackouts(value)


def _holidays(value: Any) -> Any:
    from maint.windows import parse_holidays

    return parse_holidays(value)


def _url(value: Any) -> str:
    from maint.windows import parse_url

    return parse_url(value)


# Notification checks.

# An Apprise URL: a scheme, ``://`` and the rest (Apprise itself knows which schemes and parts are valid).
APPRISE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")


def _apprise_urls(value: Any) -> list[str]:
    """One Apprise URL or a list of them, each ``scheme://...`` or an env:NAME / file:PATH reference.
    The ValueError never quotes a URL: it may hold a token."""
    from maint.secrets import is_reference

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError("expected an Apprise URL or a list of them")
    for number, item in enumerate(items, 1):
        if not isinstance(item, str):
            raise ValueError(f"URL {number}: expected text, got a {type(item).__name__}")
        if not (is_reference(item) or APPRISE_URL.match(item)):
            raise ValueError(f"URL {number}: expected an Apprise URL (scheme://...) or an env:NAME / file:PATH "
                             "reference")  # fmt: skip
    return list(items)
