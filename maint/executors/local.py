"""Runs commands on the controller itself, for hosts with ``ansible_connection=local``."""

from __future__ import annotations

import subprocess
import time
from typing import TYPE_CHECKING

from maint.executors import CommandResult

if TYPE_CHECKING:
    from maint.inventory import Host


class LocalConnection:
    """Runs each command with ``/bin/sh -c`` in a subprocess."""

    def run(self, command: str, timeout: float, stdin: str | None = None) -> CommandResult:
        """Run ``command`` locally; a timeout kills it and sets ``timed_out``."""
        started = time.monotonic()
        try:
            completed = subprocess.run(
                ["/bin/sh", "-c", command],
                capture_output=True,
                timeout=timeout,
                input=stdin.encode("utf-8") if stdin is not None else b"",
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            return CommandResult(
                command=command,
                exit_code=None,
                stdout=(expired.stdout or b"").decode("utf-8", "replace"),
                stderr=(expired.stderr or b"").decode("utf-8", "replace"),
                duration=time.monotonic() - started,
                timed_out=True,
            )
        return CommandResult(
            command=command,
            exit_code=completed.returncode,
            stdout=completed.stdout.decode("utf-8", "replace"),
            stderr=completed.stderr.decode("utf-8", "replace"),
            duration=time.monotonic() - started,
        )

    def close(self) -> None:
        """Nothing to release."""


class LocalExecutor:
    """The executor for the controller itself."""

    name = "local"

    def connect(self, host: Host) -> LocalConnection:
        """A connection that runs commands in local subprocesses."""
        return LocalConnection()
