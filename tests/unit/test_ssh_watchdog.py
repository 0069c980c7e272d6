"""The SSH executor's watchdog: it closes a channel whose deadline passed, and its thread ends once nothing
is watched (a process running many runs keeps no idle thread per executor)."""

from __future__ import annotations

import threading
import time
from typing import Any

from maint.executors.ssh import Watchdog


class Channel:
    """What the watchdog needs of a paramiko channel: close()."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()


def test_a_channel_past_its_deadline_is_closed_then_the_thread_ends() -> None:
    watchdog = Watchdog()
    late, kept = Channel(), Channel()
    watchdog.watch(late, time.monotonic())  # type: ignore[arg-type]
    token = watchdog.watch(kept, time.monotonic() + 3600)  # type: ignore[arg-type]
    thread: Any = watchdog._thread
    assert thread is not None and thread.is_alive()
    assert late.closed.wait(5)
    watchdog.release(token)
    thread.join(5)
    assert not thread.is_alive() and watchdog._thread is None
    assert not kept.closed.is_set()


def test_a_watch_after_the_thread_ended_starts_another() -> None:
    watchdog = Watchdog()
    first = Channel()
    watchdog.watch(first, time.monotonic())  # type: ignore[arg-type]
    assert first.closed.wait(5)
    ended: Any = watchdog._thread
    if ended is not None:
        ended.join(5)
    second = Channel()
    watchdog.watch(second, time.monotonic())  # type: ignore[arg-type]
    assert second.closed.wait(5)
