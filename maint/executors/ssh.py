"""The native SSH executor: paramiko over a TCP_NODELAY socket, one connection per host.

Why not paramiko's SSHClient: it adds per-connection work maint does not need (agent and key
discovery on every connect, a policy object, known_hosts reloading), and its sockets do not set
TCP_NODELAY, which costs ~40 ms per command round trip (Nagle against delayed ACKs).

Where a connection goes and how it logs in (ssh_config, ProxyJump, ProxyCommand, keys, certificates,
password) is resolved by :mod:`maint.executors.sshconfig`; this module opens it: a jump host's transport
carries the next one over a ``direct-tcpip`` channel, a ProxyCommand over a socket pair.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import shlex
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import paramiko
from paramiko.pkey import PublicBlob

from maint.executors import BecomeFailed, CommandResult, HostHung, Unreachable, sshconfig
from maint.executors.sshconfig import Endpoint, Identity

if TYPE_CHECKING:
    from maint.become import Become
    from maint.inventory import Host

# Output kept per stream for parsing; beyond this the oldest bytes are dropped.
MAX_CAPTURE = 1 << 20
# After a command times out, how long an open-channel request may take before the host counts as hung.
PROBE_TIMEOUT = 5.0
# After a step's time is up (or the run is stopped), how long its processes get to go after SIGTERM,
# and then after SIGKILL, before the session counts as lost (the dropped session ends them too).
TERM_GRACE = 2.0
KILL_GRACE = 2.0
# Sent once when a shell session starts. sshd makes the session's shell the leader of a process group
# that every step's processes belong to (a step that wants to outlive the session must leave it, as a
# daemon does): SIGTERM to that group ends a step and everything it started, while the session's
# shell ignores SIGTERM and lives on for the next step. fd 3 keeps the session's stdin for the
# watchdogs. (A process group per step would need setsid and a new shell per step: 1.5 ms of the
# host's CPU per command, where this costs two forks.)
SESSION_SETUP = "exec 3<&0; trap '' TERM\n"
# Beside each step a watchdog waits on the session's stdin: a line from maint (the step's time is up,
# or the run is stopped) sends SIGTERM to the group, a second line SIGKILL (the session's shell goes
# too; the next step gets a new session); end of file (the connection dropped: maint was killed, the
# network went) sends both. The whole step is one { ... } group, so the shell has read all of it before
# the watchdog starts reading the same stdin. The step's subshell sets SIGTERM back to its default (a
# subshell keeps an ignored signal ignored); the watchdog keeps ignoring it, to live on to the SIGKILL.
WATCHDOG = (
    "{ IFS= read -r maint_line; kill -TERM -$$ || kill -TERM $maint_pid; IFS= read -r maint_line; "
    "kill -KILL -$$ || kill -KILL $maint_pid; } <&3 >/dev/null 2>&1 &\n"
)
# An escalated session on a pseudo-terminal (su, which reads passwords from a terminal only, and sudo with
# requiretty): the terminal is made transparent first (no echo, no line editing, no signals, no output
# translation), and a step's stdout and stderr go to files of a private directory, sent after it ends, the
# way the session without a terminal sends them on its two streams (a terminal has one).
TERMINAL_SETUP = "stty raw -echo -iexten 2>/dev/null; exec "
TERMINAL_SESSION_SETUP = (
    "exec 3<&0; trap '' TERM; maint_d=$(mktemp -d) || exit 1; trap 'rm -rf \"$maint_d\"' EXIT; "
    "trap 'rm -rf \"$maint_d\"; exit 129' HUP\n"
)
NO_PASSWORD_HINT = "set ansible_become_password, as env:NAME or file:PATH, or give -K"
# Printed with the escalation session's process id before sudo replaces that shell.
GROUP_MARK = "maint-group="
# How long a ProxyCommand that closed its end gets to exit before its failure is reported without its status.
PROXY_EXIT_WAIT = 1.0

# paramiko logs a traceback from its transport thread for every failed handshake; maint reports
# the failure as the host's result instead, so keep paramiko's own records off the terminal.
_paramiko_log = logging.getLogger("paramiko")
_paramiko_log.addHandler(logging.NullHandler())
_paramiko_log.propagate = False


class Watchdog:
    """One thread that closes channels whose deadline has passed, checked every ``TICK`` seconds.

    paramiko's ``exec_command`` and ``recv_exit_status`` wait without a timeout; closing the
    channel is what wakes them when a host freezes mid-command. Registering is a dict insert, so
    the common case (a command that finishes in time) costs no thread switch.
    """

    TICK = 0.25

    def __init__(self) -> None:
        self._deadlines: dict[int, tuple[float, paramiko.Channel]] = {}
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, channel: paramiko.Channel, deadline: float) -> int:
        """Close ``channel`` at ``deadline`` (time.monotonic) unless :meth:`release` comes first."""
        token = next(self._counter)
        with self._lock:
            self._deadlines[token] = (deadline, channel)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="maint-ssh-watchdog", daemon=True)
                self._thread.start()
        return token

    def release(self, token: int) -> None:
        """Stop watching the channel registered as ``token``."""
        with self._lock:
            self._deadlines.pop(token, None)

    def _loop(self) -> None:
        # The thread ends once nothing is watched (the next watch starts another), so that a process that
        # runs many runs (a test suite, a long-lived service) keeps no idle watchdog per executor it made.
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                expired = [token for token, (deadline, _) in self._deadlines.items() if deadline <= now]
                channels = [self._deadlines.pop(token)[1] for token in expired]
                idle = not self._deadlines
                if idle:
                    self._thread = None
            for channel in channels:
                channel.close()
            if idle:
                return


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


class _Closable(Protocol):
    def close(self) -> None: ...


class SSHConnection:
    """An authenticated paramiko transport to one host.

    By default every command runs in one long-lived ``/bin/sh`` session on the host (a shell
    session): each command is sent to the shell's stdin, wrapped as ``( eval 'COMMAND' ) </dev/null``
    and followed by end markers on stdout (with the exit code) and stderr. Compared with one SSH
    channel per command this saves, per command, a channel open/close round trip and sshd's session
    set-up (a fork and a login-shell start on the host), which is most of the cost of a short check.
    A syntax error, ``exit`` or ``cd`` in one command stays inside that command's subshell. With
    ``shell_session=False`` each command gets its own channel, run by the login shell.
    """

    def __init__(
        self, transport: paramiko.Transport, host_name: str, watchdog: Watchdog, shell_session: bool = True,
        tunnel: Sequence[_Closable] = (),
    ) -> None:  # fmt: skip
        self.transport = transport
        self.host_name = host_name
        # What carries the transport (jump hosts' transports, a ProxyCommand), closed after it, last first.
        self.tunnel = tuple(tunnel)
        self._watchdog = watchdog
        self._shell_session = shell_session
        # The shell sessions by escalation (None: the login user's), those on a terminal, those that had to
        # be, and why an escalation failed (not tried again on this connection: a wrong password is tried
        # once, not once a step).
        self._sessions: dict[tuple[str, ...] | None, paramiko.Channel] = {}
        self._on_terminal: set[tuple[str, ...]] = set()
        self._needs_terminal: set[tuple[str, ...]] = set()
        self._become_failed: dict[tuple[str, ...], str] = {}
        # Unguessable per connection, so no command output can forge the end of a command.
        marker = f"__maint_end_{secrets.token_hex(8)}_"
        self._marker = marker
        self._stdout_end = b"\n" + marker.encode() + b"rc="
        self._stderr_end = b"\n" + marker.encode() + b"\n"

    def run(
        self, command: str, timeout: float, stdin: str | None = None, cancel: threading.Event | None = None,
        become: Become | None = None,
    ) -> CommandResult:
        """Run ``command`` with ``stdin`` (text, default empty), as the login user or in the escalated shell
        of ``become``; a timeout sets ``timed_out``, ``cancel`` ``cancelled``, and both end the command's
        process group on the host (``ended`` says how).

        Raises HostHung when the connection is dead or the host no longer answers, BecomeFailed when the
        escalation fails (within its own timeout).
        """
        started = time.monotonic()
        deadline = started + timeout
        stdout = bytearray()
        stderr = bytearray()
        ended = ""
        if self._shell_session or become is not None:
            exit_code, ended = self._run_in_shell(command, deadline, stdout, stderr, stdin, cancel, become)
        else:
            exit_code = self._run_in_channel(command, deadline, stdout, stderr, stdin)
        cancelled = cancel is not None and cancel.is_set() and bool(ended)
        timed_out = exit_code is None and not cancelled and time.monotonic() >= deadline
        result = CommandResult(
            command=command,
            exit_code=exit_code,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=stderr.decode("utf-8", "replace"),
            duration=time.monotonic() - started,
            timed_out=timed_out,
            cancelled=cancelled,
            ended=ended,
        )
        if exit_code is None and not self.alive():
            what = f"timed out after {timeout:g}s" if timed_out else "lost its connection"
            raise HostHung(f"host stopped responding: command {what}")
        return result

    def _open_channel(self, deadline: float) -> paramiko.Channel:
        try:
            return self.transport.open_session(timeout=max(0.1, min(deadline - time.monotonic(), PROBE_TIMEOUT * 2)))
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise HostHung(f"could not open a channel: {error or type(error).__name__}") from None

    def _start_shell(self, deadline: float) -> paramiko.Channel:
        channel = self._open_channel(deadline)
        token = self._watchdog.watch(channel, deadline)
        try:
            channel.exec_command("exec /bin/sh -s")
            channel.sendall(SESSION_SETUP.encode())
        except (paramiko.SSHException, EOFError, OSError) as error:
            channel.close()
            raise HostHung(f"could not start a shell: {error or type(error).__name__}") from None
        finally:
            self._watchdog.release(token)
        channel.settimeout(0.2)
        return channel

    def _start_escalated(self, become: Become, cancel: threading.Event | None = None) -> paramiko.Channel:
        """A shell session as ``become``'s user: authenticated within ``become.timeout``, or BecomeFailed.

        sudo is first asked without a terminal; when it ends before asking anything or saying it succeeded
        (``requiretty``, or a message of its own), once more on one, and the host's sessions of that
        escalation stay on a terminal.
        """
        key = become.session
        if key in self._become_failed:
            raise BecomeFailed(self._become_failed[key])
        terminal = become.needs_terminal or key in self._needs_terminal
        try:
            try:
                channel = self._escalate(become, terminal, cancel)
            except _EndedUnasked:
                if terminal:
                    raise
                channel = self._escalate(become, True, cancel)
                self._needs_terminal.add(key)
                terminal = True
        except BecomeFailed as failure:
            self._become_failed[key] = str(failure)
            raise BecomeFailed(str(failure)) from None
        if terminal:
            self._on_terminal.add(key)
        else:
            self._on_terminal.discard(key)
        return channel

    def _escalate(self, become: Become, terminal: bool, cancel: threading.Event | None = None) -> paramiko.Channel:
        """Start ``become``'s command on a new channel and answer its password prompt; the channel once the
        success token has come on both streams (on the terminal: twice). Raises _EscalationStopped when
        ``cancel`` is set first."""
        deadline = time.monotonic() + become.timeout
        what = f"{become.method} to {become.user}"
        nonce = secrets.token_hex(8)
        token = f"maint-become-{nonce}".encode()
        # sudo's -p prompt: maint's own words, so that it is recognised in any language; no % (sudo's escapes).
        prompt = f"[maint become {nonce}] password: "
        command = become.command(token.decode(), prompt, terminal)
        channel = self._open_channel(deadline)
        # Until the escalated shell runs, both streams are read as one (sudo -S prompts on stderr): waiting
        # on one stream while the other has news would cost a poll interval per exchange.
        channel.set_combine_stderr(True)
        try:
            if terminal:
                channel.get_pty(term="dumb", width=500, height=24)
                channel.exec_command(TERMINAL_SETUP + command)
            else:
                # The session's process group (sudo leads it once exec'd): what is ended when sudo fails to
                # answer in time. On a terminal, closing the channel hangs the terminal up, which does that.
                channel.exec_command(f"echo {GROUP_MARK}$$; exec {command}")
        except (paramiko.SSHException, EOFError, OSError) as error:
            channel.close()
            raise HostHung(f"could not start {what}: {error or type(error).__name__}") from None
        channel.settimeout(0.2)
        out = bytearray()
        answered = 0  # where the output after the last answered prompt starts
        prompts = 0
        line = token + b"\n"
        su_prompt = become.prompt_pattern() if become.method == "su" else None
        try:
            while True:
                if bytes(out).replace(b"\r", b"").count(line) >= 2:
                    # The token came on stdout and then on stderr: whatever sudo wrote on stderr came before.
                    channel.set_combine_stderr(False)
                    return channel
                seen = bytes(out[answered:])
                asked = (
                    prompt.encode() in seen if su_prompt is None
                    else su_prompt.search(seen.decode("utf-8", "replace").replace("\r", "").rstrip("\n")) is not None
                )  # fmt: skip
                if asked:
                    prompts += 1
                    if become.password is None:
                        raise BecomeFailed(f"{what} asks for a password and none is set ({NO_PASSWORD_HINT})")
                    if prompts > 1:
                        raise BecomeFailed(f"{what}: the become password was not accepted (ansible_become_password)")
                    answered = len(out)
                    channel.sendall(become.password.encode() + b"\n")
                    continue
                try:
                    chunk = channel.recv(65536)
                except TimeoutError:
                    chunk = None
                if chunk:
                    _append(out, chunk)
                elif chunk is not None or channel.exit_status_ready():
                    code = channel.recv_exit_status()
                    said = _first_line(re.sub(GROUP_MARK.encode() + rb"\d+\n", b"", out), prompt.encode(), token)
                    message = f"{what} failed (exit {code}){': ' + said if said else ''}"
                    if become.password is None and become.method != "doas":
                        message += f" ({NO_PASSWORD_HINT})"
                    raise _EndedUnasked(message) if prompts == 0 and become.method == "sudo" else BecomeFailed(message)
                if cancel is not None and cancel.is_set():
                    raise _EscalationStopped
                if time.monotonic() >= deadline:
                    state = "after the password" if prompts else "(no password prompt, no sign of success)"
                    raise BecomeFailed(f"{what}: no answer within {become.timeout:g}s {state}")
        except BaseException:
            # Its state is unknown: the session is never reused, and what it started is ended.
            group = re.search(GROUP_MARK.encode() + rb"(\d+)\n", out) if not terminal else None
            if group is not None and not channel.exit_status_ready():
                self._end_group(int(group.group(1)))
            channel.close()
            raise

    def _end_group(self, group: int) -> None:
        """SIGTERM, then SIGKILL after TERM_GRACE, to process group ``group`` of the login user, sent from a
        session of its own (without waiting for it)."""
        try:
            channel = self.transport.open_session(timeout=PROBE_TIMEOUT)
            channel.exec_command(
                f"kill -TERM -{group} 2>/dev/null; "
                f"(sleep {TERM_GRACE:g}; kill -KILL -{group}) </dev/null >/dev/null 2>&1 &"
            )
            channel.close()
        except (paramiko.SSHException, EOFError, OSError):
            pass  # the connection is going: closing it ends the session's processes that read or write it

    def _drop_shell(self, key: tuple[str, ...] | None = None) -> None:
        shell = self._sessions.pop(key, None)
        if shell is not None:
            shell.close()

    def _run_in_shell(
        self, command: str, deadline: float, stdout: bytearray, stderr: bytearray, stdin: str | None,
        cancel: threading.Event | None, become: Become | None = None,
    ) -> tuple[int | None, str]:
        """Run ``command`` in the session (of ``become``): (exit code, what was ended). The exit code is None
        when the command did not finish by itself (ended at its deadline or on ``cancel``) or the session
        broke."""
        key = None if become is None else become.session
        shell = self._sessions.get(key)
        if shell is None or shell.closed or shell.exit_status_ready():
            self._drop_shell(key)
            if become is None:
                shell = self._start_shell(deadline)
            else:
                try:
                    shell = self._start_escalated(become, cancel)
                except _EscalationStopped:
                    return None, f"stopped while {become.method} authenticated (its processes ended)"
                shell.sendall((TERMINAL_SESSION_SETUP if key in self._on_terminal else SESSION_SETUP).encode())
            self._sessions[key] = shell
        terminal = key in self._on_terminal
        marker = self._marker
        if stdin is None:
            redirect, body = "</dev/null", ""
        else:
            # A here-document: the data travels on the session's stdin stream, never on a command line.
            delimiter = f"{marker}in"
            if delimiter in stdin:
                raise ValueError("stdin data contains the session marker")
            redirect, body = f"<<'{delimiter}'", f"{stdin.rstrip(chr(10))}\n{delimiter}\n"
        if terminal:
            # One stream: the step's output comes from its files after it ended, stdout's then stderr's.
            redirect += ' >"$maint_d/o" 2>"$maint_d/e"'
            report = (
                f"cat \"$maint_d/o\"; printf '\\n%src=%d,%d\\n' {marker} \"$maint_rc\" \"$$\"; "
                f"cat \"$maint_d/e\"; printf '\\n%s\\n' {marker}; "
            )
        else:
            report = f"printf '\\n%src=%d,%d\\n' {marker} \"$maint_rc\" \"$$\"; printf '\\n%s\\n' {marker} >&2; "
        script = (
            f"{{ ( trap - TERM; eval {shlex.quote(command)}\n) 3<&- {redirect} &\n{body}"
            f"maint_pid=$!\n{WATCHDOG}maint_watch=$!; wait $maint_pid 2>/dev/null; maint_rc=$?; "
            f"kill -KILL $maint_watch 2>/dev/null; wait $maint_watch 2>/dev/null; {report}}}\n"
        )
        ended = ""
        try:
            shell.sendall(script.encode("utf-8"))

            def drain_stderr() -> None:
                # Read stderr while waiting on stdout, so a chatty command cannot fill the window.
                while shell.recv_stderr_ready():
                    _append(stderr, shell.recv_stderr(65536))

            stop = cancel.is_set if cancel is not None else None
            end = _read_until(shell.recv, stdout, self._find_stdout_end, deadline, drain_stderr, stop)
            if end is None and not shell.closed and not shell.eof_received:
                # Time is up, or the run is stopping: the watchdog on the host ends the step's processes.
                sent = ""
                for name, grace in (("SIGTERM", TERM_GRACE), ("SIGKILL", KILL_GRACE)):
                    shell.sendall(b"\n")
                    sent = name
                    end = _read_until(shell.recv, stdout, self._find_stdout_end, time.monotonic() + grace,
                                      drain_stderr)  # fmt: skip
                    if end is not None or shell.closed or shell.eof_received:
                        break
                if end is not None:
                    ended = f"ended the step's processes on the host with {sent} (process group {end[2]})"
                elif sent == "SIGKILL" and (shell.closed or shell.eof_received):
                    # SIGKILL took the session's shell too: no end line, and a new session for the next step.
                    ended = "ended the step's processes and its session on the host with SIGKILL"
            if end is not None:
                if terminal:
                    # What follows the end line is the step's stderr, then stderr's end line.
                    stderr += stdout[stdout.find(b"\n", end[0] + len(self._stdout_end)) + 1 :]
                del stdout[end[0] :]
                receive = shell.recv if terminal else shell.recv_stderr
                stderr_end = _read_until(receive, stderr, self._find_stderr_end, deadline + TERM_GRACE + KILL_GRACE)
                if stderr_end is not None:
                    del stderr[stderr_end[0] :]
                    return (None, ended) if ended else (end[1], "")
        except (paramiko.SSHException, EOFError, OSError):
            pass
        # The session broke or the host does not answer: its state is unknown, the next command gets a new
        # one (closing this one ends whatever the step left running: its watchdog reads end of file).
        self._drop_shell(key)
        return None, ended

    def _find_stdout_end(self, buffer: bytearray, start: int) -> tuple[int, int, int] | None:
        # The end line is "\nMARKERrc=CODE,PID\n" (PID: the step's process group); found with bytes.find,
        # since a regular expression per connection (the marker differs) costs a compilation each.
        index = buffer.find(self._stdout_end, start)
        while index >= 0:
            digits_start = index + len(self._stdout_end)
            newline = buffer.find(b"\n", digits_start)
            if newline < 0:
                return None  # the rest of the line is still on its way
            code, _, pid = bytes(buffer[digits_start:newline]).partition(b",")
            if code.isdigit() and pid.isdigit():
                return index, int(code), int(pid)
            index = buffer.find(self._stdout_end, index + 1)
        return None

    def _find_stderr_end(self, buffer: bytearray, start: int) -> tuple[int, int, int] | None:
        index = buffer.find(self._stderr_end, start)
        return (index, 0, 0) if index >= 0 else None

    def _run_in_channel(
        self, command: str, deadline: float, stdout: bytearray, stderr: bytearray, stdin: str | None
    ) -> int | None:
        channel = self._open_channel(deadline)
        token = self._watchdog.watch(channel, deadline)
        try:
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin.encode("utf-8"))
            # Then end-of-file, as in the shell session's </dev/null or here-document.
            channel.shutdown_write()
            channel.settimeout(0.2)
            while True:
                try:
                    chunk = channel.recv(65536)
                except TimeoutError:
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
            exit_code = channel.recv_exit_status()
        except (paramiko.SSHException, EOFError, OSError):
            exit_code = -1
        finally:
            self._watchdog.release(token)
            channel.close()
        return None if exit_code == -1 else exit_code

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
        """Close the shell sessions, the transport (and its thread), then what carries it: jump hosts, a proxy."""
        for key in list(self._sessions):
            self._drop_shell(key)
        self.transport.close()
        for carrier in reversed(self.tunnel):
            carrier.close()


class _EscalationStopped(Exception):
    """The run was stopped while an escalation was authenticating."""


class _EndedUnasked(BecomeFailed):
    """sudo ended without asking for a password or succeeding: maybe it wants a terminal (requiretty)."""


def _first_line(output: bytes, *hidden: bytes) -> str:
    """The first line of ``output`` that says something, without maint's prompt and token, printable only."""
    for raw in output.replace(b"\r", b"\n").split(b"\n"):
        for word in hidden:
            raw = raw.replace(word, b"")
        text = "".join(character for character in raw.decode("utf-8", "replace") if character.isprintable()).strip()
        if text:
            return text[:200]
    return ""


