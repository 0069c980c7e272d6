"""The native SSH executor: paramiko over a TCP_NODELAY socket, one connection per host.

Why not paramiko's SSHClient: it adds per-connection work maint does not need (agent and key
discovery on every connect, a policy object, known_hosts reloading), and its sockets do not set
TCP_NODELAY, which costs ~40 ms per command round trip (Nagle against delayed ACKs).
"""

from __future__ import annotations

import getpass
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

from maint.executors import CommandResult, HostHung, Unreachable

if TYPE_CHECKING:
    from maint.inventory import Host

# Output kept per stream for parsing; beyond this the oldest bytes are dropped.
MAX_CAPTURE = 1 << 20
# After a command times out, how long an open-channel request may take before the host counts as hung.
PROBE_TIMEOUT = 5.0
DEFAULT_KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")

# paramiko logs a traceback from its transport thread for every failed handshake; maint reports
# the failure as the host's result instead, so keep paramiko's own records off the terminal.
_paramiko_log = logging.getLogger("paramiko")
_paramiko_log.addHandler(logging.NullHandler())
_paramiko_log.propagate = False


class Watchdog:
    """One thread that closes channels whose deadline has passed.

    paramiko's ``exec_command`` and ``recv_exit_status`` wait without a timeout; closing the
    channel is what wakes them when a host freezes mid-command.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, paramiko.Channel]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, channel: paramiko.Channel, deadline: float) -> None:
        """Close ``channel`` at ``deadline`` (time.monotonic) unless it is closed before."""
        with self._condition:
            heapq.heappush(self._heap, (deadline, next(self._counter), channel))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="maint-ssh-watchdog", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._heap:
                    self._condition.wait()
                deadline, _, channel = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0 and not channel.closed:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._heap)
            if not channel.closed:
                channel.close()


class KeyStore:
    """Loads private keys and known_hosts files once per process, shared by every connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, paramiko.PKey] = {}
        self._known: dict[str, paramiko.HostKeys] = {}

    def key(self, path: str) -> paramiko.PKey:
        """The private key at ``path``; raises Unreachable when it cannot be read or needs a passphrase."""
        with self._lock:
            cached = self._keys.get(path)
            if cached is not None:
                return cached
            try:
                key = paramiko.PKey.from_path(path)
            except FileNotFoundError:
                raise Unreachable(f"private key {path} not found") from None
            except paramiko.PasswordRequiredException:
                raise Unreachable(
                    f"private key {path} is passphrase-protected (load it into ssh-agent)"
                ) from None
            except (paramiko.SSHException, OSError, ValueError) as error:
                raise Unreachable(f"cannot read private key {path}: {error}") from None
            self._keys[path] = key
            return key

    def known_hosts(self, paths: Iterable[str]) -> paramiko.HostKeys:
        """The merged host keys of ``paths`` (missing files are skipped)."""
        names = tuple(paths)
        cache_key = "\0".join(names)
        with self._lock:
            cached = self._known.get(cache_key)
            if cached is not None:
                return cached
            merged = paramiko.HostKeys()
            for name in names:
                if os.path.exists(name):
                    try:
                        merged.load(name)
                    except (OSError, paramiko.SSHException, ValueError) as error:
                        raise Unreachable(f"cannot read known_hosts file {name}: {error}") from None
            self._known[cache_key] = merged
            return merged


class SSHConnection:
    """An authenticated paramiko transport to one host; runs one command per channel."""

    def __init__(self, transport: paramiko.Transport, host_name: str, watchdog: Watchdog) -> None:
        self.transport = transport
        self.host_name = host_name
        self._watchdog = watchdog

    def run(self, command: str, timeout: float) -> CommandResult:
        """Run ``command``; a timeout returns a result with ``timed_out`` set.

        Raises HostHung when the connection is dead or the host no longer answers.
        """
        started = time.monotonic()
        deadline = started + timeout
        try:
            channel = self.transport.open_session(timeout=min(timeout, PROBE_TIMEOUT * 2))
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise HostHung(f"could not open a channel: {error or type(error).__name__}") from None
        self._watchdog.watch(channel, deadline)
        stdout = bytearray()
        stderr = bytearray()
        try:
            channel.exec_command(command)
            channel.settimeout(0.2)
            while True:
                try:
                    chunk = channel.recv(65536)
                except TimeoutError:
                    # Drain stderr so a chatty command cannot fill the shared window and stall.
                    while channel.recv_stderr_ready():
                        _append(stderr, channel.recv_stderr(65536))
                    if time.monotonic() >= deadline or channel.closed:
                        break
                    continue
                if not chunk:
                    break
                _append(stdout, chunk)
            while True:
                try:
                    chunk = channel.recv_stderr(65536)
                except TimeoutError:
                    if time.monotonic() >= deadline or channel.closed:
                        break
                    continue
                if not chunk:
                    break
                _append(stderr, chunk)
            exit_code: int | None = channel.recv_exit_status()
        except (paramiko.SSHException, EOFError, OSError):
            exit_code = None
        finally:
            channel.close()
        duration = time.monotonic() - started
        if exit_code == -1:
            exit_code = None
        timed_out = exit_code is None and time.monotonic() >= deadline
        result = CommandResult(
            command=command,
            exit_code=exit_code,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=stderr.decode("utf-8", "replace"),
            duration=duration,
            timed_out=timed_out,
        )
        if exit_code is None and not self.alive():
            what = f"timed out after {timeout:g}s" if timed_out else "lost its connection"
            raise HostHung(f"host stopped responding: command {what}")
        return result

    def alive(self) -> bool:
        """Whether the host still answers a channel-open request within PROBE_TIMEOUT."""
        if not self.transport.is_active():
            return False
        try:
            channel = self.transport.open_session(timeout=PROBE_TIMEOUT)
        except (paramiko.SSHException, EOFError, OSError):
            return False
        channel.close()
        return True

    def close(self) -> None:
        """Close the transport (and its thread)."""
        self.transport.close()


