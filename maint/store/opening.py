"""Where a store is and how it is opened: its URL (given, ``$MAINT_DB``, maint.yml, the default), the
file of an SQLite store made ready, the engine's options, and what a database error means (the store
cannot be used now: locked, full, gone)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maint.errors import BadInput, ExitCode, MaintError
from maint.files import open_private, private_directory
from maint.store import migrations
from maint.store.schema import metadata, runs

if TYPE_CHECKING:
    from maint.config import Config

DEFAULT_FILE = "maint.db"  # the default store's file, in the state directory (maint.config.discovery)
DEFAULT_BUSY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Location:
    """The store URL in use and where it came from: ``--db``, ``$MAINT_DB``, maint.yml's ``store`` (``origin``
    names the file), or the default in the state directory (``origin`` says which)."""

    url: str
    origin: str
    default: bool = False


def locate(url: str | None, loaded: Config | None = None) -> Location:
    """The store URL: the given one, else ``$MAINT_DB``, else the ``store`` of maint.yml (``loaded``, or the one
    found from the current directory), else ``maint.db`` in the state directory: ``.maint/`` beside a project's
    maint.yml, else the user's state directory (:mod:`maint.config.discovery`).

    A relative SQLite path in maint.yml is relative to maint.yml's directory (as ``signing_key`` is); given on
    the command line or in ``$MAINT_DB``, to the current directory.
    """
    if url:
        return Location(url, "--db")
    if os.environ.get("MAINT_DB"):
        return Location(os.environ["MAINT_DB"], "$MAINT_DB")
    from maint import config

    if loaded is None:
        loaded = config.load()
    if loaded.store:
        return Location(_beside(loaded.store, loaded.path), f"store in {loaded.path}")
    found = config.discover()
    if loaded.path is not None and loaded.path != found.path:  # a file given to load(), not the one found
        found = config.discovery.project_of(loaded.path)
    if found.project:
        origin = f"the default beside {found.path}"
    elif found.path is not None:
        origin = f"the default for the {found.source} configuration {found.path}"
    else:
        origin = "the default without a maint.yml"
    return Location(f"sqlite:///{found.state_dir / DEFAULT_FILE}", origin, default=True)


def _beside(url: str, config_file: Path | None) -> str:
    """``url`` with a relative SQLite path made relative to the directory of ``config_file``."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return url  # reported when the store is opened
    database = parsed.database
    if (config_file is None or not parsed.drivername.startswith("sqlite") or database in (None, "", ":memory:")
            or parsed.query.get("uri") or str(database).startswith("file:") or os.path.isabs(database)):
        return url
    return parsed.set(database=str(config_file.parent / database)).render_as_string(hide_password=False)


def resolve_url(url: str | None, loaded: Config | None = None) -> str:
    """The store URL in use (see :func:`locate`)."""
    return locate(url, loaded).url


def state_directory(directory: Path) -> bool:
    """Whether ``directory`` is a state directory, the one place maint creates a store's directory in: the one
    of the maint.yml in use, a project's ``.maint/`` beside its maint.yml, or the user's."""
    from maint.config import discovery

    found = discovery.discover()
    allowed = {found.state_dir, discovery.user_state_dir()}
    if directory.name == discovery.STATE_NAME and (directory.parent / discovery.FILE_NAME).is_file():
        allowed.add(directory)
    return os.path.abspath(directory) in {os.path.abspath(path) for path in allowed}


def default_busy_timeout() -> float:
    """maint.yml's ``store_busy_timeout`` (the default when maint.yml is missing or invalid: the
    commands that read the config report it)."""
    from maint import config

    try:
        return config.load().store_busy_timeout
    except BadInput:
        return DEFAULT_BUSY_TIMEOUT


def engine_options(url: sa.engine.URL, busy_timeout: float) -> dict[str, Any]:
    """SQLAlchemy's engine options for the store at ``url``: an in-memory SQLite store (``sqlite://``, as
    tests use) is one connection shared by the run's threads, so that they all see the same database."""
    options: dict[str, Any] = {"connect_args": connect_args(url, busy_timeout)}
    if url.drivername.startswith("sqlite") and url.database in (None, "", ":memory:"):
        options["poolclass"] = sa.pool.StaticPool
        options["connect_args"]["check_same_thread"] = False
    return options


def connect_args(url: sa.engine.URL, busy_timeout: float) -> dict[str, Any]:
    """Driver arguments that bound every wait for the store to ``busy_timeout`` seconds."""
    if url.drivername.startswith("sqlite"):
        return {"timeout": busy_timeout}
    if url.drivername.startswith("postgresql"):
        # lock_timeout bounds a write waiting for another transaction's row or table lock (the
        # ledger head); connect_timeout a server that does not answer.
        return {"connect_timeout": max(1, math.ceil(busy_timeout)),
                "options": f"-c lock_timeout={max(1, int(busy_timeout * 1000))}"}  # fmt: skip
    return {}


