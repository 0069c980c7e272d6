"""The native SSH executor: paramiko over a TCP_NODELAY socket, one connection per host.

Why not paramiko's SSHClient: it adds per-connection work maint does not need (agent and key
discovery on every connect, a policy object, known_hosts reloading), and its sockets do not set
TCP_NODELAY, which costs ~40 ms per command round trip (Nagle against delayed ACKs).

Where a connection goes and how it logs in (ssh_config, ProxyJump, ProxyCommand, keys, certificates,
password) is resolved by :mod:`maint.executors.sshconfig`; this module opens it: a jump host's transport
carries the next one over a ``direct-tcpip`` channel, a ProxyCommand over a socket pair. The connection's
shell sessions are :mod:`maint.executors.session`'s, its escalations :mod:`maint.executors.escalation`'s.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko
from paramiko.pkey import PublicBlob

from maint.executors import Unreachable, sshconfig
from maint.executors.session import Closable, SSHConnection, Watchdog
from maint.executors.sshconfig import Endpoint, Identity

if TYPE_CHECKING:
    from maint.inventory import Host

# How long a ProxyCommand that closed its end gets to exit before its failure is reported without its status.
PROXY_EXIT_WAIT = 1.0

# paramiko logs a traceback from its transport thread for every failed handshake; maint reports
# the failure as the host's result instead, so keep paramiko's own records off the terminal.
_paramiko_log = logging.getLogger("paramiko")
_paramiko_log.addHandler(logging.NullHandler())
_paramiko_log.propagate = False
# How each host is reached, for ``maint -vvv``: endpoints, jump hosts, host keys, the authentication that worked.
log = logging.getLogger("maint.ssh")


class KeyStore:
    """Loads private keys, certificates and known_hosts files once per process, shared by every connection."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._keys: dict[str, paramiko.PKey] = {}
        self._offers: dict[tuple[str, tuple[str, ...]], list[tuple[paramiko.PKey, str]]] = {}
        self._known: dict[str, paramiko.HostKeys] = {}

    def key(self, path: str) -> paramiko.PKey:
        """The private key at ``path``, without a certificate; raises Unreachable when it cannot be read or
        needs a passphrase."""
        with self._lock:
            cached = self._keys.get(path)
            if cached is not None:
                return cached
            key = _load_key(path)
            # paramiko loads PATH-cert.pub along with the key: the plain key is offered on its own.
            key.public_blob = None
            self._keys[path] = key
            return key

    def offers(self, path: str, certificates: Sequence[str] = ()) -> list[tuple[paramiko.PKey, str]]:
        """What to offer the server for the identity ``path``, as (key, label): the key with each certificate
        that certifies it (``PATH-cert.pub`` beside it, then those of ``certificates``), then the plain key.
        Raises Unreachable like :meth:`key`, and for a certificate file that cannot be read."""
        cache_key = (path, tuple(certificates))
        with self._lock:
            cached = self._offers.get(cache_key)
            if cached is not None:
                return cached
            plain = self.key(path)
            offers: list[tuple[paramiko.PKey, str]] = []
            beside = path + "-cert.pub"
            for certificate in dict.fromkeys([beside, *certificates]):
                if certificate == beside and not os.path.exists(beside):
                    continue
                try:
                    blob = PublicBlob.from_file(certificate)
                except (OSError, ValueError, paramiko.SSHException) as error:
                    raise Unreachable(f"cannot read certificate {certificate}: {error}") from None
                if not _certifies(blob.key_blob, plain):
                    continue  # a CertificateFile of another identity
                certified = _load_key(path)
                certified.public_blob = blob
                offers.append((certified, f"{path} with certificate {certificate}"))
            offers.append((plain, path))
            self._offers[cache_key] = offers
            return offers

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


def _load_key(path: str) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        raise Unreachable(f"private key {path} not found") from None
    except paramiko.PasswordRequiredException:
        raise Unreachable(f"private key {path} is passphrase-protected (load it into ssh-agent)") from None
    except (paramiko.SSHException, OSError, ValueError) as error:
        raise Unreachable(f"cannot read private key {path}: {error}") from None


def _certifies(certificate: bytes, key: paramiko.PKey) -> bool:
    """Whether the certificate blob carries ``key``'s public key: the key's fields after its type name (RSA's e
    and n, ECDSA's curve and point, Ed25519's point) stand in the certificate, after its nonce, as they are."""
    public = key.asbytes()
    fields = public[4 + int.from_bytes(public[:4], "big") :]
    return bool(fields) and fields in certificate


