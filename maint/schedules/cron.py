"""The windows as crontab lines, each under ``CRON_TZ=`` its window's time zone."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import replace

from maint.schedules.conversion import calendars
from maint.schedules.export import Export, ScheduleError, Target, _converted, _one_line, _until_note, scheduled
from maint.windows import Window


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
