"""A real Roundup tracker served by ``roundup-server`` on 127.0.0.1, for tests of the roundup backend.

The tracker is Roundup's stock ``classic`` template with the SQLite backend, installed with cheap
password hashing (``password_pbkdf2_default_rounds=1000``: the default costs about a second of CPU
per request) and outgoing e-mail written to ``mail.log`` in the tracker instead of sent. It has the
users ``admin`` (role Admin) and ``maint`` (role User, what a tracker admin would give maint), and
the classic priorities and statuses. Installing takes about 0.7 s, so one pristine tracker is
installed per process and copied for every server; a start takes about 0.3 s (see
:attr:`RoundupServer.start_seconds`).

Roundup refuses to run as root: as root the server drops to ``nobody:nogroup`` after binding, and
the tracker directory (under a 0755 directory in /tmp, since pytest's own tmp directories are 0700)
belongs to nobody. Usable from fixtures and from tests that run maint as a subprocess::

    with RoundupServer() as roundup:        # installs and starts
        roundup.url, roundup.user, roundup.password
        roundup.stop()                       # connection refused; the data stays
        roundup.start()                      # same port, same tracker
        roundup.issues("web1/disk")          # read back through REST as admin
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

TRACKER_NAME = "tracker"
ADMIN_PASSWORD = "admin-test-password"
MAINT_USER = "maint"
MAINT_PASSWORD = "maint-test-password"
HOST = "127.0.0.1"

_pristine_tracker: Path | None = None


@dataclass(frozen=True)
class Message:
    """One msg of an issue as stored: its text, Message-ID and author's username."""

    id: str
    content: str
    messageid: str | None
    author: str | None


@dataclass(frozen=True)
class Issue:
    """One issue as stored, with link properties resolved to names and its messages in order."""

    id: str
    title: str
    status: str | None
    priority: str | None
    assignee: str | None
    keywords: tuple[str, ...]
    messages: tuple[Message, ...]

    @property
    def ref(self) -> str:
        """The designator, e.g. ``issue3``, as the backend returns it."""
        return f"issue{self.id}"


