"""``maint windows``: the maintenance windows of maint.yml, and whether each is open."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from maint.cli.completion import window_names
from maint.cli.options import echo_json, format_option

if TYPE_CHECKING:
    from maint.windows import Window


def _moment(value: str | None) -> dt.datetime | None:
    """``--at``: ISO 8601; None (now) when not given. A time without offset stays naive here."""
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"expected a time in ISO 8601 (2026-11-28T02:30, 2026-11-28T02:30:00+01:00), got {value!r}",
            param_hint="--at",
        ) from None


def _at(moment: dt.datetime | None, window: Window) -> dt.datetime:
    """The moment to judge ``window`` at: now, or ``moment`` (read in the window's time zone if naive)."""
    if moment is None:
        return dt.datetime.now(dt.UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=window.zone)


def _configured() -> dict[str, Window]:
    from maint import config

    return dict(config.load().windows)


def _short(moment: dt.datetime | None, window: Window) -> str:
    return f"{moment.astimezone(window.zone):%Y-%m-%d %H:%M %Z}" if moment else "not within 400 days"


@click.group()
def windows() -> None:
    """The maintenance windows defined in maint.yml: when they open and whether they are open now."""


@windows.command("list")
@format_option
def list_windows(output_format: str) -> None:
    """Every window: its schedule, duration, time zone, hosts, whether it is open now, and its next opening."""
    from maint.checks import human_age
    from maint.reports.text import table
    from maint.windows import status

    defined = _configured()
    states = {name: status(window, _at(None, window)) for name, window in defined.items()}
    if output_format == "json":
        echo_json([
            {**window.as_dict(), **{key: value for key, value in states[name].as_dict().items() if key != "window"}}
            for name, window in defined.items()
        ])  # fmt: skip
        return
    if not defined:
        click.echo("no windows in maint.yml", err=True)
        return
    rows = [
        [name, window.schedule.replace("\n", " "), human_age(window.duration.total_seconds()), window.timezone,
         window.hosts, "yes" if states[name].open else "no", _short(states[name].next_opens_at, window)]
        for name, window in defined.items()
    ]  # fmt: skip
    click.echo(table(["NAME", "SCHEDULE", "DURATION", "TIMEZONE", "HOSTS", "OPEN", "NEXT OPENING"], rows))


@windows.command("status")
@click.argument("name", required=False, shell_complete=window_names)
@click.option("--at", "at_text", metavar="TIME",
              help="Judge at this time (ISO 8601; without an offset, in each window's time zone). Default: now.")
@format_option
def window_status(name: str | None, at_text: str | None, output_format: str) -> None:
    """Whether a window (default: every window) is open, since and until when, or when it opens next.

    Informational: exits 0 whether the window is open or not.
    """
    from maint.windows import find_window, status

    moment = _moment(at_text)
    defined = _configured()
    chosen = [find_window(defined, name)] if name is not None else list(defined.values())
    states = [status(window, _at(moment, window)) for window in chosen]
    if output_format == "json":
        documents = [state.as_dict() for state in states]
        echo_json(documents[0] if name is not None else documents)
        return
    if not states:
        click.echo("no windows in maint.yml", err=True)
    for state in states:
        click.echo(f"{state.window}: {state.reason}")
