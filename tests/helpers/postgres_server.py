"""A real, private PostgreSQL server on loopback for tests of the store on PostgreSQL.

The server binaries come from Debian (package ``postgresql``: ``/usr/lib/postgresql/N/bin``). Nothing
here touches a system-wide cluster: :func:`postgres_server` runs ``initdb`` on a new temporary
directory (trust authentication, UTF8, C locale), starts ``postgres`` listening on 127.0.0.1 only,
on a free port, with its unix socket in that directory, and always stops it and removes the
directory. Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): a
test database need not survive a power cut, and every commit would otherwise wait for the disk.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to the
``postgres`` user and the programs run as that user.

Typical use from a session fixture, one server per session and a new database per test::

    with postgres_server() as server:
        url = server.create_database("ledger_1")   # postgresql+psycopg://postgres@127.0.0.1:PORT/ledger_1
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from maint.testing import free_port

HOST = "127.0.0.1"
SUPERUSER = "postgres"
DEBIAN_PACKAGE = "postgresql"
# Above the lab's ports (20000 up), so a session's lab and server do not probe the same ports.
FIRST_PORT = 25432
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
SPEED_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens and where its cluster lives."""

    port: int
    directory: Path
    host: str = HOST

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server, as the superuser (trust authentication)."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """The libpq connection string of ``database``, for psycopg without SQLAlchemy."""
        return f"host={self.host} port={self.port} user={SUPERUSER} dbname={database} connect_timeout=5"

    def create_database(self, name: str) -> str:
        """Create the empty database ``name`` (a plain identifier) and return its SQLAlchemy URL.

        Raises psycopg errors (e.g. the database exists).
        """
        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            # CREATE DATABASE takes no parameters; the name is quoted as an identifier.
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


def bindir() -> Path | None:
    """The directory of ``initdb`` and ``postgres``: ``pg_config --bindir`` if it has them, else the
    newest ``/usr/lib/postgresql/*/bin`` (Debian's ``pg_config`` may come from libpq-dev alone);
    None when the server is not installed."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False)
            if found.returncode == 0 and found.stdout.strip():
                candidates.append(Path(found.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates.extend(Path(path) for path in sorted(versions, key=_version, reverse=True))
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    return None


def missing() -> str | None:
    """Why a PostgreSQL server cannot run here (the reason for pytest.skip), or None when it can."""
    if bindir() is None:
        return f"PostgreSQL server binaries (initdb, postgres) not found: install the Debian package '{DEBIAN_PACKAGE}'"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return f"running as root and there is no '{SUPERUSER}' user to own the cluster (PostgreSQL refuses root)"
    return None


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Create a private cluster in a new temporary directory, start it on 127.0.0.1 and a free port,
    wait until it accepts connections, yield it, and always stop it and remove the directory.

    Raises RuntimeError when the binaries are missing, initdb fails or the server does not accept
    connections within START_TIMEOUT seconds (with the server's log).
    """
    reason = missing()
    programs = bindir()
    if reason is not None or programs is None:
        raise RuntimeError(reason or "PostgreSQL not found")
    directory = Path(tempfile.mkdtemp(prefix="maint-pg-"))
    process: subprocess.Popen[bytes] | None = None
    log = directory / "postgres.log"
    try:
        owner = _owner(directory)
        data = directory / "data"
        _run_as(owner, [str(programs / "initdb"), "-D", str(data), "--auth=trust", f"--username={SUPERUSER}",
                        "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"], directory)  # fmt: skip
        port = free_port(1, HOST, start=FIRST_PORT)
        settings = [f"--{name}={value}" for name, value in SPEED_SETTINGS.items()]
        with log.open("wb") as log_file:
            # listen_addresses is 127.0.0.1 alone: the server never listens on another address.
            process = subprocess.Popen(
                [str(programs / "postgres"), "-D", str(data), "-h", HOST, "-p", str(port), "-k", str(directory),
                 *settings],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=directory, **_user_arguments(owner),
            )  # fmt: skip
        server = PostgresServer(port=port, directory=directory)
        _wait_until_ready(server, process, log)
        yield server
    finally:
        if process is not None:
            _stop(programs, directory / "data", process, _owner_of(directory))
        shutil.rmtree(directory, ignore_errors=True)


def _version(path: str) -> tuple[int, ...]:
    name = Path(path).parent.name
    return tuple(int(part) for part in name.split(".") if part.isdigit()) or (0,)


def _owner(directory: Path) -> str | None:
    """Give ``directory`` to the ``postgres`` user when running as root (PostgreSQL refuses root);
    returns the user to run the programs as, or None for the current one."""
    if os.geteuid() != 0:
        return None
    account = pwd.getpwnam(SUPERUSER)
    os.chown(directory, account.pw_uid, account.pw_gid)
    return SUPERUSER


def _owner_of(directory: Path) -> str | None:
    return SUPERUSER if os.geteuid() == 0 and directory.exists() else None


def _user_arguments(owner: str | None) -> dict[str, Any]:
    """Popen arguments that run a program as ``owner`` (its own group, no supplementary groups)."""
    if owner is None:
        return {}
    account = pwd.getpwnam(owner)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "env": _environment(account)}


def _environment(account: pwd.struct_passwd) -> dict[str, str]:
    # Only what the programs need: root's HOME and variables like PGDATA must not leak into the cluster.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": account.pw_dir, "USER": account.pw_name,
            "LC_ALL": "C"}  # fmt: skip


def _run_as(owner: str | None, command: list[str], directory: Path) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=directory,
                          **_user_arguments(owner))  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed (exit {done.returncode}): {done.stderr.strip()}")


def _wait_until_ready(server: PostgresServer, process: subprocess.Popen[bytes], log: Path) -> None:
    """Connect until the server answers; a server that exits or misses the deadline is an error with its log."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited with {process.returncode} while starting:\n{_tail(log)}")
        try:
            with psycopg.connect(server.conninfo(), connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not accept connections in {START_TIMEOUT:g} s ({error}):\n"
                                   f"{_tail(log)}") from None  # fmt: skip
            time.sleep(0.05)


def _stop(programs: Path, data: Path, process: subprocess.Popen[bytes], owner: str | None) -> None:
    """``pg_ctl stop -m fast`` (disconnects clients, no waiting for them); SIGKILL when that fails."""
    with contextlib.suppress(OSError, subprocess.SubprocessError, RuntimeError):
        _run_as(owner, [str(programs / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w",
                        "-t", str(int(STOP_TIMEOUT))], data.parent)  # fmt: skip
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
