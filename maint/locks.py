"""Host locks: two runs never work the same hosts at once.

The registry belongs to the store, not to the project directory: the same store means the same fleet,
wherever maint is started. Each running run registers the hosts it works on in ``runs.json`` of the
store's lock directory (:func:`lock_directory`), under an exclusive ``flock`` on its ``lock`` file (so
registration is atomic across processes). A run whose hosts overlap a registered run's refuses to start
(or waits, with ``--wait``). An entry whose process is gone (a controller killed with SIGKILL) no longer
counts. The locks hold between processes of one controller; runs from two controllers on one server
store (PostgreSQL) do not see each other's locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from maint.errors import ExitCode, MaintError, StoreUnavailable
from maint.files import open_private, private_directory, write_atomic
from maint.store.urls import store_identity


class HostsBusy(MaintError):
    """Another run works on some of the same hosts; the message names it (exit 7: not started)."""

    exit_code = ExitCode.NOT_STARTED


def lock_directory(url: str, store_file: Path | None) -> Path:
    """The lock registry of the store at ``url``: beside an SQLite store's file (``maint.db.locks/``),
    else ``locks/<hash>`` of its :func:`maint.store.urls.store_identity` in the user's state directory
    (:func:`maint.config.discovery.user_state_dir`: every project on this machine that uses the store shares it)."""
    if store_file is not None:
        return Path(store_identity(url, store_file) + ".locks")
    from maint.config.discovery import user_state_dir

    return user_state_dir() / "locks" / hashlib.sha256(store_identity(url, None).encode()).hexdigest()[:24]


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[Path]:
    private_directory(directory)
    descriptor = open_private(directory / "lock")
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield directory / "runs.json"
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=1), mode=0o600)


def acquire(
    directory: Path,
    run_id: str,
    hosts: Sequence[str],
    alive: Callable[[int], bool],
    started: str,
    wait: bool = False,
    poll: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    waiting: Callable[[str], None] | None = None,
) -> None:
    """Register ``hosts`` for ``run_id``; raises HostsBusy naming the other run, unless ``wait``.

    With ``wait``, polls every ``poll`` seconds until the hosts are free, telling ``waiting`` once which
    run it waits for.
    """
    wanted = set(hosts)
    while True:
        try:
            registered = _register(directory, run_id, wanted, alive, started)
        except OSError as error:  # the store's file system is full or read-only: nothing may start
            raise StoreUnavailable(str(directory), error.strerror or str(error), message=(
                f"cannot register the run's hosts in {directory}: {error.strerror or error}; no step ran"),
                hint="free space on that file system, then run again") from None  # fmt: skip
        if registered is None:
            return
        other, entry, overlap = registered
        shown = ", ".join(overlap[:5]) + (f" and {len(overlap) - 5} more" if len(overlap) > 5 else "")
        busy = f"run {other} (pid {entry.get('pid')}, since {entry.get('started')}) is working on {shown}"
        if not wait:
            raise HostsBusy(f"not started: {busy}", hint="wait for it, or use --wait to queue behind it")
        if waiting is not None:
            waiting(f"waiting: {busy}")
            waiting = None
        sleep(poll)


def _register(
    directory: Path, run_id: str, wanted: set[str], alive: Callable[[int], bool], started: str
) -> tuple[str, dict[str, Any], list[str]] | None:
    """Register ``wanted`` for ``run_id`` unless a live run holds some of them: None, or (that run, its
    entry, the hosts both want)."""
    with _locked(directory) as path:
        entries = {key: value for key, value in _read(path).items() if alive(int(value.get("pid", 0)))}
        conflicts = [
            (other, entry, sorted(wanted & set(entry.get("hosts", []))))
            for other, entry in entries.items()
            if wanted & set(entry.get("hosts", []))
        ]
        if not conflicts:
            entries[run_id] = {"pid": os.getpid(), "hosts": sorted(wanted), "started": started}
            _write(path, entries)
            return None
    return conflicts[0]


def release(directory: Path, run_id: str) -> None:
    """Remove ``run_id``'s registration (a no-op when it has none).

    A registry that cannot be written now (a full disk) keeps the entry, which stops counting once this
    process has ended: nothing is lost, and the run's end is not turned into an error.
    """
    try:
        with _locked(directory) as path:
            entries = _read(path)
            if entries.pop(run_id, None) is not None:
                _write(path, entries)
    except OSError:
        pass
