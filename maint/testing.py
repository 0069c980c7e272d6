"""Test helpers that ship with maint: a lab fleet that always goes down, faults that always get fixed.

Usable from any test suite (maint's own, or a playbook author's)::

    from maint.testing import broken, running_lab, ssh_client

    with running_lab(tmp_path / "lab", hosts=3) as lab:
        with broken(lab, "lab2", "down"):
            ...  # lab2 refuses connections, lab1 and lab3 answer
        with ssh_client(lab, "lab1") as client:
            client.exec_command("uptime")
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from maint import lab as lab_library
from maint.errors import LabError

if TYPE_CHECKING:
    import paramiko

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
def running_lab(directory: Path, hosts: int, port: int | None = None) -> Iterator[lab_library.Lab]:
    """Start a lab of ``hosts`` hosts in ``directory``, yield it, and always take it down.

    With ``port`` None, the first free port from 20000 up is used; if another test session takes it
    between the check and sshd's bind, the next free one is tried.
    """
    if port is not None:
        lab = lab_library.up(directory, hosts, port=port)
    else:
        start = FIRST_TEST_PORT
        while True:
            chosen = free_port(hosts, start=start)
            try:
                lab = lab_library.up(directory, hosts, port=chosen)
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
