"""What every export shares: how a job runs maint, what an export produces, the windows it schedules,
where in maint.yml a problem is, and writing the files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maint.errors import BadInput
from maint.schedules.calendar import Unconvertible
from maint.windows import Window


@dataclass(frozen=True)
class Target:
    """How a generated job runs maint: in ``project_dir``, with ``command`` (the maint executable, absolute),
    on ``inventory`` (sources as ``-i`` takes them, paths absolute), with ``config`` as MAINT_CONFIG when set."""

    project_dir: Path
    command: tuple[str, ...]
    inventory: tuple[str, ...]
    config: Path | None = None

    def arguments(self, window: str) -> list[str]:
        """The command line of ``maint schedule run WINDOW -i ...``."""
        inventory = [part for source in self.inventory for part in ("-i", source)]
        return [*self.command, "schedule", "run", window, *inventory]


@dataclass(frozen=True)
class Export:
    """What an export produced: ``files`` by name (unit files, or one crontab text) and ``notes`` for stderr."""

    files: Mapping[str, str]
    notes: Sequence[str] = field(default_factory=tuple)


class ScheduleError(BadInput):
    """The windows cannot be exported; ``errors`` holds every problem found (the message shows the first)."""

    def __init__(self, errors: Sequence[str]) -> None:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(errors[0] + more)
        self.errors = list(errors)


def window_lines(path: Path | None) -> dict[str, dict[str, int]]:
    """Line numbers in maint.yml: window name -> {"": the window's line, option: its line}; {} if unknown."""
    from maint.yamlfile import LineDict, load_yaml_file

    if path is None:
        return {}
    try:
        data, _ = load_yaml_file(path)
    except BadInput:
        return {}
    section = data.get("windows") if isinstance(data, dict) else None
    if not isinstance(section, LineDict):
        return {}
    lines: dict[str, dict[str, int]] = {}
    for name, options in section.items():
        found = {"": section.line_of(name)}
        if isinstance(options, LineDict):
            found.update(options.key_lines)
        lines[str(name)] = found
    return lines


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}: " if line else f"{source}: "


def scheduled(windows: Mapping[str, Window], source: str, lines: Mapping[str, Mapping[str, int]]
              ) -> tuple[list[Window], list[str]]:  # fmt: skip
    """The windows that have playbooks (the ones a schedule runs), and a note for each one skipped.

    Raises ScheduleError when there is no window, or none with playbooks.
    """
    if not windows:
        raise ScheduleError([f"{source}: defines no windows (add one under 'windows:' with 'playbooks:' to "
                             "schedule it)"])  # fmt: skip
    chosen = [window for window in windows.values() if window.playbooks]
    notes = [
        f"{_where(source, lines.get(window.name, {}).get(''))}window '{window.name}' has no playbooks: not scheduled"
        for window in windows.values() if not window.playbooks
    ]  # fmt: skip
    if not chosen:
        raise ScheduleError([f"{source}: no window has 'playbooks' (what a schedule runs in it); add "
                             "'playbooks: [NAME]' to a window"])  # fmt: skip
    return chosen, notes


def _converted(windows: Sequence[Window], source: str, lines: Mapping[str, Mapping[str, int]],
               convert: Any) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """``convert(window)`` for each window; every Unconvertible becomes an error naming the window and line."""
    results: dict[str, Any] = {}
    errors = []
    for window in windows:
        try:
            results[window.name] = convert(window)
        except Unconvertible as error:
            key = "cron" if window.cron is not None else "rrule"
            line = lines.get(window.name, {}).get(key) or lines.get(window.name, {}).get("")
            errors.append(f"{_where(source, line)}At 'windows.{window.name}.{key}': {error}")
    return results, errors


def _until_note(window: Window, source: str, lines: Mapping[str, Mapping[str, int]]) -> list[str]:
    if window.rrule is None or not re.search(r"\b(COUNT|UNTIL)=", window.rrule, re.IGNORECASE):
        return []
    line = lines.get(window.name, {}).get("rrule")
    return [f"{_where(source, line)}window '{window.name}': the schedule does not end with the rule's COUNT or "
            "UNTIL; later runs find the window closed and exit 7"]  # fmt: skip


def _one_line(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise ScheduleError([f"a line break in {text!r} cannot be written into a unit file or a crontab"])
    return text


def write_units(directory: Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` into ``directory`` (created if missing), each atomically with mode 0644; returns the paths.

    Raises BadInput when the directory or a file cannot be written.
    """
    from maint.files import write_atomic

    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = directory / name
            write_atomic(path, text)
            written.append(path)
    except OSError as error:
        raise BadInput(f"cannot write the units: {error.strerror}", source=str(error.filename or directory)) from None
    return written