def _tool(name: str) -> str:
    """The path of a Roundup script of the Python running the tests (or on PATH)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install roundup into this environment")
    return found


def _admin(tracker: Path, *args: str) -> None:
    subprocess.run(
        [_tool("roundup-admin"), "-i", str(tracker), *args], check=True, capture_output=True, text=True, timeout=60
    )


def pristine_tracker() -> Path:
    """A classic tracker installed once per process (copy it; never serve it). Raises on install failure."""
    global _pristine_tracker
    if _pristine_tracker is None:
        base = Path(tempfile.mkdtemp(prefix="maint-roundup-pristine-"))
        atexit.register(shutil.rmtree, base, True)
        tracker = base / TRACKER_NAME
        settings = ",".join(
            [
                "rdbms_backend=sqlite",
                "password_pbkdf2_default_rounds=1000",
                # Rewritten with the real port by every server that copies this tracker.
                f"tracker_web=http://{HOST}:1/{TRACKER_NAME}/",
                "mail_domain=localhost",
                "mail_debug=mail.log",
            ]
        )
        _admin(tracker, "install", "classic", "sqlite", settings)
        _admin(tracker, "initialise", ADMIN_PASSWORD)
        _admin(
            tracker, "create", "user", f"username={MAINT_USER}", f"password={MAINT_PASSWORD}", "roles=User",
            "address=maint@localhost",
        )  # fmt: skip
        _pristine_tracker = tracker
    return _pristine_tracker


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class RoundupServer:
    """One roundup-server process serving its own copy of the test tracker on a fixed port.

    ``directory`` (default: a new 0755 directory in /tmp, removed by :meth:`close`) holds the
    tracker and ``server.log``. The port is chosen once, so :meth:`start` after :meth:`stop` serves
    the same URL and the same data. ``web`` sets the tracker's ``[tracker] web`` to another address
    than :attr:`url` (as behind a proxy), which Roundup's REST API checks the Origin header against.
    """

    def __init__(self, directory: Path | None = None, port: int | None = None, web: str | None = None) -> None:
        self._owns_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="maint-roundup-")) if directory is None else directory
        self.port = port or free_port()
        self.tracker = self.directory / TRACKER_NAME
        self.user = MAINT_USER
        self.password = MAINT_PASSWORD
        self.web = web or self.url
        self.start_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._admin_http: requests.Session | None = None
        # A server in its own session outlives a test process that dies without closing it.
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        """The tracker's base URL (its ``[tracker] web`` setting), e.g. ``http://127.0.0.1:41234/tracker/``."""
        return f"http://{HOST}:{self.port}/{TRACKER_NAME}/"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def install(self) -> None:
        """Copy the pristine tracker here (once) and point its web URL at this server's port."""
        if self.tracker.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        # nobody must traverse to the tracker; tempfile and pytest create 0700 directories.
        self.directory.chmod(0o755)
        shutil.copytree(pristine_tracker(), self.tracker, ignore=shutil.ignore_patterns("__pycache__"))
        config = self.tracker / "config.ini"
        text = re.sub(r"(?m)^web = .*$", f"web = {self.web}", config.read_text())
        config.write_text(text)
        if os.geteuid() == 0:
            for path in [self.tracker, *self.tracker.rglob("*")]:
                shutil.chown(path, "nobody", "nogroup")

    def start(self, timeout: float = 20.0) -> RoundupServer:
        """Install if needed, start the server and wait until it answers HTTP; returns self.

        Raises RuntimeError with the end of ``server.log`` if it exits or does not answer in time.
        """
        if self.pid is not None:
            return self
        self.install()
        command = [_tool("roundup-server"), "-n", HOST, "-p", str(self.port)]
        if os.geteuid() == 0:
            command += ["-u", "nobody", "-g", "nogroup"]
        command.append(f"{TRACKER_NAME}={self.tracker}")
        started = time.monotonic()
        with open(self.directory / "server.log", "ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = started + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"roundup-server exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                # The REST root answers (403 to anonymous) once the tracker is loaded.
                requests.get(self.url + "rest/", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"roundup-server did not answer within {timeout:g}s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Kill the server (its process group: fork-mode children too); the tracker's data stays."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the server (SIGSTOP): connections are accepted by the kernel but never answered."""
        pid = self.pid
        if pid is None:
            raise RuntimeError("the server is not running")
        os.killpg(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and remove the directory if this object created it."""
        self.stop()
        if self._admin_http is not None:
            self._admin_http.close()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RoundupServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server's log."""
        path = self.directory / "server.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # Reading and preparing data as the tracker's admin, through the same REST API.

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``rest/PATH`` as admin and return the JSON ``data``; raises RuntimeError on an HTTP error."""
        if self._admin_http is None:
            self._admin_http = requests.Session()
            self._admin_http.auth = ("admin", ADMIN_PASSWORD)
            self._admin_http.headers.update({"Accept": "application/json", "X-Requested-With": "rest"})
        if method.upper() != "GET":
            # Roundup checks a given Origin even on reads, and wants one on writes.
            parts = urlsplit(self.web)
            kwargs["headers"] = {"Origin": f"{parts.scheme}://{parts.netloc}", **kwargs.get("headers", {})}
        response = self._admin_http.request(method, self.url + "rest/" + path.lstrip("/"), timeout=10, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()["data"]

    def create(self, classname: str, **properties: Any) -> str:
        """Create an item (a user, a keyword, ...) as admin; returns its id."""
        return str(self.rest("POST", f"data/{classname}", json=properties)["id"])

    def edit(self, ref: str, **properties: Any) -> Any:
        """Change properties of issue ``ref`` as admin (as a person would in the web UI); returns REST's answer."""
        path = f"data/issue/{ref.removeprefix('issue')}"
        etag = self.rest("GET", path)["@etag"]
        return self.rest("PUT", path, json=properties, headers={"If-Match": etag})

    def issue(self, ref: str) -> Issue:
        """The issue ``ref`` (``issue3`` or ``3``) with names resolved and its messages' text."""
        number = ref.removeprefix("issue")
        attributes = self.rest("GET", f"data/issue/{number}", params={"@verbose": "2"})["attributes"]

        def name(link: dict[str, Any] | None, label: str = "name") -> str | None:
            return None if not link else str(link[label])

        messages = []
        for link in attributes["messages"]:
            msg = self.rest("GET", f"data/msg/{link['id']}", params={"@verbose": "3"})["attributes"]
            author = msg.get("author")
            messages.append(Message(str(link["id"]), msg["content"], msg["messageid"], author and author["username"]))
        return Issue(
            id=number,
            title=attributes["title"],
            status=name(attributes["status"]),
            priority=name(attributes["priority"]),
            assignee=name(attributes["assignedto"], "username"),
            keywords=tuple(str(keyword["name"]) for keyword in attributes["keyword"]),
            messages=tuple(sorted(messages, key=lambda message: int(message.id))),
        )

    def issues(self, key: str | None = None) -> list[Issue]:
        """Every issue (with ``[key]`` in its title when ``key`` is given), oldest first."""
        params = {"title": f"[{key}]"} if key is not None else {}
        collection = self.rest("GET", "data/issue", params=params)["collection"]
        found = [self.issue(str(item["id"])) for item in collection]
        found = [issue for issue in found if key is None or f"[{key}]" in issue.title]
        return sorted(found, key=lambda issue: int(issue.id))

    def mail(self) -> str:
        """What the tracker would have e-mailed (nosy messages), as written to its mail.log."""
        path = self.tracker / "mail.log"
        return path.read_text(errors="replace") if path.exists() else ""