def _append(buffer: bytearray, chunk: bytes) -> None:
    buffer += chunk
    if len(buffer) > MAX_CAPTURE:
        del buffer[: len(buffer) - MAX_CAPTURE]


class SSHExecutor:
    """Opens verified, key-authenticated SSH connections with paramiko.

    ``connect_timeout`` bounds the TCP connect, the SSH banner, key exchange and authentication.
    """

    name = "ssh"

    def __init__(self, connect_timeout: float = 10.0, keys: KeyStore | None = None) -> None:
        self.connect_timeout = connect_timeout
        self.keys = keys or KeyStore()
        self.watchdog = Watchdog()

    def connect(self, host: Host) -> SSHConnection:
        """Connect to ``host`` (address, port, user, key, known_hosts from the inventory).

        Raises Unreachable with a one-line reason: refused, timed out, host key unknown or
        changed, authentication failed.
        """
        timeout = self.connect_timeout
        where = f"{host.address}:{host.port}"
        try:
            sock = socket.create_connection((host.address, host.port), timeout=timeout)
        except TimeoutError:
            raise Unreachable(f"connect to {where} timed out after {timeout:g}s") from None
        except ConnectionRefusedError:
            raise Unreachable(f"connection to {where} refused") from None
        except OSError as error:
            raise Unreachable(f"cannot connect to {where}: {error.strerror or error}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        try:
            known = self._known_hosts(host)
            lookup_name = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
            expected = known.lookup(lookup_name)
            if expected:
                # Offer the key types known_hosts holds first, so the check compares like with like.
                options = transport.get_security_options()
                preferred = [kind for kind in options.key_types if kind in expected]
                options.key_types = preferred + [kind for kind in options.key_types if kind not in expected]
            try:
                transport.start_client(timeout=timeout)
            except paramiko.SSHException as error:
                message = str(error)
                if "banner" in message.lower():
                    raise Unreachable(
                        f"no SSH banner from {where} within {timeout:g}s (host hung?)"
                    ) from None
                raise Unreachable(f"SSH negotiation with {where} failed: {message}") from None
            except (EOFError, OSError) as error:
                raise Unreachable(f"SSH negotiation with {where} failed: {error or 'connection closed'}") from None
            self._verify_host_key(host, transport, lookup_name, expected)
            self._authenticate(host, transport)
        except BaseException:
            transport.close()
            raise
        return SSHConnection(transport, host.name, self.watchdog)

    def _known_hosts(self, host: Host) -> paramiko.HostKeys:
        if host.known_hosts:
            return self.keys.known_hosts([host.known_hosts])
        home = Path.home()
        return self.keys.known_hosts([str(home / ".ssh" / "known_hosts"), "/etc/ssh/ssh_known_hosts"])

    def _verify_host_key(
        self, host: Host, transport: paramiko.Transport, lookup_name: str, expected: Any
    ) -> None:
        key = transport.get_remote_server_key()
        source = host.known_hosts or "~/.ssh/known_hosts"
        if expected and key.get_name() in expected:
            if expected[key.get_name()] != key:
                raise Unreachable(
                    f"host key of {lookup_name} does not match {source} "
                    "(changed key or man-in-the-middle; fix known_hosts after checking)"
                )
            return
        if host.strict_host_key_checking:
            raise Unreachable(
                f"host key of {lookup_name} is not in {source} "
                "(add it with ssh-keyscan, or set StrictHostKeyChecking=no in ansible_ssh_common_args)"
            )

    def _authenticate(self, host: Host, transport: paramiko.Transport) -> None:
        user = host.user or getpass.getuser()
        if host.key_file:
            candidates = [host.key_file]
        else:
            ssh_dir = Path.home() / ".ssh"
            candidates = [str(ssh_dir / name) for name in DEFAULT_KEY_NAMES if (ssh_dir / name).exists()]
        errors = []
        for path in candidates:
            key = self.keys.key(path)
            try:
                transport.auth_publickey(user, key)
                return
            except paramiko.AuthenticationException:
                errors.append(path)
            except (paramiko.SSHException, EOFError, OSError) as error:
                raise Unreachable(f"authentication as {user} failed: {error}") from None
        if not host.key_file:
            try:
                for agent_key in paramiko.Agent().get_keys():
                    try:
                        transport.auth_publickey(user, agent_key)
                        return
                    except paramiko.AuthenticationException:
                        continue
            except paramiko.SSHException:
                pass
        tried = ", ".join(errors) or "no key found"
        raise Unreachable(
            f"authentication as {user} failed (tried {tried}; set ansible_ssh_private_key_file)"
        )