def _read_until(
    receive: Callable[[int], bytes],
    buffer: bytearray,
    find: Callable[[bytearray, int], tuple[int, int, int] | None],
    deadline: float,
    waiting: Callable[[], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[int, int, int] | None:
    """Receive into ``buffer`` until ``find`` locates the end marker; None on timeout, ``stop()`` or end of
    stream.

    ``receive`` must time out now and then (the channel's timeout), so the deadline and ``stop`` are checked.
    """
    start = 0
    while True:
        found = find(buffer, start)
        if found is not None:
            return found
        try:
            chunk = receive(65536)
        except TimeoutError:
            if waiting is not None:
                waiting()
            if time.monotonic() >= deadline or (stop is not None and stop()):
                return None
            continue
        if not chunk:
            return None
        _append(buffer, chunk)
        # The marker may straddle two chunks; everything before that was searched already.
        start = max(0, len(buffer) - len(chunk) - 128)


def _append(buffer: bytearray, chunk: bytes) -> None:
    buffer += chunk
    if len(buffer) > MAX_CAPTURE:
        del buffer[: len(buffer) - MAX_CAPTURE]


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
        opened: list[_Closable] = []
        try:
            transport = self._open(endpoint, time.monotonic() + timeout, timeout, opened, password, hop=False)
        except BaseException:
            for carrier in reversed(opened):
                carrier.close()
            raise
        shell_session = str(host.vars.get("maint_shell_session", True)).lower() not in ("false", "no", "0", "off")
        return SSHConnection(transport, host.name, self.watchdog, shell_session=shell_session, tunnel=opened[:-1])

    def _open(
        self, endpoint: Endpoint, deadline: float, timeout: float, opened: list[_Closable], password: str | None,
        hop: bool,
    ) -> paramiko.Transport:  # fmt: skip
        """A logged-in transport to ``endpoint``; it, and what carries it, are appended to ``opened``."""
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
        return self.transport.is_authenticated()


def _default_identities() -> tuple[Identity, ...]:
    ssh_dir = Path.home() / ".ssh"
    return tuple(Identity(str(ssh_dir / name)) for name in sshconfig.DEFAULT_KEY_NAMES if (ssh_dir / name).exists())


def _remaining(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _failure(endpoint: Endpoint, hop: bool, message: str, reason: str) -> Unreachable:
    """``message`` for the host itself; for a jump host, ``reason`` after the jump host's name and address."""
    return Unreachable(f"cannot reach jump host {endpoint.label}: {reason}" if hop else message)
