"""Runs commands on the controller itself, for hosts with ``ansible_connection=local``."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING

from maint.executors import BecomeFailed, CommandResult

if TYPE_CHECKING:
    from maint.become import Become
    from maint.inventory import Host

# How often a running command is checked for its deadline and for the run being stopped.
POLL = 0.2
# After SIGTERM, how long the command's process group gets before SIGKILL.
TERM_GRACE = 2.0


class LocalConnection:
    """Runs each command with ``/bin/sh -c`` in a subprocess, in a process group of its own."""

    def run(
        self, command: str, timeout: float, stdin: str | None = None, cancel: threading.Event | None = None,
        become: Become | None = None,
    ) -> CommandResult:
        """Run ``command`` locally; at ``timeout`` (``timed_out``) or on ``cancel`` (``cancelled``) its whole
        process group is ended, SIGTERM then SIGKILL. Raises BecomeFailed for any ``become``: the local
        executor does not escalate (an Ansible step does, or the host reached over ssh)."""
        if become is not None:
            raise BecomeFailed(
                f"ansible_connection=local: native steps do not escalate locally ({become.method} to {become.user}); "
                "reach the controller over ssh, or run the step as an Ansible step"
            )
        started = time.monotonic()
        deadline = started + timeout
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        data = stdin.encode("utf-8") if stdin is not None else b""
        ended = ""
        while True:
            wait = min(POLL, max(0.0, deadline - time.monotonic()))
            try:
                stdout, stderr = process.communicate(data, timeout=wait)
                break
            except subprocess.TimeoutExpired:
                data = b""  # communicate() keeps what it sent; later calls only read
                if time.monotonic() < deadline and not (cancel is not None and cancel.is_set()):
                    continue
            ended = _end_group(process)
            stdout, stderr = process.communicate()
            break
        cancelled = bool(ended) and cancel is not None and cancel.is_set()
        return CommandResult(
            command=command,
            exit_code=None if ended else process.returncode,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=stderr.decode("utf-8", "replace"),
            duration=time.monotonic() - started,
            timed_out=bool(ended) and not cancelled,
            cancelled=cancelled,
            ended=ended,
        )

    def close(self) -> None:
        """Nothing to release."""


def _end_group(process: subprocess.Popen[bytes]) -> str:
    """End ``process``'s process group: SIGTERM, then SIGKILL after TERM_GRACE; says what was done."""
    sent = ""
    for signal_number, grace in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:  # gone already (it finished just then, or SIGTERM ended it)
            break
        sent = signal_number.name
        try:
            process.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    return f"ended the step's processes with {sent} (process group {process.pid})" if sent else ""


class LocalExecutor:
    """The executor for the controller itself; ``connect_timeout`` (every executor is made with it) has
    nothing to bound here."""

    name = "local"

    def __init__(self, connect_timeout: float = 10.0) -> None:
        self.connect_timeout = connect_timeout

    def connect(self, host: Host) -> LocalConnection:
        """A connection that runs commands in local subprocesses."""
        return LocalConnection()