class _ProxyCommand:
    """A running ProxyCommand: ``/bin/sh -c 'exec COMMAND'`` with its stdin and stdout on one end of a socket
    pair, the transport on the other (a real socket: timeouts and end of file work as over TCP, where paramiko's
    own ProxyCommand spins on a closed pipe). Its stderr goes to a file, read for the message when it fails."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.socket, child = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        try:
            self.process = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {command}"], stdin=child.fileno(), stdout=child.fileno(), stderr=self._stderr,
                start_new_session=True,
            )  # fmt: skip
        except OSError as error:
            self.socket.close()
            self._stderr.close()
            raise Unreachable(f"cannot start ProxyCommand {command!r}: {error.strerror or error}") from None
        finally:
            child.close()

    def failure(self, wait: float) -> str | None:
        """``exited with status N: FIRST STDERR LINE`` when the command ends within ``wait`` seconds, else None."""
        try:
            status = self.process.wait(timeout=max(0.0, wait))
        except subprocess.TimeoutExpired:
            return None
        self._stderr.seek(0)
        errors = self._stderr.read(4096).decode("utf-8", "replace").splitlines()
        first = next((line.strip() for line in errors if line.strip()), "")
        return f"exited with status {status}" + (f": {first}" if first else " (nothing on stderr)")

    def close(self) -> None:
        self.socket.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()


class SSHExecutor:
    """Opens verified, authenticated SSH connections with paramiko, through jump hosts or a ProxyCommand.

    ``connect_timeout`` (or the host's ConnectTimeout) bounds everything up to a logged-in connection: for
    each jump host and the host itself, the TCP connect, the SSH banner, key exchange and authentication.
    """

    name = "ssh"

    def __init__(
        self, connect_timeout: float = 10.0, keys: KeyStore | None = None, configs: sshconfig.ConfigFiles | None = None
    ) -> None:
        self.connect_timeout = connect_timeout
        self.keys = keys or KeyStore()
        self.configs = configs or sshconfig.CONFIGS
        self.watchdog = Watchdog()

    def connect(self, host: Host) -> SSHConnection:
        """Connect to ``host`` as the inventory, its ssh arguments and ssh_config say (see
        :mod:`maint.executors.sshconfig`).

        Raises Unreachable with a one-line reason that names the jump host when one fails: refused, timed
        out, ProxyCommand failed, host key unknown or changed, authentication failed, bad ssh_config.
        """
        try:
            endpoint = sshconfig.resolve(host, self.configs)
            password = sshconfig.password(host)
        except sshconfig.ConfigError as error:
            raise Unreachable(str(error)) from None
        timeout = endpoint.connect_timeout or self.connect_timeout
        log.debug(
            "%s: connecting to %s as %s%s%s (%s)", host.name, endpoint.where, endpoint.user,
            f" through jump host {endpoint.via.label}" if endpoint.via is not None else "",
            " with a ProxyCommand" if endpoint.proxy_command is not None else "", endpoint.config,
        )  # fmt: skip
        opened: list[Closable] = []
        try:
            transport = self._open(endpoint, time.monotonic() + timeout, timeout, opened, password, hop=False)
        except BaseException:
            for carrier in reversed(opened):
                carrier.close()
            raise
        shell_session = str(host.vars.get("maint_shell_session", True)).lower() not in ("false", "no", "0", "off")
        return SSHConnection(transport, host.name, self.watchdog, shell_session=shell_session, tunnel=opened[:-1],
                             endpoint=endpoint)

    def _open(
        self, endpoint: Endpoint, deadline: float, timeout: float, opened: list[Closable], password: str | None,
        hop: bool,
    ) -> paramiko.Transport:  # fmt: skip
        """A logged-in transport to ``endpoint``; it, and what carries it, are appended to ``opened``."""
        if hop:
            log.debug("jump host %s: connecting as %s", endpoint.label, endpoint.user)
        proxy: _ProxyCommand | None = None
        if endpoint.via is not None:
            carrier = self._open(endpoint.via, deadline, timeout, opened, None, hop=True)
            sock: Any = self._forward(carrier, endpoint, deadline, timeout, hop)
        elif endpoint.proxy_command is not None:
            proxy = _ProxyCommand(endpoint.proxy_command)
            opened.append(proxy)
            sock = proxy.socket
        else:
            sock = self._dial(endpoint, deadline, timeout, hop)
        transport = paramiko.Transport(sock)
        opened.append(transport)
        if endpoint.keepalive:
            transport.set_keepalive(endpoint.keepalive)
        remaining = _remaining(deadline)
        transport.banner_timeout = remaining
        transport.handshake_timeout = remaining
        transport.auth_timeout = remaining
        known = self.keys.known_hosts(endpoint.known_hosts + endpoint.global_known_hosts)
        expected = known.lookup(endpoint.known_hosts_name)
        if expected:
            # Offer the key types known_hosts holds first, so the check compares like with like.
            options = transport.get_security_options()
            preferred = [kind for kind in options.key_types if kind in expected]
            options.key_types = preferred + [kind for kind in options.key_types if kind not in expected]
        where = endpoint.where
        try:
            # paramiko's start_client returns silently when its own timeout passes first,
            # so give the banner timeout the first word and check the outcome below.
            transport.start_client(timeout=remaining + 1)
        except paramiko.SSHException as error:
            message = str(error)
            self._proxy_failed(proxy, endpoint, deadline, hop)
            if "banner" in message.lower():
                raise _failure(endpoint, hop, f"no SSH banner from {where} within {timeout:g}s (host hung?)",
                               f"no SSH banner within {timeout:g}s (host hung?)") from None  # fmt: skip
            raise _failure(endpoint, hop, f"SSH negotiation with {where} failed: {message}",
                           f"SSH negotiation failed: {message}") from None  # fmt: skip
        except (EOFError, OSError) as error:
            self._proxy_failed(proxy, endpoint, deadline, hop)
            reason = str(error) or "connection closed"
            raise _failure(endpoint, hop, f"SSH negotiation with {where} failed: {reason}",
                           f"SSH negotiation failed: {reason}") from None  # fmt: skip
        if not transport.is_active() or transport.host_key is None:
            reason = f"SSH key exchange did not finish within {timeout:g}s (host hung?)"
            raise _failure(endpoint, hop, reason.replace("exchange", f"exchange with {where}", 1), reason)
        try:
            self._verify_host_key(endpoint, transport, expected)
            transport.auth_timeout = _remaining(deadline)
            self._authenticate(endpoint, transport, password)
        except Unreachable as error:
            raise (Unreachable(f"jump host {endpoint.label}: {error}") if hop else error) from None
        return transport

    def _dial(self, endpoint: Endpoint, deadline: float, timeout: float, hop: bool) -> socket.socket:
        where = endpoint.where
        try:
            sock = socket.create_connection((endpoint.address, endpoint.port), timeout=_remaining(deadline))
        except TimeoutError:
            raise _failure(endpoint, hop, f"connect to {where} timed out after {timeout:g}s",
                           f"connect timed out after {timeout:g}s") from None  # fmt: skip
        except ConnectionRefusedError:
            raise _failure(endpoint, hop, f"connection to {where} refused", "connection refused") from None
        except socket.gaierror as error:
            reason = f"cannot resolve {endpoint.address}: {error.strerror or error}"
            hint = f"not a Host of {endpoint.config}" if endpoint.name == endpoint.address else endpoint.config
            fix = "ansible_host" if not hop else "ProxyJump"
            raise _failure(endpoint, hop, f"{reason} ({hint}; check {fix} or add a Host entry)",
                           f"{reason} ({hint}; check {fix} or add a Host entry)") from None  # fmt: skip
        except OSError as error:
            reason = error.strerror or str(error)
            raise _failure(endpoint, hop, f"cannot connect to {where}: {reason}", reason) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _forward(
        self, carrier: paramiko.Transport, endpoint: Endpoint, deadline: float, timeout: float, hop: bool
    ) -> paramiko.Channel:
        """A ``direct-tcpip`` channel from the jump host ``endpoint.via`` to ``endpoint``."""
        via = endpoint.via
        assert via is not None
        prefix = f"jump host {via.label}"
        try:
            return carrier.open_channel(
                "direct-tcpip", (endpoint.address, endpoint.port), ("127.0.0.1", 0), timeout=_remaining(deadline)
            )
        except paramiko.ChannelException as error:
            reason = f"{prefix} could not connect to {endpoint.where}: {error.text or error.code}"
            fix = "is it up, and may the jump host reach it (AllowTcpForwarding)?"
        except paramiko.SSHException as error:
            reason = f"{prefix} did not open a connection to {endpoint.where} within {timeout:g}s ({error})"
            fix = "is the jump host hung?"
        except (EOFError, OSError) as error:
            reason = f"{prefix} dropped the connection: {error or type(error).__name__}"
            fix = "check the jump host"
        if hop:
            raise Unreachable(f"cannot reach jump host {endpoint.label}: {reason} ({fix})")
        raise Unreachable(f"{reason} ({fix})")

    def _proxy_failed(self, proxy: _ProxyCommand | None, endpoint: Endpoint, deadline: float, hop: bool) -> None:
        """Raise the ProxyCommand's exit status and first stderr line when it has ended."""
        if proxy is None:
            return
        ended = proxy.failure(min(PROXY_EXIT_WAIT, _remaining(deadline)))
        if ended is not None:
            message = f"ProxyCommand of {endpoint.name} ({proxy.command}) {ended}"
            raise _failure(endpoint, hop, message, message)

    def _verify_host_key(self, endpoint: Endpoint, transport: paramiko.Transport, expected: Any) -> None:
        key = transport.get_remote_server_key()
        lookup_name = endpoint.known_hosts_name
        source = ", ".join(endpoint.known_hosts) or "known_hosts"
        if expected and key.get_name() in expected:
            if expected[key.get_name()] != key:
                raise Unreachable(
                    f"host key of {lookup_name} does not match {source} "
                    "(changed key or man-in-the-middle; fix known_hosts after checking)"
                )
            log.debug("host key of %s: %s %s, as in %s", lookup_name, key.get_name(), key.fingerprint, source)
            return
        if endpoint.strict:
            raise Unreachable(
                f"host key of {lookup_name} is not in {source} "
                "(add it with ssh-keyscan, or set StrictHostKeyChecking=no in ansible_ssh_common_args or ssh_config)"
            )

    def _authenticate(self, endpoint: Endpoint, transport: paramiko.Transport, password: str | None) -> None:
        """Keys (each with its certificates first), then ssh-agent's unless IdentitiesOnly, then the password.

        With a password and no identity configured, only the password is tried.
        """
        user = endpoint.user
        attempt = _Attempt(transport, user)
        if endpoint.publickey and not (password is not None and not endpoint.identities):
            identities = endpoint.identities or _default_identities()
            for identity in identities:
                try:
                    offers = self.keys.offers(identity.path, endpoint.certificates)
                except Unreachable as error:
                    if identity.required:
                        raise
                    if os.path.exists(identity.path):
                        attempt.notes.append(str(error))
                    continue
                for key, label in offers:
                    if attempt.publickey(key, label):
                        return
            if not endpoint.identities_only and attempt.accepts("publickey"):
                agent = paramiko.Agent()
                try:
                    for agent_key in agent.get_keys():
                        if attempt.publickey(agent_key, "ssh-agent keys"):
                            return
                finally:
                    agent.close()
        if password is not None and attempt.password(password, endpoint.password, endpoint.keyboard_interactive):
            return
        tried = ", ".join(dict.fromkeys(attempt.tried)) or "no key found"
        notes = "".join(f"; {note}" for note in attempt.notes)
        if attempt.allowed is not None and not attempt.accepts("publickey") and password is None:
            fix = f"it accepts only {', '.join(attempt.allowed)}: set ansible_password"
        elif password is not None:
            fix = "check ansible_password, or set ansible_ssh_private_key_file"
        else:
            fix = "set ansible_ssh_private_key_file"
        raise Unreachable(f"authentication as {user} failed (tried {tried}{notes}; {fix})")


class _Attempt:
    """The authentication attempts on one transport: what was tried, and the methods the server still allows."""

    def __init__(self, transport: paramiko.Transport, user: str) -> None:
        self.transport = transport
        self.user = user
        self.tried: list[str] = []
        self.notes: list[str] = []
        self.allowed: list[str] | None = None

    def accepts(self, method: str) -> bool:
        return self.allowed is None or method in self.allowed

    def publickey(self, key: paramiko.PKey, label: str) -> bool:
        if not self.accepts("publickey"):
            return False
        return self._try(lambda: self.transport.auth_publickey(self.user, key), label)

    def password(self, password: str, plain: bool, interactive: bool) -> bool:
        """Log in with ``password``: the password method, else keyboard-interactive answering its prompts."""
        if plain and self.accepts("password"):
            if self._try(lambda: self.transport.auth_password(self.user, password, fallback=False), "password"):
                return True
            if self.accepts("password"):
                return False  # the server took the method and refused the password: a prompt would too
        if interactive and self.accepts("keyboard-interactive"):

            def answer(title: str, instructions: str, prompts: list[tuple[str, bool]]) -> list[str]:
                # Only a prompt that asks for the password gets it; anything else (an OTP) gets nothing.
                return [password if "password" in prompt.lower() else "" for prompt, _ in prompts]

            return self._try(lambda: self.transport.auth_interactive(self.user, answer), "keyboard-interactive")
        return False

    def _try(self, call: Callable[[], Any], label: str) -> bool:
        try:
            call()
        except paramiko.BadAuthenticationType as error:
            self.allowed = list(error.allowed_types)
            return False
        except paramiko.AuthenticationException:
            self.tried.append(label)
            return False
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise Unreachable(f"authentication as {self.user} failed: {error}") from None
        if self.transport.is_authenticated():
            log.debug("logged in as %s with %s", self.user, label)
            return True
        return False


def _default_identities() -> tuple[Identity, ...]:
    ssh_dir = Path.home() / ".ssh"
    return tuple(Identity(str(ssh_dir / name)) for name in sshconfig.DEFAULT_KEY_NAMES if (ssh_dir / name).exists())


def _remaining(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _failure(endpoint: Endpoint, hop: bool, message: str, reason: str) -> Unreachable:
    """``message`` for the host itself; for a jump host, ``reason`` after the jump host's name and address."""
    return Unreachable(f"cannot reach jump host {endpoint.label}: {reason}" if hop else message)
