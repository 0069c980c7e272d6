"""The spool: a run's finished results kept on disk while the store cannot be written.

When a write to the store fails during a run (locked past the busy timeout, disk full, connection
lost), the run stops starting steps and its results go to a file of JSON lines instead: beside an
SQLite store (``<store file>.spool/RUN_ID.jsonl``), in the state directory's ``spool/`` for a server
store, else in the user's state directory or ``$XDG_RUNTIME_DIR`` (another file system when the
store's is full), else in memory only. Directories are 0700, files 0600, each write is fsync'd, and
the writer holds an exclusive ``flock`` on its file so no reader imports a spool still being written.

The next command that opens the store imports every spool of it (:func:`import_spools`): results not
yet in the store are inserted with their ledger entries (a result is known by its run, host,
playbook, step and attempt, so an import never inserts one twice), the run is finished as the spool
says, and only then is the file removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa

from maint.errors import StoreUnavailable
from maint.files import private_directory
from maint.secrets import mask_url_credentials
from maint.store.classify import step_id, task_of
from maint.store.urls import sqlite_path, store_identity

if TYPE_CHECKING:
    from maint.store import ResultRecord, Store

FORMAT = 1
# The last location before memory: a RAM file system on Linux, outside any full disk (lost at reboot,
# but outliving the process), for when $XDG_RUNTIME_DIR is not set (cron, systemd system units).
SHARED_MEMORY = Path("/dev/shm")
SUFFIX = ".jsonl"
# The summary of a planned step a spooled run never started: ``maint resume`` runs it again
# (resume treats skipped results whose summary starts with "interrupted:" as not done).
INTERRUPTED = "interrupted: the store could not be written"


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL (absolute), or None for another store or an in-memory one."""
    path = sqlite_path(url)
    return Path(os.path.abspath(path)) if path is not None else None


def store_key(url: str) -> str:
    """A short name for the store, the same from any directory and whoever names it how (its
    :func:`maint.store.urls.store_identity`): it keeps spools of different stores apart in the shared
    fallback directories."""
    return hashlib.sha256(store_identity(url, sqlite_file(url)).encode("utf-8")).hexdigest()[:16]


def locations(url: str, project_dir: Path | None = None) -> list[Path]:
    """The spool directories of the store at ``url``, in the order they are tried.

    First beside the store (an SQLite file) or in the state directory's ``spool/`` (a server store: the
    project's ``.maint/`` or the user's state directory, :mod:`maint.config.discovery`);
    then, for a full or unwritable file system, the user's state directory
    (``$XDG_STATE_HOME/maint/spool/KEY`` or ``~/.local/state/...``), ``$XDG_RUNTIME_DIR/maint/spool/KEY``
    and ``/dev/shm/maint-UID/spool/KEY``.
    """
    return [path for _, path in _locations(url, project_dir)]


