"""A run's hold on its hosts: their locks in the store's registry and SIGTERM turned into an interrupt,
from the moment the run may start until its work ends."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from maint.clock import Clock, timestamp
from maint.locks import acquire, release
from maint.processes import process_alive


class Lifecycle:
    """``with Lifecycle(...) as life:`` locks ``hosts`` for ``run_id`` (waiting with ``wait``, telling
    ``waiting``) and makes SIGTERM raise KeyboardInterrupt in the main thread; on leaving, the handler is
    restored, ``life.ended`` noted and the hosts released. ``life.started`` is when the run could start
    (after any wait for the hosts)."""

    def __init__(
        self, locks: Path, run_id: str, hosts: Sequence[str], clock: Clock, *, wait: bool = False,
        waiting: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        self.locks = locks
        self.run_id = run_id
        self.hosts = list(hosts)
        self.clock = clock
        self.wait = wait
        self.waiting = waiting
        self.started: dt.datetime = clock()
        self.ended: dt.datetime = self.started
        self._previous: Any = None

    def __enter__(self) -> Lifecycle:
        acquire(self.locks, self.run_id, self.hosts, process_alive, timestamp(self.started), wait=self.wait,
                waiting=self.waiting)  # fmt: skip
        self.started = self.clock()  # after any wait for the hosts: when the run really starts
        self._previous = _raise_on_sigterm()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        # The run's work ends here: a run waiting for these hosts starts after this moment.
        self.ended = self.clock()
        release(self.locks, self.run_id)


def _raise_on_sigterm() -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)
