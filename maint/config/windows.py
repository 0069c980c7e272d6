"""The ``windows`` section: each window's options checked against WINDOW and built into a Window."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maint.config.schema import WINDOW
from maint.config.validation import _raw, _validate, _where
from maint.yamlfile import LineDict

if TYPE_CHECKING:
    from maint.windows import Window


def _windows(checked: dict[str, Any], data: Any, source: str, errors: list[str]) -> dict[str, Window]:
    """Validate each window against WINDOW and build it; ``checked["windows"]`` gets the checked options."""
    if not checked["windows"]:
        return {}
    import datetime as dt

    from maint.windows import Ping, Window, exdates, window_name

    section = _raw(data, "windows")
    options_of: dict[str, Any] = {}
    windows: dict[str, Window] = {}
    for name, options in checked["windows"].items():
        path = f"windows.{name}"
        line = section.line_of(name) if isinstance(section, LineDict) else None
        try:
            window_name(name)
        except ValueError as error:
            errors.append(f"{_where(source, line, path)}: {error}")
            continue
        if not isinstance(options, dict):
            errors.append(f"{_where(source, line, path)}: expected a mapping of window options (cron or rrule, "
                          f"duration, ...), got {options!r}")  # fmt: skip
            continue
        found = len(errors)
        values = _validate(WINDOW, options, path + ".", source, errors)
        options_of[name] = values
        given = {key for key, value in options.items() if value is not None}
        if {"cron", "rrule"} <= given:
            errors.append(f"{_where(source, line, path)}: give either 'cron' or 'rrule', not both")
        elif not {"cron", "rrule"} & given:
            errors.append(f"{_where(source, line, path)}: needs 'cron' or 'rrule' (when the window opens)")
        if "duration" not in given:
            errors.append(f"{_where(source, line, path)}: needs 'duration' (how long it stays open, e.g. 2h)")
        if len(errors) > found:
            continue
        ping = values["ping"]
        try:
            windows[name] = Window(
                name=name, duration=dt.timedelta(seconds=values["duration"]), cron=values["cron"],
                rrule=values["rrule"], timezone=values["timezone"],
                blackouts=(*values["blackouts"], *exdates(values["rrule"], values["timezone"])),
                holidays=values["holidays"], hosts=values["hosts"], playbooks=tuple(values["playbooks"]),
                grace=dt.timedelta(seconds=values["grace"]),
                ping=Ping(start=ping["start"], success=ping["success"], fail=ping["fail"]),
            )  # fmt: skip
        except ValueError as error:
            errors.append(f"{_where(source, line, path)}: {error}")
    checked["windows"] = options_of
    return windows
