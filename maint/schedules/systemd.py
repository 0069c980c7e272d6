"""The windows as systemd units: a ``maint-WINDOW.service`` and a ``maint-WINDOW.timer`` for each."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from maint.errors import ExitCode
from maint.schedules.conversion import calendars
from maint.schedules.export import Export, ScheduleError, Target, _converted, _one_line, _until_note, _where, scheduled
from maint.windows import Window

# Exit codes besides 0 after which the scheduled job still counts as having done its work: the run
# went through (steps that failed and unreachable hosts are findings, reported by tickets), or the
# window was closed when the timer fired (a blackout, a holiday, a late start after downtime).
SUCCESS_EXIT_STATUS = (ExitCode.FAILED, ExitCode.UNREACHABLE, ExitCode.NOT_STARTED)
UNIT_PREFIX = "maint-"


def on_calendars(window: Window) -> list[str]:
    """The ``OnCalendar=`` expressions of ``window`` (in its time zone); raises Unconvertible."""
    return [calendar.on_calendar(window.timezone) for calendar in calendars(window)]


def systemd_units(
    windows: Mapping[str, Window],
    target: Target,
    *,
    source: str,
    lines: Mapping[str, Mapping[str, int]] | None = None,
    user_units: bool = False,
    randomized_delay: float = 0.0,
    user: str | None = None,
) -> Export:
    """A ``maint-WINDOW.service`` and ``maint-WINDOW.timer`` for each window with playbooks.

    ``source`` (maint.yml) and ``lines`` place errors and notes. ``user_units`` writes units for the
    user's own manager (``systemctl --user``); otherwise the system units run as ``user`` (no
    ``User=`` when None). ``randomized_delay`` (seconds) spreads the start; it must be shorter than
    each window. Raises ScheduleError listing every window that cannot be exported.
    """
    lines = lines or {}
    chosen, notes = scheduled(windows, source, lines)
    expressions, errors = _converted(chosen, source, lines, on_calendars)
    for window in chosen:
        if randomized_delay and randomized_delay >= window.duration.total_seconds():
            line = lines.get(window.name, {}).get("duration")
            span = _span(window.duration.total_seconds())
            errors.append(f"{_where(source, line)}window '{window.name}' is open for {span}: "
                          f"a randomized delay of {_span(randomized_delay)} could start its run after it closed; "
                          "give a shorter --randomized-delay")  # fmt: skip
    if errors:
        raise ScheduleError(errors)
    files: dict[str, str] = {}
    for window in chosen:
        unit = f"{UNIT_PREFIX}{window.name}"
        files[f"{unit}.service"] = _service(window, target, source, user_units, user)
        files[f"{unit}.timer"] = _timer(window, expressions[window.name], source, user_units, randomized_delay)
        notes.extend(_until_note(window, source, lines))
    return Export(files, notes)


def _header(window: Window, source: str, option: str) -> str:
    return (f"# maint: window '{window.name}' of {source}, written by 'maint schedule export {option}'.\n"
            "# Export again after changing the window rather than editing this file.\n")  # fmt: skip


def _service(window: Window, target: Target, source: str, user_units: bool, user: str | None) -> str:
    playbooks = ", ".join(window.playbooks)
    unit = [
        "[Unit]",
        f"Description={_specifiers(f'maint: {playbooks} in window {window.name} on {window.hosts}')}",
    ]
    if not user_units:
        # The hosts are reached over the network; a user manager has no network-online.target.
        unit += ["Wants=network-online.target", "After=network-online.target"]
    service = [
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={_specifiers(_one_line(str(target.project_dir)))}",
        "ExecStart=" + " ".join(_systemd_word(word) for word in target.arguments(window.name)),
        "# 4 (a step failed) and 5 (a host was unreachable): the run went through, tickets report the findings;",
        "# 7 (not started): the window was closed when the timer fired (a blackout, a holiday, a late boot).",
        "SuccessExitStatus=" + " ".join(str(int(code)) for code in SUCCESS_EXIT_STATUS),
    ]
    if target.config is not None:
        service.append("Environment=" + _systemd_word(f"MAINT_CONFIG={_one_line(str(target.config))}", dollar=False))
    if user and not user_units:
        service.append(f"User={user}")
    return _header(window, source, "--systemd" + (" --user" if user_units else "")) + "\n".join(
        [*unit, "", *service, ""]
    )


def _timer(window: Window, expressions: Sequence[str], source: str, user_units: bool, randomized_delay: float) -> str:
    timer = [
        "[Unit]",
        f"Description={_specifiers(f'maint: window {window.name} ({_one_line(window.schedule)}, {window.timezone})')}",
        "",
        "[Timer]",
        *(f"OnCalendar={expression}" for expression in expressions),
        "# The window opens at these times: start within a second, not within systemd's default minute.",
        "AccuracySec=1s",
    ]
    if randomized_delay:
        timer.append(f"RandomizedDelaySec={_span(randomized_delay)}")
    timer += [
        "# After downtime the missed run starts at boot; maint runs it only if the window is still open.",
        "Persistent=true",
        f"Unit={UNIT_PREFIX}{window.name}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ]
    return _header(window, source, "--systemd" + (" --user" if user_units else "")) + "\n".join(timer)


def _span(seconds: float) -> str:
    """A systemd time span: ``5min``, ``90s``, ``1.5s``."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}min"
    return f"{seconds:g}s"


def _specifiers(text: str) -> str:
    # systemd expands %-specifiers in most settings; a literal % is written %%.
    return text.replace("%", "%%")


def _systemd_word(word: str, dollar: bool = True) -> str:
    """One word of ExecStart= (or an Environment= assignment), quoted when it needs to be."""
    escaped = _specifiers(_one_line(word))
    if dollar:
        escaped = escaped.replace("$", "$$")  # ExecStart= expands $VARIABLE
    if escaped and not re.search(r"[\s\"'\\;]", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
