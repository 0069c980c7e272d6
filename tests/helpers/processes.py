"""What runs on the lab hosts (this machine): processes found by a token on their command line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# The start of a script for :func:`released_together`: say it is ready (its imports done), wait for the go.
READY_THEN_WAIT = "import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n"


def processes_with(token: str) -> list[int]:
    """The pids of live processes whose command line contains ``token`` (zombies have none)."""
    found = []
    needle = token.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# x86_64 syscall numbers of a process asleep until a timer fires: SQLite's busy handler sleeps so while
# another connection holds the write lock.
SLEEP_SYSCALLS = ("35", "230")  # nanosleep, clock_nanosleep


def asleep_in_a_retry(pid: int) -> bool:
    """Whether process ``pid`` is asleep in a timed sleep (as SQLite's busy handler waits for a lock)."""
    try:
        return (Path("/proc") / str(pid) / "syscall").read_text().split(" ", 1)[0] in SLEEP_SYSCALLS
    except OSError:
        return False


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll ``condition`` until it is true; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g}s")
        time.sleep(0.05)


def released_together(
    scripts: Sequence[tuple[str, ...]], env: Mapping[str, str] | None = None
) -> list[subprocess.Popen[str]]:
    """Start ``python -c SCRIPT ARGS...`` for each of ``scripts`` (each a tuple of the script and its arguments;
    the script begins with its imports, then :data:`READY_THEN_WAIT`), wait until every one said it is ready,
    then release them all at the same moment (a line on each stdin). Their stdout and stderr are pipes."""
    started = [
        subprocess.Popen([sys.executable, "-c", *script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=None if env is None else dict(env))
        for script in scripts
    ]  # fmt: skip
    for process in started:
        assert process.stdout is not None
        ready = process.stdout.readline()
        assert ready == "ready\n", f"{ready!r}: {process.stderr.read() if process.stderr else ''}"
    for process in started:  # the go, written to each in turn: microseconds apart
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    return started
