"""When a run's hosts stop: the run's stop and cancel signals, and its maintenance window's deadlines."""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING

from maint.clock import Clock

if TYPE_CHECKING:
    from maint import windows


class Controls:
    """What the run's threads watch. ``stop``: start no new host or step (a store that cannot be written,
    or the run ending early). ``cancel``: end the steps running on the hosts too (SIGINT, SIGTERM).
    ``recorded``: set once the run is in the store (or failed to get there); no command runs before."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.cancel = threading.Event()
        self.recorded = threading.Event()

    def end(self) -> None:
        """Stop starting steps and end the running ones."""
        self.stop.set()
        self.cancel.set()


class WindowGuard:
    """The maintenance window a run keeps to: no new host or step after its close, running steps are cut
    off at the end of its grace. Without a window (or with ``--ignore-window``) nothing ever closes."""

    def __init__(self, window: windows.Window | None, ignore: bool, clock: Clock) -> None:
        self.window = window
        self.ignore = ignore
        self.clock = clock
        self.closes_at: dt.datetime | None = None
        self.grace_until: dt.datetime | None = None
        self.closed_reason = ""

    def open(self) -> str:
        """Read the window's state now and keep its close and grace; returns why the run must not start
        ('' to go on: the window is open, or ignored, or there is none)."""
        window = self.window
        if window is None:
            return ""
        from maint.windows import status

        current = status(window, self.clock())
        if current.open:
            self.closes_at, self.grace_until = current.closes_at, current.grace_until
            if self.closes_at is not None:
                self.closed_reason = f"window '{window.name}' closed at {self.closes_at:%Y-%m-%d %H:%M %Z}"
            return ""
        if self.ignore:
            return ""
        return f"window '{window.name}' is {current.reason}" if current.reason.startswith("closed") else (
            f"window '{window.name}': {current.reason}"
        )  # fmt: skip

    def closed(self) -> bool:
        """Whether the window has closed: no new host or step may start."""
        return self.closes_at is not None and self.clock() >= self.closes_at

    def grace_over(self) -> bool:
        """Whether the window's grace is over: running steps must end."""
        return self.grace_until is not None and self.clock() >= self.grace_until

    def step_timeout(self, timeout: float) -> float:
        """``timeout`` shortened so that a step may run past the window's close, but not past its grace."""
        if self.grace_until is None:
            return timeout
        return max(1.0, min(timeout, (self.grace_until - self.clock()).total_seconds()))
