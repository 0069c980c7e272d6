"""``file.age``: how long ago a file was last modified (backup stamps, heartbeat files, logs)."""

from __future__ import annotations

import re
from typing import Any

from maint.checks import (
    Outcome,
    Param,
    Status,
    StepType,
    choice,
    command_failure,
    duration,
    human_age,
    human_bytes,
    quote,
    text,
)
from maint.executors import CommandResult

MISSING_MARK = "MAINT-FILE-MISSING"


class FileAge(StepType):
    """Compares the age of ``path`` (by the host's own clock) with ``max_age`` and ``warn_age``."""

    name = "file.age"
    description = "Age of a file's last modification, by the host's clock, against max_age."
    params = {
        "path": Param(text, required=True, help="file whose modification time is checked"),
        "max_age": Param(duration, required=True, help="failed when older (90, 15m, 36h, 2d)"),
        "warn_age": Param(duration, help="warning when older"),
        "missing": Param(choice("failed", "warning", "error"), "failed", help="status when the file is missing"),
    }

    def command(self) -> str:
        """The file's mtime and the host's current time, in epoch seconds, on two lines."""
        path = quote(self.values["path"])
        return f"if [ -e {path} ]; then stat -c %Y -- {path}; else echo {MISSING_MARK}; fi; date +%s"

    def evaluate(self, result: CommandResult) -> Outcome:
        """Age = host time - mtime; missing files get the ``missing`` status."""
        path = self.values["path"]
        lines = result.stdout.split()
        if result.exit_code != 0 or len(lines) != 2:
            detail = result.stderr.strip().splitlines()[-1:] or [f"exit {result.exit_code}"]
            return Outcome(Status.ERROR, f"cannot read the age of {path}: {detail[0]}")
        if lines[0] == MISSING_MARK:
            return Outcome(Status(self.values["missing"]), f"{path} does not exist")
        try:
            modified, now = int(lines[0]), int(lines[1])
        except ValueError:
            return Outcome(Status.ERROR, f"cannot parse the age of {path}: {result.stdout.strip()!r}")
        age = max(0, now - modified)
        max_age, warn_age = self.values["max_age"], self.values["warn_age"]
        if age > max_age:
            status = Status.FAILED
        elif warn_age is not None and age > warn_age:
            status = Status.WARNING
        else:
            status = Status.OK
        summary = f"{path} modified {human_age(age)} ago (max {human_age(max_age)})"
        return Outcome(status, summary, {"age_seconds": float(age)})


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def size(value: Any) -> float:
    """Bytes, from a number or a text such as ``500M``, ``2G``, ``100KiB``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"expected a size like 500M or 2G, got {value!r}")
    return float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


class LogSize(StepType):
    """Total size of a log file or directory (``du``) against ``max_size`` and ``warn_size``."""

    name = "log.size"
    description = "Size of a log file or directory, against warn/max sizes (pair it with log.cleanup)."
    params = {
        "path": Param(text, required=True, help="log file or directory"),
        "max_size": Param(size, required=True, help="failed when larger (500M, 2G)"),
        "warn_size": Param(size, help="warning when larger"),
    }

    def command(self) -> str:
        """Apparent size in bytes (GNU du)."""
        return f"du -s -b -- {quote(self.values['path'])}"

    def evaluate(self, result: CommandResult) -> Outcome:
        """Compare du's first field with the thresholds."""
        path = self.values["path"]
        fields = result.stdout.split()
        if result.exit_code != 0 or not fields or not fields[0].isdigit():
            return command_failure(result, f"du {path}")
        used = float(fields[0])
        status = Status.OK
        if used > self.values["max_size"]:
            status = Status.FAILED
        elif self.values["warn_size"] is not None and used > self.values["warn_size"]:
            status = Status.WARNING
        summary = f"{path} holds {human_bytes(used)} (max {human_bytes(self.values['max_size'])})"
        return Outcome(status, summary, {"size_bytes": used})


class LogCleanup(StepType):
    """Deletes files under ``path`` matching ``pattern`` that are older than ``older_than``: the classic L1 fix."""

    name = "log.cleanup"
    description = "Task: delete old rotated logs (files matching a pattern, older than an age) under a directory."
    changes_host = True
    params = {
        "path": Param(text, required=True, help="directory to clean"),
        "pattern": Param(text, "*.gz", help="file name pattern (find -name)"),
        "older_than": Param(duration, 7 * 86400.0, help="only files last modified before this age (7d)"),
    }

    def command(self) -> str:
        """find ... -print the size and name of each file, then delete it."""
        path = quote(self.values["path"])
        minutes = max(1, int(self.values["older_than"] // 60))
        return (
            f"test -d {path} || {{ echo 'not a directory: '{path} >&2; exit 2; }}; "
            f"find {path} -xdev -type f -name {quote(self.values['pattern'])} -mmin +{minutes} "
            "-printf '%s %p\\n' -delete"
        )

    def evaluate(self, result: CommandResult) -> Outcome:
        """ok with the count and bytes freed."""
        if result.exit_code != 0:
            return command_failure(result, f"cleanup of {self.values['path']}")
        removed = [line.split(" ", 1) for line in result.stdout.splitlines() if " " in line]
        freed = float(sum(int(size_text) for size_text, _ in removed if size_text.isdigit()))
        summary = f"removed {len(removed)} files, {human_bytes(freed)} freed under {self.values['path']}"
        return Outcome(Status.OK, summary, {"files_removed": float(len(removed)), "bytes_freed": freed})
