"""``maint schedule``: run the windows of maint.yml on time, from systemd timers or cron."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from maint.cli.completion import window_names
from maint.cli.options import db_option, format_option, inventory_option, project_dir

if TYPE_CHECKING:
    from maint.schedules import Target


def _maint_command() -> tuple[str, ...]:
    """How a timer or cron starts the maint running now: its executable, absolute, or ``python -m maint``."""
    launched = Path(sys.argv[0])
    if launched.name == "__main__.py":
        return (sys.executable, "-m", "maint")
    if launched.is_file() and os.access(launched, os.X_OK):
        # Absolute but not resolved: a venv's bin/maint keeps working when the venv is rebuilt.
        return (str(launched.absolute()),)
    found = shutil.which("maint")
    return (str(Path(found).absolute()),) if found else (sys.executable, "-m", "maint")


def _inventory_sources(inventory: tuple[str, ...]) -> tuple[str, ...]:
    """``-i`` sources for a job that runs elsewhere: existing paths absolute, host lists ('a,b,') as given."""
    from maint.errors import BadInput
    from maint.inventory import resolve_sources

    sources = []
    for source in resolve_sources(inventory):
        path = Path(source).expanduser()
        if path.exists():
            sources.append(str(path.absolute()))
        elif "," in source:
            sources.append(source)
        else:
            raise BadInput(f"inventory {source} not found", hint="give an existing file, directory or 'host1,host2,'")
    return tuple(sources)


def _target(inventory: tuple[str, ...]) -> Target:
    from maint.config import discover
    from maint.schedules import Target

    found = discover()
    project = found.project_dir.absolute()
    configured = found.path
    # A file other than the project's maint.yml (--config, $MAINT_CONFIG, the user's) must reach the job too.
    config = configured.absolute() if configured and configured.absolute() != project / "maint.yml" else None
    return Target(project, _maint_command(), _inventory_sources(inventory), config)


def _randomized_delay(value: str | None) -> float:
    from maint.checks import duration

    if value is None:
        return 0.0
    try:
        seconds = duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--randomized-delay") from None
    if seconds < 0:
        raise click.BadParameter(f"expected a duration >= 0, got {value!r}", param_hint="--randomized-delay")
    return seconds


def _note(text: str) -> None:
    click.echo(f"maint: note: {text}", err=True)


@click.group()
def schedule() -> None:
    """Run the maintenance windows of maint.yml on time: export systemd timers or crontab lines
    that call `maint schedule run WINDOW` at each opening."""


@schedule.command("export")
@click.option("--systemd", "systemd_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Write maint-WINDOW.service and maint-WINDOW.timer for each window into DIR.")
@click.option("--cron", is_flag=True, help="Print crontab lines (CRON_TZ and schedule per window) on stdout.")
@inventory_option
@click.option("--user", "user_units", is_flag=True,
              help="Units for the user's own systemd (systemctl --user) rather than the system's.")
@click.option("--randomized-delay", metavar="DURATION",
              help="systemd RandomizedDelaySec: start up to this much later (e.g. 5m; shorter than each window).")
@click.pass_context
def export(ctx: click.Context, systemd_dir: Path | None, cron: bool, inventory: tuple[str, ...], user_units: bool,
           randomized_delay: str | None) -> None:  # fmt: skip
    """Export each window that has `playbooks` as a systemd timer (--systemd DIR) or a crontab line (--cron).

    The job runs `maint schedule run WINDOW -i INVENTORY` in this project directory with this maint
    executable. Exit codes: 0 written, 3 bad input (no window with playbooks, a schedule that systemd
    or cron cannot express: every problem is listed with file and line).
    """
    from maint import config
    from maint.cli import error_line
    from maint.schedules import ScheduleError, crontab, systemd_units, window_lines, write_units

    if (systemd_dir is None) == (not cron):
        raise click.UsageError("give one of --systemd DIR and --cron")
    if cron and (user_units or randomized_delay is not None):
        raise click.UsageError("--user and --randomized-delay are options of --systemd")
    delay = _randomized_delay(randomized_delay)
    target = _target(inventory)
    loaded = config.load(target.project_dir)
    source = str(loaded.path or target.project_dir / "maint.yml")
    lines = window_lines(loaded.path)
    try:
        if systemd_dir is not None:
            user = None if user_units or os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
            exported = systemd_units(loaded.windows, target, source=source, lines=lines, user_units=user_units,
                                     randomized_delay=delay, user=user)  # fmt: skip
        else:
            exported = crontab(loaded.windows, target, source=source, lines=lines)
    except ScheduleError as error:
        for message in error.errors:
            error_line(message)
        ctx.exit(int(error.exit_code))
        return
    for note in exported.notes:
        _note(note)
    if systemd_dir is None:
        click.echo(exported.files["crontab"], nl=False)
        return
    for path in write_units(systemd_dir, exported.files):
        click.echo(str(path))
    timers = " ".join(name for name in exported.files if name.endswith(".timer"))
    manager = "systemctl --user" if user_units else "systemctl"
    _note(f"to start them: {manager} daemon-reload && {manager} enable --now {timers}")
    if user_units:
        _note("user timers run only while you are logged in, unless: loginctl enable-linger")


@schedule.command("run")
@click.argument("name", metavar="WINDOW", shell_complete=window_names)
@inventory_option
@format_option
@db_option
def run_window(name: str, inventory: tuple[str, ...], output_format: str, db_url: str | None) -> int:
    """Run the `playbooks` of WINDOW on its `hosts`, kept to the window: what the exported timers call.

    The same run as `maint run PLAYBOOK... -l HOSTS --window WINDOW --reason "scheduled: window
    WINDOW"`, with the window's pings (and maint.yml's `pings` and `notify`, as every run). Exit codes as
    `maint run`: 0 ok, 3 bad input, 4 a step failed, 5 a host was unreachable, 6 aborted, 7 not started
    (the window is closed), 8 the store could not be written (results spooled), 130 interrupted.
    """
    from maint import config
    from maint.cli.run import execute, show_ping_warning
    from maint.errors import MaintError
    from maint.inventory import resolve_sources
    from maint.notify.pings import WindowPings, run_pings
    from maint.schedules import run_request, window_lines
    from maint.windows import find_window

    project = project_dir()
    loaded = config.load(project)
    window = find_window(loaded.windows, name)
    options: dict[str, Any] = {"db_url": db_url, "argv": ["maint", *sys.argv[1:]]}
    pings = [WindowPings(window), *filter(None, [run_pings(loaded)])]
    try:
        request = run_request(window, resolve_sources(inventory), project_dir=project,
                              source=str(loaded.path or project / "maint.yml"), lines=window_lines(loaded.path),
                              **options)  # fmt: skip
    except MaintError as error:
        # A window that cannot run is a failed scheduled job: the monitor hears of it.
        for each in pings:
            show_ping_warning(each.finish(int(error.exit_code), error=str(error)))
        raise
    return execute(request, output_format)
