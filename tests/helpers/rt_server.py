"""A real Request Tracker 5 server on loopback for tests, with its own private SQLite database.

RT comes from Debian (``request-tracker5``, ``rt5-db-sqlite``, ``rt5-standalone``). Nothing here reads
or writes the system-wide RT installation's database or settings: RT takes its whole configuration
from ``RT_SITE_CONFIG`` (a site config written into the server's directory) and ``RT_SITE_CONFIG_DIR``
(an empty directory there, so ``/etc/request-tracker5/RT_SiteConfig.d`` is not read); the database,
Mason cache, sessions, log and outgoing mail all live in that directory.

A database is initialised once with ``rt-setup-database-5`` (schema, core data, RT's initial data,
then ``tests/data/rt/initialdata.pl``: the tier queues, maint's custom fields and users) and an auth
token for the ``maint`` user is created; :func:`prepare_database` keeps that result in a directory
so that every :class:`RTServer` of a test session starts from a copy of it. Measured here (2 shared
cores): preparing takes about 2.2 s, starting a server until REST2 answers about 0.9 s, stopping it
about 0.1 s. The site config lowers RT's bcrypt cost to 4, or every authenticated request would cost
about 0.2 s of CPU.

Typical use from a fixture::

    template = prepare_database(tmp_path_factory.getbasetemp() / "rt-template")
    server = RTServer(tmp_path_factory.mktemp("rt"), template=template)
    server.start()
    ...
    server.stop()      # SIGTERM (kill=True: SIGKILL); the database stays
    server.start()     # same port, same data

An end-to-end test that runs maint as a subprocess puts :func:`backend_settings` into maint.yml's
``tickets.backends`` and passes :meth:`RTServer.environment` to the subprocess (the password travels
as ``env:MAINT_RT_PASSWORD``); it then reads the tickets back with :meth:`RTServer.tickets_with`,
:meth:`RTServer.ticket`, :meth:`RTServer.queue_name` and :meth:`RTServer.history`.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

RT_SERVER = Path("/usr/share/request-tracker5/libexec/rt-server")
SETUP_DATABASE = Path("/usr/sbin/rt-setup-database-5")
RT_LIBRARY = Path("/usr/share/request-tracker5/lib")
DATAFILE = Path(__file__).resolve().parents[1] / "data" / "rt" / "initialdata.pl"

ROOT_PASSWORD = "maint-lab"
USER = "maint"
PASSWORD = "maint-lab-api"
READONLY_USER = "maint-readonly"
READONLY_PASSWORD = "maint-lab-readonly"
NO_FIELDS_USER = "maint-no-fields"  # may create and change tickets, but not set custom fields
NO_FIELDS_PASSWORD = "maint-lab-no-fields"
QUEUES = {"L1": "Help Desk", "L2": "Service Desk", "L3": "Back End"}
CUSTOM_FIELDS = {"key": "maint-key", "host": "maint-host", "check": "maint-check"}

DATABASE_FILE = "rt.db"
TOKEN_FILE = "maint.token"

_CREATE_TOKEN = r"""
use strict;
use warnings;
use RT;
RT::LoadConfig();
RT::Init();
my $user = RT::User->new(RT->SystemUser);
$user->Load($ARGV[0]) or die "no user $ARGV[0]\n";
my $token = RT::AuthToken->new(RT->SystemUser);
my ($id, $message, $auth) = $token->Create(Owner => $user->Id, Description => 'maint tests');
die "$message\n" unless $id;
print $auth;
"""


def missing() -> str | None:
    """Why RT cannot run on this machine (a missing program), or None when it can."""
    for program in (RT_SERVER, SETUP_DATABASE):
        if not program.exists():
            return f"{program} is not installed (apt: request-tracker5 rt5-db-sqlite rt5-standalone)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _perl_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_config(directory: Path, port: int) -> dict[str, str]:
    """Write a complete RT site config for ``directory``; returns the environment that makes RT use it.

    The environment also drops any RT_* variables inherited from the caller.
    """
    directory = directory.resolve()
    for sub in ("mason", "sessions", "config.d"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    sendmail = directory / "sendmail"
    # Outgoing mail (RT's notification scrips) lands in a file here instead of the machine's MTA.
    sendmail.write_text(f"#!/bin/sh\ncat >> {shlex.quote(str(directory / 'outgoing-mail.txt'))}\n")
    sendmail.chmod(0o755)
    settings = {
        "rtname": "maint-lab",
        "Organization": "maint-lab",
        "CorrespondAddress": "rt@localhost",
        "CommentAddress": "rt-comment@localhost",
        "WebPath": "",
        "WebDomain": "127.0.0.1",
        "WebPort": str(port),
        "WebBaseURL": f"http://127.0.0.1:{port}",
        "DatabaseType": "SQLite",
        "DatabaseName": str(directory / DATABASE_FILE),
        "DatabaseHost": "localhost",
        "DatabaseUser": "",
        "DatabasePassword": "",
        "MasonDataDir": str(directory / "mason"),
        "MasonSessionDir": str(directory / "sessions"),
        "LogToSTDERR": "error",
        "MailCommand": "sendmailpipe",
        "SendmailPath": str(sendmail),
        "Timezone": "UTC",
    }
    lines = [f"Set(${name}, {_perl_string(value)});" for name, value in settings.items()]
    # RT's default bcrypt cost (12) spends about 0.2 s of CPU on every authenticated request.
    lines += ["Set($BcryptCost, 4);", "Set($LogToSyslog, undef);", "Set($LogToFile, undef);", "1;", ""]
    config = directory / "RT_SiteConfig.pm"
    config.write_text("\n".join(lines))
    environment = {name: value for name, value in os.environ.items() if not name.startswith("RT_")}
    environment.update(
        RT_SITE_CONFIG=str(config),
        RT_SITE_CONFIG_DIR=str(directory / "config.d"),
        PERL5LIB=str(RT_LIBRARY),
    )
    return environment


def prepare_database(directory: Path, datafile: Path = DATAFILE) -> Path:
    """An initialised RT database (and the maint user's auth token) in ``directory``; returns it.

    Reuses what an earlier call left there, so a session-wide directory makes this a one-time cost.
    Raises RuntimeError (with RT's output) when a setup step fails.
    """
    if (directory / DATABASE_FILE).exists() and (directory / TOKEN_FILE).exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    (directory / DATABASE_FILE).unlink(missing_ok=True)
    environment = write_config(directory, free_port())
    root_password = directory / "root-password"
    root_password.write_text(ROOT_PASSWORD)
    steps = [
        [str(SETUP_DATABASE), "--action", "init", "--skip-create", "--root-password-file", str(root_password)],
        [str(SETUP_DATABASE), "--action", "insert", "--datafile", str(datafile)],
        ["perl", "-e", _CREATE_TOKEN, USER],
    ]
    outputs = []
    for command in steps:
        done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, check=False)
        outputs.append(done.stdout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    (directory / TOKEN_FILE).write_text(outputs[-1].strip())
    return directory


@dataclass
class Transaction:
    """One entry of a ticket's history, with the text of its attachments (comments, the opening text)."""

    id: str
    type: str
    field: str | None
    old_value: str | None
    new_value: str | None
    contents: list[str] = dataclasses.field(default_factory=list)

    @property
    def text(self) -> str:
        """All attachment contents of the transaction, joined by newlines."""
        return "\n".join(self.contents)


class RTServer:
    """One ``rt-server`` process on 127.0.0.1, with its database in ``directory`` (kept across restarts)."""

    def __init__(self, directory: Path, template: Path | None = None, port: int | None = None,
                 workers: int = 2) -> None:  # fmt: skip
        """Set up (no process yet). ``template`` is a :func:`prepare_database` directory to copy from;
        without one the database is prepared in ``directory`` itself. ``port`` defaults to a free one."""
        self.directory = directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.workers = workers
        self.user = USER
        self.password = PASSWORD
        self.queues = dict(QUEUES)
        self.custom_fields = dict(CUSTOM_FIELDS)
        self._process: subprocess.Popen[bytes] | None = None
        database = self.directory / DATABASE_FILE
        if template is None:
            prepare_database(self.directory)
        elif not database.exists():
            shutil.copyfile(template / DATABASE_FILE, database)
            shutil.copyfile(template / TOKEN_FILE, self.directory / TOKEN_FILE)
        self.token = (self.directory / TOKEN_FILE).read_text().strip()
        self.log = self.directory / "rt-server.log"
        self.startup_seconds: float | None = None
        # A test run that ends without stopping the server (an error in a fixture) must not leave RT behind.
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        """The web base URL, e.g. ``http://127.0.0.1:41234`` (REST2 is under ``/REST/2.0``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 90.0) -> RTServer:
        """Start RT and wait until REST2 answers an authenticated request; returns self.

        Raises RuntimeError with the end of RT's log when it exits or does not answer within ``timeout``.
        """
        if self.running:
            return self
        environment = write_config(self.directory, self.port)
        began = time.monotonic()
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [str(RT_SERVER), "--host", "127.0.0.1", "--port", str(self.port), "--max-workers", str(self.workers)],
                cwd=self.directory,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends the workers too
            )
        probe = requests.Session()
        probe.auth = (self.user, self.password)
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"rt-server exited with {self._process.returncode}:\n{self._log_tail()}")
            try:
                if probe.get(f"{self.url}/REST/2.0/rt", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() - began > timeout:
                self.stop()
                raise RuntimeError(f"rt-server did not answer within {timeout:g}s:\n{self._log_tail()}")
            time.sleep(0.1)
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self, kill: bool = False) -> None:
        """Stop the server and its workers (SIGTERM, or SIGKILL when ``kill``); the database stays.

        A killed server is what a crash looks like; SQLite rolls back any half-done write at the next
        start. Either way takes about 0.1 s.
        """
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # Workers share the group; make sure none outlives the master and holds the port.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        self._process = None
        # A dying worker may still accept a connection and then reset it: stopped means refused.
        deadline = time.monotonic() + 10
        while self._listening():
            if time.monotonic() > deadline:
                raise RuntimeError(f"RT on port {self.port} still accepts connections after it was stopped")
            time.sleep(0.01)

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def environment(self, password_variable: str = "MAINT_RT_PASSWORD") -> dict[str, str]:
        """Environment for a maint subprocess whose maint.yml has :func:`backend_settings`."""
        return {password_variable: self.password}

    def __enter__(self) -> RTServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"

    # Reading tickets back through REST2, as the tests' independent view of what the backend did

    def rest(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One REST2 request as ``maint`` (``path`` below /REST/2.0); raises for an HTTP error status."""
        response = requests.request(
            method, f"{self.url}/REST/2.0/{path.lstrip('/')}", auth=(self.user, self.password), timeout=30, **kwargs
        )
        response.raise_for_status()
        return response

    def ticket(self, ticket_id: str | int) -> dict[str, Any]:
        """The ticket's REST2 record (Subject, Status, Priority, Queue, CustomFields, ...)."""
        record: dict[str, Any] = self.rest("GET", f"ticket/{ticket_id}").json()
        return record

    def search(self, query: str) -> list[str]:
        """Ids of all tickets matching the TicketSQL ``query``, oldest first."""
        ids: list[str] = []
        page = 1
        while True:
            found = self.rest(
                "GET",
                "tickets",
                params={"query": query, "orderby": "id", "order": "ASC", "per_page": 100, "page": page},
            ).json()
            ids += [str(item["id"]) for item in found["items"]]
            if not found.get("next_page"):
                return ids
            page += 1

    def tickets_with(self, custom_field: str, value: str, active_only: bool = False) -> list[str]:
        """Ids of the tickets whose custom field ``custom_field`` is ``value`` (only active ones if asked)."""
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        query = f"CF.{{{custom_field}}} = '{escaped}'"
        if active_only:
            query += " AND Status = '__Active__'"
        return self.search(query)

    def custom_field_values(self, ticket_id: str | int) -> dict[str, str]:
        """The ticket's custom fields as name → value (first value; empty fields are left out)."""
        return {
            entry["name"]: entry["values"][0] for entry in self.ticket(ticket_id)["CustomFields"] if entry.get("values")
        }

    def queue_name(self, ticket_id: str | int) -> str:
        """The name of the queue the ticket is in."""
        queue_id = self.ticket(ticket_id)["Queue"]["id"]
        name: str = self.rest("GET", f"queue/{queue_id}").json()["Name"]
        return name

    def history(self, ticket_id: str | int) -> list[Transaction]:
        """The ticket's transactions, oldest first, each with the text of its attachments."""
        contents: dict[str, list[str]] = {}
        for attachment in self._all(f"ticket/{ticket_id}/attachments", "TransactionId,Content,ContentType"):
            text = attachment.get("Content")
            if text and str(attachment.get("ContentType", "")).startswith("text/"):
                # A collection gives the decoded text (only a single attachment's record is base64).
                contents.setdefault(str(attachment["TransactionId"]), []).append(text)
        return [
            Transaction(
                id=str(item["id"]),
                type=str(item.get("Type")),
                field=item.get("Field") or None,
                old_value=item.get("OldValue") or None,
                new_value=item.get("NewValue") or None,
                contents=contents.get(str(item["id"]), []),
            )
            for item in self._all(f"ticket/{ticket_id}/history", "Type,Field,OldValue,NewValue")
        ]

    def _all(self, path: str, fields: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            found = self.rest("GET", path, params={"fields": fields, "per_page": 100, "page": page}).json()
            yield from found["items"]
            # "next_page" is missing when RT does not count the total for the user: a full page means more.
            if len(found["items"]) < 100:
                return
            page += 1


@contextmanager
def running(directory: Path, template: Path | None = None) -> Iterator[RTServer]:
    """An :class:`RTServer` that is started on entry and stopped on exit."""
    server = RTServer(directory, template=template)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def backend_settings(server: RTServer, password_variable: str = "MAINT_RT_PASSWORD") -> dict[str, Any]:
    """The maint.yml settings of an ``rt`` backend for ``server`` (under ``tickets.backends.NAME``).

    The password is an ``env:`` reference: a maint subprocess needs ``{password_variable: server.password}``
    in its environment (see :meth:`RTServer.environment`).
    """
    return {
        "type": "rt",
        "url": server.url,
        "user": server.user,
        "password": f"env:{password_variable}",
        "queues": dict(server.queues),
        "custom_fields": dict(server.custom_fields),
    }
