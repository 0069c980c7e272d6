"""``file.age``: how long ago a file was last modified (backup stamps, heartbeat files, logs)."""

from __future__ import annotations

from maint.checks import Outcome, Param, Status, StepType, choice, duration, quote, text
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
        summary = f"{path} modified {_age(age)} ago (max {_age(max_age)})"
        return Outcome(status, summary, {"age_seconds": float(age)})


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
