"""``disk.usage`` and ``disk.inodes``: how full the filesystem holding a path is, in space and inodes."""

from __future__ import annotations

import re
from typing import ClassVar

from maint.checks import (
    Outcome,
    Param,
    Status,
    StepType,
    command_failure,
    human_bytes,
    percent,
    quote,
    text,
    threshold_status,
)
from maint.executors import CommandResult

# The filesystem name may be long and the mount point may hold spaces: anchor on the numbers.
_DF_LINE = re.compile(r"\s(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(.+?)\s*$")


class _DiskCheck(StepType):
    """A POSIX ``df -P`` line (total, used, free, use%, mount) against ``warn`` and ``critical``."""

    df_flag: ClassVar[str] = ""
    params = {
        "path": Param(text, "/", help="a path on the filesystem to check"),
        "warn": Param(percent, 80.0, help="warning at or above this used percentage"),
        "critical": Param(percent, 90.0, help="failed at or above this used percentage"),
    }

    def command(self) -> str:
        """POSIX df output: one header line and one line per filesystem, never wrapped."""
        return f"df -P {self.df_flag} -- {quote(self.values['path'])}"

    def evaluate(self, result: CommandResult) -> Outcome:
        """Parse the last df line and compare its use% with the thresholds."""
        what = f"df {self.df_flag} {self.values['path']}"
        if result.exit_code != 0:
            return command_failure(result, what)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        match = _DF_LINE.search(lines[-1]) if len(lines) >= 2 else None
        if not match:
            shown = lines[-1] if lines else result.stdout.strip()
            return Outcome(Status.ERROR, f"{what}: cannot parse {shown[:120]!r}")
        total, used, free = (int(value) for value in match.group(1, 2, 3))
        used_percent = float(match.group(4))
        status = threshold_status(used_percent, self.values["warn"], self.values["critical"])
        limits = f"(warn {self.values['warn']:g}%, critical {self.values['critical']:g}%)"
        summary, metrics = self.describe(match.group(5), used_percent, total, used, free)
        return Outcome(status, f"{summary} {limits}", metrics)

    def describe(
        self, mount: str, used_percent: float, total: int, used: int, free: int
    ) -> tuple[str, dict[str, float]]:
        """The summary (without the limits) and the metrics of one df line."""
        raise NotImplementedError


class DiskUsage(_DiskCheck):
    """Runs ``df -P -k`` on ``path``: used space."""

    name = "disk.usage"
    description = "Used space of the filesystem holding a path, against warn/critical percentages."
    df_flag = "-k"

    def describe(
        self, mount: str, used_percent: float, total: int, used: int, free: int
    ) -> tuple[str, dict[str, float]]:
        """Sizes are 1024-byte blocks."""
        metrics = {
            "used_percent": used_percent,
            "size_bytes": float(total * 1024),
            "used_bytes": float(used * 1024),
            "available_bytes": float(free * 1024),
        }
        return f"{mount} {used_percent:g}% used, {human_bytes(free * 1024)} free", metrics


class DiskInodes(_DiskCheck):
    """Runs ``df -P -i`` on ``path``: used inodes (filesystems without inodes, like btrfs, are an error)."""

    name = "disk.inodes"
    description = "Used inodes of the filesystem holding a path, against warn/critical percentages."
    df_flag = "-i"

    def describe(
        self, mount: str, used_percent: float, total: int, used: int, free: int
    ) -> tuple[str, dict[str, float]]:
        """Counts of inodes."""
        metrics = {"inodes_used_percent": used_percent, "inodes_total": float(total), "inodes_free": float(free)}
        return f"{mount} {used_percent:g}% of inodes used, {free} free", metrics
