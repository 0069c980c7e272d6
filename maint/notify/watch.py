"""A run watched from outside: its dead man's switch pings as it goes, and the notifications of its
outcome once it is recorded. Whatever fails here is a warning; the run's own result and error go on
unchanged."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from maint.errors import ExitCode, MaintError
from maint.notify.notifications import Notifier, notify
from maint.notify.pings import PingResult, Pings


class Monitored:
    """A run watched by ``pings`` and ``notifiers`` (see :func:`monitored`): :meth:`started` once it is
    recorded, :meth:`recorded` with its document, :meth:`finished` with its exit code. Each failed ping or
    notification goes to ``warn``; ``project_dir`` holds the notification templates' overrides."""

    def __init__(
        self, pings: Sequence[Pings], warn: Callable[[str], None], notifiers: Sequence[Notifier] = (),
        project_dir: Path | None = None,
    ) -> None:  # fmt: skip
        self.pings = list(pings)
        self.warn = warn
        self.notifiers = list(notifiers)
        self.project_dir = project_dir or Path.cwd()
        self.run_id: str | None = None
        self.document: Mapping[str, Any] | None = None
        self.done = False

    def started(self, run_id: str) -> None:
        """Ping ``start`` for ``run_id``."""
        self.run_id = run_id
        for pings in self.pings:
            self._show(pings.start(run_id))

    def recorded(self, document: Mapping[str, Any]) -> None:
        """The run's document as the store holds it (``RunDocument.as_dict()``), for the notifications."""
        self.document = document
        self.run_id = str(document.get("id") or self.run_id)

    def finished(self, exit_code: int, status: str) -> None:
        """Ping the end of a run that ended with ``exit_code`` and ``status``, then notify of it."""
        self.done = True
        for pings in self.pings:
            self._show(pings.finish(exit_code, status=status))
        self._notify(exit_code, status)

    def failed(self, code: int, message: str) -> None:
        """Ping ``fail`` (or nothing, for exit 7) for a run that raised, and notify of a recorded one."""
        self.done = True
        for pings in self.pings:
            self._show(pings.finish(code, error=message))
        status = "interrupted" if code in (ExitCode.INTERRUPTED, ExitCode.STORE_UNAVAILABLE) else "error"
        if self.document is not None:
            status = str(self.document.get("status") or status)
        self._notify(code, status, message)

    def _notify(self, exit_code: int, status: str, error: str | None = None) -> None:
        if not self.notifiers:
            return
        document = dict(self.document) if self.document is not None else None
        if document is None:
            if self.run_id is None:  # nothing was recorded: there is no run to tell of
                return
            document = {"id": self.run_id, "results": []}
        # The exit code the run ends with wins over the recorded one (the store may not have been writable).
        document["exit_code"] = int(exit_code)
        if document.get("status") in (None, "running"):
            document["status"] = status
        if error:
            document["error"] = error
        for warning in notify(self.notifiers, document, self.project_dir):
            self.warn(warning)

    def _show(self, result: PingResult | None) -> None:
        if result is not None and result.warning:
            self.warn(result.warning)


@contextlib.contextmanager
def monitored(
    pings: Sequence[Pings], warn: Callable[[str], None], notifiers: Sequence[Notifier] = (),
    project_dir: Path | None = None,
) -> Iterator[Monitored]:  # fmt: skip
    """``with monitored(pings, warn, notifiers) as monitor:`` around a run: a run that raises pings ``fail``
    (or nothing, for exit 7) with its error's exit code and one-line message, notifies of the run when it
    was recorded, then the error goes on unchanged. Neither ever raises: a failing monitor or notifier never
    hides the run's own error."""
    monitor = Monitored(pings, warn, notifiers, project_dir)
    try:
        yield monitor
    except BaseException as error:
        if not monitor.done and not isinstance(error, (SystemExit, GeneratorExit)):
            if isinstance(error, MaintError):
                code, message = int(error.exit_code), str(error)
            elif isinstance(error, KeyboardInterrupt):
                code, message = int(ExitCode.INTERRUPTED), "interrupted"
            else:  # an unexpected error's message could hold anything
                code, message = int(ExitCode.INTERNAL), f"internal error: {type(error).__name__}"
            monitor.failed(code, message)
        raise
