"""Test helpers that ship with maint: a lab fleet that always goes down, faults that always get fixed,
and in-process fakes of the hosts and the clock.

Usable from any test suite (maint's own, or a playbook author's)::

    from maint.testing import broken, running_lab, ssh_client

    with running_lab(tmp_path / "lab", hosts=3) as lab:
        with broken(lab, "lab2", "down"):
            ...  # lab2 refuses connections, lab1 and lab3 answer
        with ssh_client(lab, "lab1") as client:
            client.exec_command("uptime")

    # No sshd at all: scripted hosts, a clock that moves only when told.
    fake = FakeExecutor()
    fake.on(r"^df ", stdout="Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 95 5 95% /\n")
    fake.unreachable("web3", "connection to 10.0.0.3:22 refused")
    document = maint.run.run(request, executors={"ssh": fake}, clock=FrozenClock())
    assert fake.commands["web1"][0].startswith("df ")
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maint import lab as lab_library
from maint.errors import LabError
from maint.executors import CommandResult, Unreachable

if TYPE_CHECKING:
    import paramiko

    from maint.become import Become
    from maint.inventory import Host
    from maint.run import Services
    from maint.store import Store

FIRST_TEST_PORT = 20000
# How many ports running_lab tries before giving up: other test sessions may hold some.
PORT_ATTEMPTS = 200


def free_port(
    hosts: int,
    first_address: str = lab_library.DEFAULT_FIRST_ADDRESS,
    start: int = FIRST_TEST_PORT,
) -> int:
    """The first port from ``start`` upward that is free on every address a lab of ``hosts`` would use.

    Raises :class:`LabError` if none of ``PORT_ATTEMPTS`` ports is free.
    """
    addresses = lab_library.lab_addresses(first_address, hosts)
    for port in range(start, min(start + PORT_ATTEMPTS, 65536)):
        if all(lab_library.port_is_free(address, port) for address in addresses):
            return port
    raise LabError(f"no free port for a lab of {hosts} hosts in {start}..{start + PORT_ATTEMPTS - 1}")


@contextlib.contextmanager
def running_lab(
    directory: Path,
    hosts: int,
    port: int | None = None,
    *,
    first_address: str = lab_library.DEFAULT_FIRST_ADDRESS,
    user: str | None = None,
    sudo: str = "none",
    requiretty: bool = False,
) -> Iterator[lab_library.Lab]:
    """Start a lab of ``hosts`` hosts in ``directory``, yield it, and always take it down.

    With ``port`` None, the first free port from 20000 up is used; if another test session takes it
    between the check and sshd's bind, the next free one is tried. ``user``, ``sudo`` and
    ``requiretty`` are those of :func:`maint.lab.up` (as root: a lab logged into as a new account,
    removed again when the lab goes down).
    """

    def start_lab(chosen: int) -> lab_library.Lab:
        return lab_library.up(
            directory, hosts, port=chosen, first_address=first_address, user=user, sudo=sudo, requiretty=requiretty
        )

    if port is not None:
        lab = start_lab(port)
    else:
        start = FIRST_TEST_PORT
        while True:
            chosen = free_port(hosts, first_address, start=start)
            try:
                lab = start_lab(chosen)
                break
            except lab_library.LabPortInUse:
                start = chosen + 1
    try:
        yield lab
    finally:
        lab_library.down(lab.directory)


@contextlib.contextmanager
def broken(lab: lab_library.Lab, host: str, fault: str) -> Iterator[lab_library.LabHost]:
    """Apply ``fault`` to ``host`` of ``lab``, yield the broken host, and always fix it on exit.

    Fixing a ``down`` host restarts its sshd with a new pid: call :func:`maint.lab.load` for current
    pids rather than keeping the ones of an older :class:`~maint.lab.Lab`.
    """
    broken_host = lab_library.break_host(lab.directory, host, fault)
    try:
        yield broken_host
    finally:
        lab_library.fix_host(lab.directory, host)


@contextlib.contextmanager
def ssh_client(lab: lab_library.Lab, host: str, *, timeout: float = 5.0) -> Iterator[paramiko.SSHClient]:
    """A paramiko client logged in to ``host`` with the lab's key, checking its known_hosts strictly.

    ``timeout`` bounds the TCP connect, the wait for the SSH banner and authentication (the whole
    negotiation gets twice that). The client is closed on exit. Errors propagate: ConnectionRefusedError
    for a host that is down, paramiko.SSHException for one that hangs.
    """
    import paramiko  # imported here: 0.26 s that `import maint.testing` alone should not cost

    target = lab.host(host)
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    connection = socket.create_connection((target.address, target.port), timeout=timeout)
    # Without TCP_NODELAY each command round trip waits ~40 ms for delayed ACKs on loopback.
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        client.connect(
            target.address,
            port=target.port,
            sock=connection,
            username=lab.user,
            key_filename=str(lab.key_file),
            look_for_keys=False,
            allow_agent=False,
            # paramiko gives up negotiating after `timeout` with a vague "No existing session";
            # a longer bound than banner_timeout lets a hung host fail with the banner error.
            timeout=2 * timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
        yield client
    finally:
        client.close()
        connection.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Response:
    """What a scripted command answers: its output and exit code (None with ``timed_out``). With ``hangs``
    the command runs until the run cancels it (Ctrl-C, SIGTERM: a cancelled result) or its timeout passes
    (a timed-out one)."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = 0
    timed_out: bool = False
    hangs: bool = False