# SQLite's messages (sqlite3.OperationalError) for a store that cannot be used now, and what to call them.
SQLITE_CAUSES = (
    ("database is locked", "database is locked"),
    ("database table is locked", "database is locked"),
    ("database or disk is full", "disk full"),
    ("unable to open database", "unable to open the database file"),
    ("readonly database", "the database is read-only"),
    ("disk i/o error", "disk I/O error"),
)
# PostgreSQL SQLSTATEs: class 08 (connection), 53 (insufficient resources), 57P0x (server shutting down).
POSTGRES_CAUSES = {
    "55P03": "lock timeout (another transaction holds the lock)",
    "53100": "disk full",
    "53200": "out of memory",
    "53300": "too many connections",
    "57P01": "server shutting down",
    "57P02": "server crashed",
    "57P03": "server not accepting connections yet",
}


DAMAGED_HINT = "restore it from a backup; for SQLite, 'sqlite3 FILE .recover' saves what is left"


def damaged(error: BaseException) -> bool:
    """Whether a DB-API ``error`` says the database file is damaged (SQLite: a malformed disk image)."""
    return "malformed" in str(error) and type(error).__name__ == "DatabaseError"


def failure_cause(error: BaseException, disconnect: bool = False, database: Path | None = None) -> str:
    """Why ``error`` (a DB-API exception) means the store cannot be used now, in a few words; '' when
    it is something else (a bug, a constraint)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    lowered = message.lower()
    for marker, cause in SQLITE_CAUSES:
        if marker in lowered:
            if cause == "disk I/O error" and database is not None and full(database.parent):
                return "disk full"
            return cause
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if code in POSTGRES_CAUSES:
        return POSTGRES_CAUSES[code]
    if disconnect or (isinstance(code, str) and code.startswith("08")):
        return f"connection lost: {message}" if message else "connection lost"
    if type(error).__module__.startswith("psycopg") and type(error).__name__ == "OperationalError" and not code:
        return f"cannot connect: {message}"  # libpq failed before the server said anything
    return ""


def full(directory: Path) -> bool:
    try:
        status = os.statvfs(directory)
    except OSError:
        return False
    return status.f_bavail == 0


class StoreMissing(MaintError):
    """A command that only reads the store found none (it never creates one): ``path`` is where it looked and
    ``origin`` why there (:class:`Location`). Commands that list exit 0 on it, as on an empty store; those asked
    for one record exit 3, as for a record the store does not hold."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, path: Path, origin: str) -> None:
        super().__init__(f"no store at {path} ({origin}): nothing recorded yet")
        self.path = path
        self.origin = origin


def prepare_location(url: str, create: bool = True, origin: str = "") -> Path | None:
    """Make ready the file of an SQLite store at ``url``; returns its path (None for other databases).

    A missing store file is created owner-only (0600) before SQLite opens it: SQLite gives its -wal
    and -shm files the mode of the database file. A missing directory is created (0700) only for the
    default location, the state directory: elsewhere it is most likely a typo that would split
    the record across two stores, so BadInput names it. With ``create`` False (commands that only read)
    nothing is created: a missing store file raises :class:`StoreMissing` naming ``origin``.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise BadInput(f"invalid store URL {url!r}", hint="e.g. sqlite:///path/maint.db or postgresql://...") from None
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.query.get("uri") or str(parsed.database).startswith("file:"):
        return None  # an SQLite URI filename: SQLite resolves it, with its own options
    path = Path(str(parsed.database))
    if path.is_dir():
        raise BadInput(f"the store {path} is a directory", hint="give the path of a file in it, e.g. {path}/maint.db")
    directory = path.parent
    if not directory.is_dir():
        if directory.exists():
            raise BadInput(f"the store's directory {directory} is not a directory", hint="correct the store URL")
        if not state_directory(directory):
            raise BadInput(
                f"the store's directory {directory} does not exist",
                hint=f"create it (mkdir -p {directory}) or correct the store URL "
                "(--db, $MAINT_DB or maint.yml's store)",
            )
        if not create:
            raise StoreMissing(path.absolute(), origin or "the default")
        private_directory(directory)
    if not path.exists():
        if not create:
            raise StoreMissing(path.absolute(), origin or "given")
        try:
            os.close(open_private(path, os.O_WRONLY))
        except OSError as error:
            raise BadInput(f"cannot create store {path}: {error.strerror}") from None
    return path


def check_maint_store(engine: Engine, shown: str, revision: str | None) -> None:
    """BadInput unless the database is empty or holds maint's tables at a ``revision`` this maint knows:
    maint never adds its tables to another program's database, nor opens a newer maint's store."""
    names = set(sa.inspect(engine).get_table_names())
    ours = {*metadata.tables, migrations.VERSION_TABLE}
    if not names:
        return
    if runs.name not in names:
        if names - ours:  # not a maint store whose tables are being created by another process
            listed = ", ".join(sorted(names - ours)[:5])
            raise BadInput(
                f"{shown} is not a maint store (it holds other tables: {listed})",
                hint="that database belongs to another program: give maint a store of its own (--db)",
            )
        return
    columns = {column["name"] for column in sa.inspect(engine).get_columns(runs.name)}
    missing = sorted(set(runs.c.keys()) - columns)
    if missing:
        raise BadInput(
            f"{shown} is not a maint store (its 'runs' table has no {', '.join(missing[:5])} column)",
            hint="give maint a store of its own (--db)",
        )
    migrations.check_known(revision, shown)


def sqlite_pragmas(busy_timeout: float, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (runs list in another shell) work during a run; NORMAL syncs at checkpoints,
    # which keeps per-result commits cheap while staying crash-consistent.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
