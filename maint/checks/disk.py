"""``disk.usage``: how full the filesystem holding a path is."""

from __future__ import annotations

import re

from maint.checks import (
    Outcome,
    Param,
    Status,
    StepType,
    command_failure,
    percent,
    quote,
    text,
    threshold_status,
)
from maint.executors import CommandResult

_DF_LINE = re.compile(r"\s(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(.+?)\s*$")


class DiskUsage(StepType):
    """Runs ``df -P`` on ``path`` and compares the used percentage with ``warn`` and ``critical``."""

    name = "disk.usage"
    description = "Used space of the filesystem holding a path, against warn/critical percentages."
    params = {
        "path": Param(text, "/", help="a path on the filesystem to check"),
        "warn": Param(percent, 80.0, help="warning at or above this used percentage"),
        "critical": Param(percent, 90.0, help="failed at or above this used percentage"),
    }

    def command(self) -> str:
        """POSIX df output: one header line and one line per filesystem, never wrapped."""
        return f"df -P -k -- {quote(self.values['path'])}"

    def evaluate(self, result: CommandResult) -> Outcome:
        """Parse the last df line: filesystem, 1024-blocks, used, available, capacity, mount."""
        path = self.values["path"]
        if result.exit_code != 0:
            return command_failure(result, f"df {path}")
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        if len(lines) < 2:
            return Outcome(Status.ERROR, f"df {path}: unexpected output: {result.stdout.strip()[:120]!r}")
        # The filesystem name may be long and the mount point may hold spaces: anchor on the numbers.
        match = _DF_LINE.search(lines[-1])
        if not match:
            return Outcome(Status.ERROR, f"df {path}: cannot parse {lines[-1]!r}")
        size_kb, used_kb, available_kb = (int(value) for value in match.group(1, 2, 3))
        used_percent = float(match.group(4))
        mount = match.group(5)
        warn, critical = self.values["warn"], self.values["critical"]
        status = threshold_status(used_percent, warn, critical)
        free = _human(available_kb * 1024)
        summary = f"{mount} {used_percent:g}% used, {free} free (warn {warn:g}%, critical {critical:g}%)"
        metrics = {
            "used_percent": used_percent,
            "size_bytes": float(size_kb * 1024),
            "used_bytes": float(used_kb * 1024),
            "available_bytes": float(available_kb * 1024),
        }
        return Outcome(status, summary, metrics)


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"


class DiskInodes(StepType):
    """Runs ``df -P -i`` on ``path`` and compares the used inode percentage with ``warn``/``critical``."""

    name = "disk.inodes"
    description = "Used inodes of the filesystem holding a path, against warn/critical percentages."
    params = {
        "path": Param(text, "/", help="a path on the filesystem to check"),
        "warn": Param(percent, 80.0, help="warning at or above this used percentage"),
        "critical": Param(percent, 90.0, help="failed at or above this used percentage"),
    }

    def command(self) -> str:
        """POSIX df inode output: inodes, used, free, use%, mount."""
        return f"df -P -i -- {quote(self.values['path'])}"

    def evaluate(self, result: CommandResult) -> Outcome:
        """Parse the last df line; filesystems without inodes (btrfs shows '-') are an error."""
        path = self.values["path"]
        if result.exit_code != 0:
            return command_failure(result, f"df -i {path}")
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        match = _DF_LINE.search(lines[-1]) if len(lines) >= 2 else None
        if not match:
            shown = lines[-1] if lines else result.stdout.strip()
            return Outcome(Status.ERROR, f"df -i {path}: no inode figures in {shown[:120]!r}")
        total, free = int(match.group(1)), int(match.group(3))
        used_percent = float(match.group(4))
        warn, critical = self.values["warn"], self.values["critical"]
        summary = (
            f"{match.group(5)} {used_percent:g}% of inodes used, {free} free "
            f"(warn {warn:g}%, critical {critical:g}%)"
        )
        metrics = {"inodes_used_percent": used_percent, "inodes_total": float(total), "inodes_free": float(free)}
        return Outcome(threshold_status(used_percent, warn, critical), summary, metrics)