@dataclass
class _Rule:
    pattern: re.Pattern[str]
    hosts: str
    answer: Response | Callable[[str, str], Response]


class FakeExecutor:
    """An executor with scripted hosts, in the manner of Fabric's MockRemote: every command a run sends is
    answered by the first rule whose regular expression it matches (``re.search``) on a host matching the
    rule's shell pattern; a command no rule matches exits 127 ("not scripted"). Pass it to
    ``maint.run.run(request, executors={"ssh": fake})`` (``local`` for ``ansible_connection=local``
    hosts). ``commands`` records what each host was sent, in order; thread-safe like the engine's forks.
    """

    name = "fake"

    def __init__(self, connect_timeout: float = 10.0) -> None:
        self.connect_timeout = connect_timeout
        self.rules: list[_Rule] = []
        self.down: dict[str, str] = {}
        self.commands: dict[str, list[str]] = {}
        self.escalations: dict[str, list[Become | None]] = {}
        self._lock = threading.Lock()

    def on(
        self, pattern: str, *, hosts: str = "*", stdout: str = "", stderr: str = "", exit_code: int | None = 0,
        timed_out: bool = False, hangs: bool = False, answer: Callable[[str, str], Response] | None = None,
    ) -> FakeExecutor:  # fmt: skip
        """Answer commands matching ``pattern`` on ``hosts`` (a shell pattern of host names) with this output
        and exit code (see :class:`Response`), or with ``answer(host, command)``. Returns the executor, so
        rules chain."""
        response = answer or Response(stdout, stderr, exit_code, timed_out, hangs)
        self.rules.append(_Rule(re.compile(pattern), hosts, response))
        return self

    def unreachable(self, host: str, reason: str = "connection refused") -> FakeExecutor:
        """Make ``host`` unreachable with ``reason`` (its connect raises Unreachable)."""
        self.down[host] = reason
        return self

    def connect(self, host: Host) -> _FakeConnection:
        """A connection to ``host``; raises Unreachable for a host made unreachable."""
        if host.name in self.down:
            raise Unreachable(self.down[host.name])
        with self._lock:
            self.commands.setdefault(host.name, [])
        return _FakeConnection(self, host.name)

    def respond(self, host: str, command: str, become: Become | None = None) -> Response:
        """The scripted answer of ``host`` to ``command`` (and the command is recorded, with the escalation it
        was sent with in ``escalations``)."""
        with self._lock:
            self.commands.setdefault(host, []).append(command)
            self.escalations.setdefault(host, []).append(become)
        for rule in self.rules:
            if fnmatch.fnmatchcase(host, rule.hosts) and rule.pattern.search(command):
                return rule.answer(host, command) if callable(rule.answer) else rule.answer
        return Response(stderr=f"not scripted: {command}\n", exit_code=127)


class _FakeConnection:
    def __init__(self, executor: FakeExecutor, host: str) -> None:
        self.executor = executor
        self.host = host

    def run(
        self, command: str, timeout: float, stdin: str | None = None, cancel: threading.Event | None = None,
        become: Become | None = None,
    ) -> CommandResult:
        response = self.executor.respond(self.host, command, become)
        if response.hangs:
            cancelled = cancel is not None and cancel.wait(timeout)
            if cancel is None:
                time.sleep(timeout)  # the command's timeout passes: nothing else can end it
            return CommandResult(
                command=command, exit_code=None, stdout=response.stdout, stderr=response.stderr, duration=0.0,
                timed_out=not cancelled, cancelled=cancelled,
                ended="ended the step's processes on the host with SIGTERM (scripted)",
            )  # fmt: skip
        return CommandResult(
            command=command, exit_code=None if response.timed_out else response.exit_code, stdout=response.stdout,
            stderr=response.stderr, duration=0.0, timed_out=response.timed_out,
            ended="ended the step's processes on the host with SIGTERM (scripted)" if response.timed_out else "",
        )  # fmt: skip

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class FrozenClock:
    """A clock that stands still until told to move: pass it as a run's ``clock``; ``advance(seconds)``
    moves it, and ``step`` (seconds) moves it by that much at every reading."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC))
    step: float = 0.0

    def __call__(self) -> dt.datetime:
        current = self.now
        self.now += dt.timedelta(seconds=self.step)
        return current

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += dt.timedelta(seconds=seconds)


def memory_store() -> Store:
    """An empty maint store in memory, for in-process runs: ``Services(config, store=memory_store(),
    locks=tmp_path / "locks")``. The run records in it and leaves it open; read it, then ``close()`` it."""
    from maint.store import Store

    return Store("sqlite://")


def services(project_dir: Path, *, store: Store | None = None, **options: Any) -> Services:
    """The services of an in-process run in ``project_dir``: its maint.yml (if any), a store in memory
    (unless ``store``), host locks in ``project_dir/.maint/locks``; ``options`` are further
    :class:`maint.run.Services` fields (``clock``, ``executors``, ``pings``)."""
    from maint import config
    from maint.run import Services

    return Services(config=config.load(project_dir), store=store or memory_store(),
                    locks=project_dir / ".maint" / "locks", **options)  # fmt: skip
