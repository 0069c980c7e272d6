"""Exit codes and the exceptions that carry them.

Nothing below ``maint.cli`` prints or exits: library code raises a :class:`MaintError` (or one of its
subclasses) and the CLI turns it into one line on stderr and the error's exit code.
"""

from __future__ import annotations

import enum
from typing import Any


class ExitCode(enum.IntEnum):
    """The documented exit codes of every maint command (docs/exit-codes.md)."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    BAD_INPUT = 3
    FAILED = 4
    UNREACHABLE = 5
    ABORTED = 6
    NOT_STARTED = 7
    # The store could not be written (locked, full, gone): finished results are kept in a spool
    # and recorded by the next command that can write the store. Not 1: it is not a bug, and a
    # scheduler can tell it apart from a failed check.
    STORE_UNAVAILABLE = 8
    INTERRUPTED = 130


class MaintError(Exception):
    """An expected error: the message is one line for the user, ``exit_code`` says how maint ends."""

    exit_code: ExitCode = ExitCode.INTERNAL
    # The run this error is about, for ``--format json``, which prints the run with the error: ``run`` is its
    # document (a run recorded not-started or interrupted, or one never recorded because its hosts were busy)
    # and ``run_id`` its id (also when only the id is known: a store that could not be written).
    run: dict[str, Any] | None = None
    run_id: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        from maint.secrets import mask_url_credentials

        # A message naming a store or backend URL never shows its password, whoever wrote it.
        message = mask_url_credentials(message)
        super().__init__(message)
        self.message = message
        self.hint = mask_url_credentials(hint) if hint else hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class BadInput(MaintError):
    """A config, inventory or playbook file (or a command-line value) is invalid.

    ``source`` is the file (and ``line`` the 1-based line, when the parser knows it) so the message
    can point the user at the exact place to fix.
    """

    exit_code = ExitCode.BAD_INPUT

    def __init__(
        self, message: str, *, source: str | None = None, line: int | None = None, hint: str | None = None
    ) -> None:
        where = ""
        if source:
            where = f"{source}:{line}: " if line else f"{source}: "
        super().__init__(where + message, hint=hint)
        self.source = source
        self.line = line


class LabError(MaintError):
    """The local lab fleet could not be started, stopped or changed."""

    exit_code = ExitCode.BAD_INPUT


class StoreUnavailable(MaintError):
    """The store could not be written or opened (locked, disk full, unable to open, connection lost).

    ``store`` is the store's URL without credentials and ``cause`` the short reason; the message is
    one line naming both (never the SQL or a traceback).
    """

    exit_code = ExitCode.STORE_UNAVAILABLE

    def __init__(self, store: str, cause: str, *, message: str | None = None, hint: str | None = None) -> None:
        super().__init__(message or f"store {store} is unavailable: {cause}", hint=hint)
        self.store = store
        self.cause = cause
