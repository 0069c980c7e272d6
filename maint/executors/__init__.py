"""Executors run shell commands on hosts and return one :class:`CommandResult` type.

An executor opens one :class:`Connection` per host and the engine runs all of that host's steps over
it. Executors register under the ``maint.executors`` entry point group.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from maint.become import Become
    from maint.inventory import Host

# How much of a command's output a result keeps for records and tickets.
TAIL_LINES = 40
TAIL_CHARS = 4000


@dataclass(frozen=True)
class CommandResult:
    """A finished (or timed-out) command: what ran, its exit code, output and duration.

    ``exit_code`` is None when the command did not finish (``timed_out``, ``cancelled``) or the channel
    broke. ``ended`` says what maint ended on the host when the command did not finish by itself (its
    process group and the signal), empty otherwise.
    """

    command: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    cancelled: bool = False  # the run was stopped (Ctrl-C, SIGTERM) while the command ran
    ended: str = ""

    def tail(self, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
        """The last lines of stdout and stderr, bounded, for records and ticket bodies."""
        parts = []
        if self.stdout.strip():
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr.strip():
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        if self.ended:
            parts.append(f"[maint] {self.ended}")
        combined = "\n".join(parts)
        kept = combined.splitlines()[-lines:]
        result = "\n".join(kept)
        return result[-chars:]

    def __str__(self) -> str:
        status = "timed out" if self.timed_out else f"exit {self.exit_code}"
        tail = self.tail(lines=10)
        return f"$ {self.command}\n[{status}, {self.duration:.2f}s]\n{tail}".rstrip()


class Unreachable(Exception):
    """The host could not be reached or logged into; the message says why in one line."""


class Unsupported(Exception):
    """No executor serves the way the inventory says to reach the host (its ``ansible_connection``)."""


class BecomeFailed(Exception):
    """Privilege escalation on the host failed (wrong or missing password, not allowed, no answer in time);
    the message says why in one line. That step is an ``error``; the connection stays usable."""


class HostHung(Exception):
    """The host stopped answering on an open connection.

    The engine sets ``started`` and ``seconds`` (the step it happened in) before passing it on.
    """

    started: Any = None
    seconds: float = 0.0


class Connection(Protocol):
    """An open session with one host."""

    def run(
        self, command: str, timeout: float, stdin: str | None = None, cancel: threading.Event | None = None,
        become: Become | None = None,
    ) -> CommandResult:
        """Run ``command`` through the host's shell with ``stdin`` (text) as its standard input, as the
        login user or, with ``become``, as the user it escalates to.

        At ``timeout``, or as soon as ``cancel`` is set, the command's whole process group is ended on
        the host (the result says so in ``ended``); so is it when the connection drops.
        Raises HostHung if the host stopped answering, BecomeFailed if escalation failed.
        """
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class Executor(Protocol):
    """Opens connections to hosts."""

    def connect(self, host: Host) -> Connection:
        """Open a connection to ``host``; raise Unreachable with the reason if it cannot."""
        ...
