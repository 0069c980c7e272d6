"""Whether the controller process of a run is still there (a controller killed with SIGKILL cannot
record its own end)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is a maint (Python) process, not a reused pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"maint" in command or b"python" in command


def controller_name() -> str:
    """This machine's name as runs record their controller."""
    return socket.gethostname()


def run_pid(options: Mapping[str, Any] | None) -> int | None:
    """The pid of the process that works on a run: its last resume's, else the one that started it."""
    options = options or {}
    resumed = options.get("resumed") or []
    for entry in reversed(resumed if isinstance(resumed, list) else []):
        if isinstance(entry, Mapping) and isinstance(entry.get("pid"), int):
            return int(entry["pid"])
    pid = options.get("pid")
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else None


def run_stale(status: str, controller: str, options: Mapping[str, Any] | None) -> bool:
    """Whether a run recorded as ``running`` on this controller has lost its process (it was killed).

    Runs of other controllers cannot be checked from here and are taken at their word.
    """
    if status != "running" or controller != controller_name():
        return False
    pid = run_pid(options)
    return pid is not None and not process_alive(pid)
