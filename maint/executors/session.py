"""A host's shell sessions on one SSH connection: each command runs in a long-lived ``/bin/sh`` (the login
user's, or an escalated one of :mod:`maint.executors.escalation`), framed by end markers, with a watchdog on
the host that ends the command's process group at its deadline or when the run stops.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import paramiko

from maint.executors import BecomeFailed, CommandResult, HostHung, escalation

if TYPE_CHECKING:
    from maint.become import Become
    from maint.executors.sshconfig import Endpoint

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
# requiretty): a step's stdout and stderr go to files of a private directory, sent after it ends, the way
# the session without a terminal sends them on its two streams (a terminal has one).
TERMINAL_SESSION_SETUP = (
    "exec 3<&0; trap '' TERM; maint_d=$(mktemp -d) || exit 1; trap 'rm -rf \"$maint_d\"' EXIT; "
    "trap 'rm -rf \"$maint_d\"; exit 129' HUP\n"
)


log = logging.getLogger("maint.ssh")


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


class Closable(Protocol):
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
        tunnel: Sequence[Closable] = (), endpoint: Endpoint | None = None,
    ) -> None:  # fmt: skip
        self.transport = transport
        self.host_name = host_name
        # Where the transport goes and as whom (a Python task's Fabric Connection is named after it).
        self.endpoint = endpoint
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
                channel = escalation.escalate(self.transport, self._open_channel, become, terminal, cancel)
            except escalation.EndedUnasked:
                if terminal:
                    raise
                channel = escalation.escalate(self.transport, self._open_channel, become, True, cancel)
                self._needs_terminal.add(key)
                terminal = True
        except BecomeFailed as failure:
            self._become_failed[key] = str(failure)
            raise BecomeFailed(str(failure)) from None
        log.debug("%s: %s to %s: escalated shell started%s", self.host_name, become.method, become.user,
                  " on a terminal" if terminal else "")  # fmt: skip
        if terminal:
            self._on_terminal.add(key)
        else:
            self._on_terminal.discard(key)
        return channel

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
                except escalation.EscalationStopped:
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
                    append(stderr, shell.recv_stderr(65536))

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
                        append(stderr, channel.recv_stderr(65536))
                    if time.monotonic() >= deadline or channel.closed:
                        break
                    continue
                if not chunk:
                    break
                append(stdout, chunk)
            while True:
                try:
                    chunk = channel.recv_stderr(65536)
                except TimeoutError:
                    if time.monotonic() >= deadline or channel.closed:
                        break
                    continue
                if not chunk:
                    break
                append(stderr, chunk)
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
        append(buffer, chunk)
        # The marker may straddle two chunks; everything before that was searched already.
        start = max(0, len(buffer) - len(chunk) - 128)


def append(buffer: bytearray, chunk: bytes) -> None:
    buffer += chunk
    if len(buffer) > MAX_CAPTURE:
        del buffer[: len(buffer) - MAX_CAPTURE]