def _locations(url: str, project_dir: Path | None) -> list[tuple[Path, Path]]:
    """(base, spool directory) pairs: maint creates and owns everything below each base."""
    database = sqlite_file(url)
    key = store_key(url)
    if database is not None:
        found = [(database.parent, Path(str(database) + ".spool"))]
    else:
        from maint.config import discover

        own = discover(project_dir).state_dir
        found = [(own.parent, own / "spool")]
    state = Path(os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state"))
    found.append((state, state / "maint" / "spool" / key))
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        found.append((Path(runtime), Path(runtime) / "maint" / "spool" / key))
    if SHARED_MEMORY.is_dir():
        found.append((SHARED_MEMORY, SHARED_MEMORY / f"maint-{os.geteuid()}" / "spool" / key))
    unique: list[tuple[Path, Path]] = []
    for base, path in found:
        if path not in [known for _, known in unique]:
            unique.append((base, path))
    return unique


def _private_dir(base: Path, path: Path) -> None:
    """Create ``path`` and its missing parents below ``base`` owner-only (0700, whatever the umask).

    Raises OSError when a directory between ``base`` and ``path`` is a symbolic link, another user's or
    writable by others: in a shared place (/dev/shm) someone else may have made it first.
    """
    private_directory(path)
    below = path.relative_to(base).parts
    for depth in range(1, len(below) + 1):
        directory = base.joinpath(*below[:depth])
        status = os.lstat(directory)
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.geteuid() or status.st_mode & 0o022:
            raise PermissionError(errno.EPERM, "not a private directory of this user", str(directory))


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def result_line(record: ResultRecord) -> dict[str, Any]:
    """A result as a spool line."""
    return {"kind": "result", **record.__dict__, "metrics": dict(record.metrics)}


@dataclass
class RunSpool:
    """The spool of one run: idle until the store fails, then every result goes to a file.

    ``on_failure`` is called once, when the store first fails (the engine stops starting steps).
    Every line is also kept in memory, so a location that fails later (its file system fills up) is
    replaced by the next one with the whole spool written again.
    """

    url: str
    run_id: str
    project_dir: Path | None = None
    on_failure: Callable[[], None] | None = None
    error: StoreUnavailable | None = None
    path: Path | None = None
    # (host, playbook, step id) of every result this run produced, in the store or not; an Ansible
    # task's result counts for its step.
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    lines: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "PATH (reason)" of each location that failed
    _handle: IO[bytes] | None = None
    _written: int = 0
    _tried: int = 0
    _abandoned: list[Path] = field(default_factory=list)  # files of failed locations, removed once rewritten

    @property
    def active(self) -> bool:
        """Whether the store failed and results go to the spool."""
        return self.error is not None

    def note(self, records: Iterable[ResultRecord]) -> None:
        """Remember that these results exist (whether the store or the spool keeps them)."""
        for record in records:
            task = record.task if record.task is not None else task_of(record.step, record.step_type)
            self.seen.add((record.host, record.playbook, step_id(record.step, task)))

    def start(self, error: StoreUnavailable) -> None:
        """The store failed with ``error``: from now on every result is spooled."""
        if self.error is None:
            self.error = error
            if self.on_failure is not None:
                self.on_failure()

    def write_results(self, records: Iterable[ResultRecord]) -> None:
        """Spool results (fsync'd before this returns, unless no location can be written)."""
        self._add([result_line(record) for record in records])

    def write_finish(self, status: str, exit_code: int, finished: str) -> None:
        """Spool the run's end: the import finishes the run with this status and exit code."""
        self._add([{"kind": "finish", "status": status, "exit_code": exit_code, "finished": finished}])

    @property
    def results(self) -> int:
        """How many finished results (not placeholders of steps never started) the spool holds."""
        return sum(1 for line in self.lines if line["kind"] == "result" and line["summary"] != INTERRUPTED)

    def failure(self) -> StoreUnavailable:
        """The one-line error the run ends with: the store, the cause, where the results are."""
        assert self.error is not None
        store, cause = self.error.store, self.error.cause
        kept = self.results
        if self.path is None:
            tried = "; ".join(self.failures) or "none"
            where = f"{kept} finished results could not be kept (no spool location could be written: {tried})"
        else:
            where = f"{kept} finished results are kept in {self.path}" if kept else f"its end is kept in {self.path}"
            ends = [line["status"] for line in self.lines if line["kind"] == "finish"]
            if ends and ends[-1] != "interrupted":
                where += "; the next maint command that opens the store records it"
            else:
                where += f"; 'maint resume {self.run_id}' records them"
            if self.failures:
                where += f" (could not write {self.failures[0]})"
        message = f"store {store} could not be written ({cause}): run {self.run_id} stopped; {where}"
        return StoreUnavailable(store, cause, message=message)

    def close(self) -> None:
        """Close the file (releasing its lock: an import may take it from now on)."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None

    def _add(self, lines: Sequence[dict[str, Any]]) -> None:
        self.lines.extend(lines)
        while True:
            if self._handle is None and not self._open_next():
                return  # memory only: failure() says how many results could not be kept
            assert self._handle is not None and self.path is not None
            try:
                pending = self.lines[self._written :]
                self._handle.write(b"".join(_encode(line) for line in pending))
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._written = len(self.lines)
            except OSError as error:
                self._abandon(error)
                continue
            for stale in self._abandoned:
                with contextlib.suppress(OSError):
                    stale.unlink()  # its lines are all in this file now
            self._abandoned.clear()
            return

    def _abandon(self, error: OSError) -> None:
        """The current location failed: note it, and keep its file until the next one holds every line."""
        assert self.path is not None
        self.failures.append(f"{self.path} ({error.strerror or error})")
        self._abandoned.append(self.path)
        self.close()
        self.path = None

    def _open_next(self) -> bool:
        """Open the spool file in the next location that works; False when none is left."""
        candidates = _locations(self.url, self.project_dir)
        while self._tried < len(candidates):
            base, directory = candidates[self._tried]
            self._tried += 1
            try:
                self._handle, self.path = _create(base, directory, self.run_id)
            except OSError as error:
                self.failures.append(f"{directory} ({error.strerror or error})")
                continue
            header = {"kind": "header", "format": FORMAT, "store": mask_url_credentials(self.url),
                      "key": store_key(self.url), "run_id": self.run_id, "pid": os.getpid()}  # fmt: skip
            try:
                self._handle.write(_encode(header))
            except OSError as error:
                self._abandon(error)
                continue
            self._written = 0
            return True
        return False


def _encode(line: Mapping[str, Any]) -> bytes:
    return (json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n").encode("utf-8")


def _create(base: Path, directory: Path, run_id: str) -> tuple[IO[bytes], Path]:
    """A new spool file for ``run_id`` in ``directory``, locked, under its final name.

    It is created and locked under a temporary name and then renamed, so an import never sees it
    unlocked.
    """
    _private_dir(base, directory)
    temporary = directory / f".{run_id}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        path = directory / f"{run_id}{SUFFIX}"
        number = 1
        while path.exists():
            number += 1
            path = directory / f"{run_id}-{number}{SUFFIX}"
        os.rename(temporary, path)
        _fsync_dir(directory)
    except BaseException:
        os.close(descriptor)
        temporary.unlink(missing_ok=True)
        raise
    return os.fdopen(descriptor, "ab"), path


@dataclass(frozen=True)
class Spooled:
    """What a spool file holds: its run, its results (as stored), and the run's end if it got there."""

    run_id: str
    key: str
    results: list[dict[str, Any]]
    finish: dict[str, Any] | None


def read(path: Path) -> Spooled | None:
    """Parse a spool file; None if it has no header. A torn last line (a crash mid-write) is ignored."""
    header: dict[str, Any] | None = None
    results: list[dict[str, Any]] = []
    finish: dict[str, Any] | None = None
    with path.open("rb") as handle:
        for raw in handle:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            kind = line.pop("kind", None)
            if kind == "header":
                header = line
            elif kind == "result":
                results.append(line)
            elif kind == "finish":
                finish = line
    if header is None:
        return None
    return Spooled(run_id=str(header["run_id"]), key=str(header.get("key", "")), results=results, finish=finish)


@contextlib.contextmanager
def _claimed(path: Path) -> Iterator[bool]:
    """Lock ``path`` for an import: True if it is ours (no writer holds it and it is still that file)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            yield False  # a run is still writing it
            return
        try:
            same = os.stat(path).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            same = False  # another import took it
        yield same
    finally:
        os.close(descriptor)


def pending(url: str, project_dir: Path | None = None) -> list[Path]:
    """The spool files of the store at ``url`` (one directory listing per location)."""
    found: list[Path] = []
    for directory in locations(url, project_dir):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        found.extend(directory / name for name in names if name.endswith(SUFFIX))
    return found


def import_spools(store: Store, project_dir: Path | None = None) -> tuple[list[str], dict[str, Path]]:
    """Record every spool of ``store`` in it and remove each file once its import committed.

    Returns the ids of the runs imported, and the spools left (run id -> file): one still being
    written, of a run the store does not have, or every one while the store cannot be written.
    """
    imported: list[str] = []
    left: dict[str, Path] = {}
    key = store_key(store.url)
    unwritable = False
    for path in pending(store.url, project_dir):
        with _claimed(path) as ours:
            spooled = _header_only(path) if not ours or unwritable else read(path)
            if spooled is None and ours:
                path.unlink()  # no header: its writer failed before the first line and wrote elsewhere
                continue
            if spooled is None or spooled.key != key:
                continue
            if not ours or unwritable:
                left[spooled.run_id] = path
                continue
            try:
                done = store.import_spooled(spooled.run_id, spooled.results, spooled.finish)
            except StoreUnavailable:
                unwritable = True  # still not writable: the next command tries again
                done = False
            except (sa.exc.SQLAlchemyError, KeyError, TypeError, ValueError):
                done = False  # a damaged spool stays for a person to read; it must not stop every command
            if not done:
                left[spooled.run_id] = path
                continue
            path.unlink()
            _fsync_dir(path.parent)
            imported.append(spooled.run_id)
    return imported, left


def _header_only(path: Path) -> Spooled | None:
    """The run and store of a spool file from its first line (without reading its results)."""
    try:
        with path.open("rb") as handle:
            header = json.loads(handle.readline())
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict) or header.get("kind") != "header":
        return None
    return Spooled(run_id=str(header["run_id"]), key=str(header.get("key", "")), results=[], finish=None)
