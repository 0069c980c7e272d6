"""Python tasks and Fabric tasks on a host's own SSH connection: a recording ``fabric.Connection`` over the
paramiko transport maint already opened, and the worker thread a task runs in under the step's timeout.

The :class:`TaskConnection` is a ``fabric.Connection`` whose client holds maint's authenticated transport:
it is connected from the start, so Fabric never dials, authenticates or opens a second TCP connection, and
its ``close`` closes what the task opened (channels, an SFTP session) but never the transport, which the
host's next steps use. Each ``run``, ``sudo``, ``put`` and ``get`` is a new channel on that transport and is
recorded (command, exit code, duration, the end of its output) for the step's result. ``sudo`` answers sudo's
prompt with the become password from Fabric's configuration (``sudo.password``: sent on the command's stdin
when sudo asks, never on a command line).
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import fabric
import invoke
import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST
from paramiko.message import Message

from maint.executors import CommandResult
from maint.secrets import redact_command
from maint.tasks import error_line

if TYPE_CHECKING:
    from maint.become import Become

# How much of each call's output the step's record keeps, and of a task's traceback.
CALL_LINES = 10
CALL_CHARS = 1500
TRACEBACK_LINES = 15
# What the record of a whole task keeps (its calls one after another; the most recent ones win).
RECORD_LINES = 200
RECORD_CHARS = 12000
# After a task's time is up and its channels are closed, how long its thread gets to return before it is
# abandoned (a task stuck in pure Python cannot be stopped from outside its thread).
ABANDON_GRACE = 2.0
# The attribute of an UnexpectedExit that holds its command as recorded.
COMMAND_ATTRIBUTE = "maint_command"
# Each command a task runs first says, on its stderr (stdout on a terminal), the process group sshd made it
# the leader of; maint takes that line out of the stream and, when the step is ended, signals the group from
# a channel of its own: closing a channel does not end the command in it.
GROUP_MARK = b"maint-task-group="
# The options of run and sudo a call may give and still run in the host's shell session; any other (pty,
# watchers, streams, asynchronous, ...) takes Fabric's own way: a channel of its own.
SESSION_OPTIONS = frozenset({"warn", "hide", "echo", "env", "timeout", "in_stream"})
NO_CONNECTION = "python steps need an SSH connection (ansible_connection=ssh); this host has none"


class TaskStopped(Exception):
    """The step's time is up or the run is stopping: the task's connection takes no more calls."""


class UnsupportedBecome(Exception):
    """``c.sudo`` on a host whose become method is not sudo."""


@dataclass(frozen=True)
class Call:
    """One ``run``, ``sudo``, ``put`` or ``get`` a task made: as shown, its exit code (None: it did not finish
    or is a transfer that failed), seconds, and the end of its output."""

    shown: str
    exit_code: int | None
    duration: float
    output: str = ""
    error: str = ""

    def __str__(self) -> str:
        status = f"exit {self.exit_code}" if self.exit_code is not None else (self.error or "did not finish")
        text = f"$ {self.shown}\n[{status}, {self.duration:.2f}s]"
        return f"{text}\n{self.output}" if self.output else text


@dataclass(frozen=True)
class TaskRecord(CommandResult):
    """A task's result as a command result: ``command`` is its calls one per line, ``stdout`` each call with
    its exit code, duration and output end, then the task's traceback end when it raised."""

    calls: tuple[Call, ...] = field(default=(), compare=False)

    def tail(self, lines: int = RECORD_LINES, chars: int = RECORD_CHARS) -> str:
        """The calls and traceback, bounded to the most recent ``lines`` lines and ``chars`` characters."""
        return super().tail(max(lines, RECORD_LINES), max(chars, RECORD_CHARS))


def bounded(text: str, lines: int = CALL_LINES, chars: int = CALL_CHARS) -> str:
    """The last ``lines`` lines of ``text``, at most ``chars`` characters."""
    kept = "\n".join(text.rstrip("\n").splitlines()[-lines:])
    return kept[-chars:]


class TaskConnection(fabric.Connection):  # type: ignore[misc]
    """A ``fabric.Connection`` over an open, authenticated paramiko transport that records every call.

    ``become`` gives ``sudo`` its user and password (Fabric's ``sudo.user``/``sudo.password``); None lets
    sudo run as root without a password. Calls after :meth:`stop` raise :class:`TaskStopped`.
    """

    _sftp: paramiko.SFTPClient | None

    def __init__(
        self, transport: paramiko.Transport, host: str, user: str, port: int, become: Become | None = None,
        connect_timeout: float | None = None, session: Any = None, deadline: float | None = None,
    ) -> None:  # fmt: skip
        sudo: dict[str, Any] = {}
        if become is not None and become.method == "sudo":
            sudo = {"user": become.user, "password": become.password}
        overrides = {
            # Output is recorded, never printed (maint's stdout may be a JSON document), and maint's own stdin
            # is not the host's business.
            "run": {"hide": True, "echo": False, "in_stream": False},
            "sudo": sudo,
            "load_ssh_configs": False,
        }
        # lazy: no Fabric or Invoke configuration files and no ssh_config of Fabric's own: where the host is and
        # how to log in was settled by maint's executor, which opened the transport.
        config = fabric.Config(overrides=overrides, lazy=True)
        super().__init__(host=host, user=user, port=port, config=config, gateway=False, forward_agent=False,
                         connect_timeout=int(connect_timeout) if connect_timeout else None)  # fmt: skip
        client = paramiko.SSHClient()
        client._transport = transport  # type: ignore[attr-defined]  # what SSHClient.connect would have set
        self.client = client
        self.transport = transport
        # An Invoke Context turns setting an attribute it does not have into a configuration change: new
        # attributes are made with _set.
        self._set(
            calls=[], _channels=[], _lock=threading.Lock(), _stopped=False, _groups={},
            _become_method=become.method if become is not None else "sudo",
            # maint's SSHConnection of the host, whose shell sessions (the login user's, the escalated one) run a
            # plain run or sudo as native steps run their commands: no channel and no sshd session per command.
            _session=session, _become=become, _deadline=deadline, _halt=threading.Event(),
            _in_session=threading.Lock(),
        )  # fmt: skip

    # Channels: every one the task opens is tracked, so that the step's end can close them.

    def create_session(self) -> paramiko.Channel:
        """A new session channel on the host's transport (what each ``run`` and ``sudo`` runs in), whose command
        tells maint its process group (:data:`GROUP_MARK`) before it starts."""
        self._check_running()
        channel = self.transport.open_session()
        _GroupReporting(channel, self._groups)
        self._track(channel)
        return channel

    def sftp(self) -> paramiko.SFTPClient:
        """The task's SFTP session on the host's transport (one per task, as Fabric keeps one per connection)."""
        self._check_running()
        if self._sftp is None:
            sftp = paramiko.SFTPClient.from_transport(self.transport)
            if sftp is None:
                raise paramiko.SSHException("the host refused an SFTP session")
            channel = sftp.get_channel()
            if channel is not None:
                self._track(channel)
            self._sftp = sftp
        return self._sftp

    def open(self) -> None:
        """Nothing to do: the connection is open from the start (maint's transport); raises when it is not."""
        if not self.transport.is_active():
            raise paramiko.SSHException("the host's SSH connection is closed")

    def close(self) -> None:
        """Close the SFTP session and the channels the task opened; the host's transport stays open."""
        with self._lock:
            channels = list(self._channels)
            self._channels.clear()
        sftp, self._sftp = self._sftp, None
        if sftp is not None:
            sftp.close()
        for channel in channels:
            channel.close()

    def stop(self) -> int:
        """Refuse further calls, end the command of each open channel (SIGTERM to its process group, SIGKILL
        after a grace, from a channel of maint's own; the SSH ``signal`` request too, for a server that honours
        it) and close them all (a blocked call returns); the number of channels that were still open."""
        from maint.executors.escalation import end_group
        from maint.executors.session import KILL_GRACE, TERM_GRACE

        self._set(_stopped=True)
        self._halt.set()  # a command in the host's session: its process group is ended there
        # Wait for it to hand the session back (ended within the session's own graces), so that the host's next
        # step never shares the session with a task that is going.
        if self._in_session.acquire(timeout=TERM_GRACE + KILL_GRACE + 1):
            self._in_session.release()
        with self._lock:
            still_open = [channel for channel in self._channels if not channel.closed]
        for channel in still_open:
            group = self._groups.get(channel.get_id())
            if group is not None:
                end_group(self.transport, group)
            _signal(channel, "TERM")
        self.close()
        return len(still_open)

    # Recorded calls.

    def run(self, command: str, **kwargs: Any) -> Any:
        """Fabric's ``run``, recorded; its output is captured, not printed. A plain call (no terminal, watchers,
        stdin or streams of its own) runs in the host's shell session, as a native step's command does."""
        if self._session is not None and _plain(kwargs):
            return self._recorded(command, lambda: self._in_host_session(command, kwargs, None))
        call = super().run
        return self._recorded(command, lambda: call(command, **_quiet(kwargs)))

    def sudo(self, command: str, **kwargs: Any) -> Any:
        """Fabric's ``sudo`` with the host's become user and password, recorded as ``sudo [-u USER] COMMAND``."""
        user = kwargs.get("user") or self.config.sudo.user
        shown = f"sudo -u {user} {command}" if user and user != "root" else f"sudo {command}"
        if self._session is not None and self._become is not None and _plain(kwargs, "user"):
            # The host's escalated shell: whatever its method (sudo, su, doas), as for -b.
            become = self._become if not user or user == self._become.user else replace(self._become, user=user)
            options = {key: value for key, value in kwargs.items() if key != "user"}
            return self._recorded(shown, lambda: self._in_host_session(command, options, become))
        if self._become_method != "sudo":
            method = self._become_method
            raise UnsupportedBecome(f"c.sudo: this host becomes another user with {method} (ansible_become_method): "
                                    "a c.sudo with a terminal, watchers or streams of its own needs sudo")  # fmt: skip
        call = super().sudo
        return self._recorded(shown, lambda: call(command, **_quiet(kwargs)))

    def _in_host_session(self, command: str, options: dict[str, Any], become: Become | None) -> Any:
        """Run ``command`` (with the ``cd``/``prefix`` of the task's context) in the host's shell session (the
        escalated one of ``become``), within the step's deadline and the call's own ``timeout``: a Fabric
        Result, or UnexpectedExit / CommandTimedOut as Fabric raises them (unless ``warn``)."""
        from fabric.runners import Result

        environment = options.get("env") or {}
        exports = "".join(f"export {name}={shlex.quote(str(value))}; " for name, value in environment.items())
        full = exports + self._prefix_commands(command)
        left = (self._deadline - time.monotonic()) if self._deadline is not None else 3600.0
        limit = min(left, float(options["timeout"])) if options.get("timeout") else left
        with self._in_session:
            self._check_running()
            done = self._session.run(full, max(0.1, limit), cancel=self._halt, become=become)
        if self._stopped:
            raise TaskStopped("the step's time is up or the run is stopping: no more commands")
        result = Result(
            connection=self, command=command, stdout=done.stdout, stderr=done.stderr, encoding="utf-8",
            exited=done.exit_code if done.exit_code is not None else -1, pty=False, hide=("stdout", "stderr"),
        )  # fmt: skip
        if done.timed_out:
            raise invoke.exceptions.CommandTimedOut(result, int(limit) or 1)
        if result.exited != 0 and not options.get("warn"):
            raise invoke.exceptions.UnexpectedExit(result)
        return result

    def local(self, command: str, **kwargs: Any) -> Any:
        """Invoke's ``local`` (a command on the controller), recorded as ``local COMMAND``; output captured."""
        call = super().local
        return self._recorded(f"local {command}", lambda: call(command, **_quiet(kwargs)))

    def put(self, local: Any, remote: Any = None, **kwargs: Any) -> Any:
        """Fabric's ``put``, recorded as ``put LOCAL REMOTE``."""
        call = super().put
        return self._recorded(f"put {_name(local)} {_name(remote)}", lambda: call(local, remote, **kwargs))

    def get(self, remote: Any, local: Any = None, **kwargs: Any) -> Any:
        """Fabric's ``get``, recorded as ``get REMOTE LOCAL``."""
        call = super().get
        return self._recorded(f"get {_name(remote)} {_name(local)}", lambda: call(remote, local, **kwargs))

    def _recorded(self, shown: str, call: Callable[[], Any]) -> Any:
        self._check_running()
        shown = redact_command(shown)
        started = time.monotonic()
        try:
            result = call()
        except invoke.exceptions.UnexpectedExit as error:
            self._add(Call(shown, error.result.exited, time.monotonic() - started, _output(error.result)))
            setattr(error, COMMAND_ATTRIBUTE, shown)
            raise
        except Exception as error:
            partial = getattr(error, "result", None)
            output = _output(partial) if partial is not None else ""
            self._add(Call(shown, None, time.monotonic() - started, output, error=one_line(error)))
            raise
        is_result = isinstance(result, invoke.runners.Result)
        exit_code = getattr(result, "exited", None) if is_result else 0
        output = _output(result) if is_result else ""
        if isinstance(result, invoke.runners.Promise):
            self._add(Call(shown, None, time.monotonic() - started, error="started asynchronously"))
        else:
            self._add(Call(shown, exit_code, time.monotonic() - started, output))
        return result

    def _add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _track(self, channel: paramiko.Channel) -> None:
        with self._lock:
            self._channels[:] = [open_channel for open_channel in self._channels if not open_channel.closed]
            self._channels.append(channel)
        if self._stopped:
            channel.close()

    def _check_running(self) -> None:
        if self._stopped:
            raise TaskStopped("the step's time is up or the run is stopping: no more commands")


class _GroupReporting:
    """Makes ``channel``'s command report its process group first (``exec_command`` wrapped: the login shell
    prints its pid, which sshd made a process group leader, then execs the login shell on the command, so the
    command's own shell and every process it starts are in that group) and takes the report out of the stream
    it comes on (stderr; stdout when the channel has a terminal), into ``groups`` by channel id."""

    def __init__(self, channel: paramiko.Channel, groups: dict[int, int]) -> None:
        self.channel = channel
        self.groups = groups
        self.pending = True
        self.terminal = False
        self.original: dict[str, Callable[..., Any]] = {
            "exec_command": channel.exec_command, "get_pty": channel.get_pty, "recv": channel.recv,
            "recv_stderr": channel.recv_stderr,
        }  # fmt: skip
        replacements: dict[str, Callable[..., Any]] = {
            "exec_command": self._exec_command, "get_pty": self._get_pty,
            "recv": lambda size: self._read(self.original["recv"], size, self.terminal),
            "recv_stderr": lambda size: self._read(self.original["recv_stderr"], size, not self.terminal),
        }  # fmt: skip
        for name, replacement in replacements.items():
            setattr(channel, name, replacement)

    def _get_pty(self, *args: Any, **kwargs: Any) -> Any:
        self.terminal = True
        return self.original["get_pty"](*args, **kwargs)

    def _exec_command(self, command: str) -> Any:
        report = f"echo {GROUP_MARK.decode()}$$" + (" >&2" if not self.terminal else "")
        return self.original["exec_command"](f'{report}; exec "${{SHELL:-/bin/sh}}" -c {shlex.quote(command)}')

    def _read(self, receive: Callable[[int], bytes], size: int, carries_report: bool) -> bytes:
        if not carries_report or not self.pending:
            return receive(size)
        buffer = b""
        while b"\n" not in buffer:
            chunk = receive(size)
            if not chunk:  # the stream ended before the report: nothing to take out
                self.pending = False
                return buffer
            buffer += chunk
        self.pending = False
        line, _, rest = buffer.partition(b"\n")
        if line.rstrip(b"\r").startswith(GROUP_MARK) and line.rstrip(b"\r")[len(GROUP_MARK):].isdigit():
            self.groups[self.channel.get_id()] = int(line.rstrip(b"\r")[len(GROUP_MARK):])
        else:
            rest = buffer  # not the report (it cannot be): pass it on as it came
        return rest if rest else receive(size)


def _plain(options: dict[str, Any], *also: str) -> bool:
    """Whether a call with ``options`` can run in the host's shell session (:data:`SESSION_OPTIONS`, no stdin)."""
    return set(options) <= SESSION_OPTIONS | set(also) and options.get("in_stream", False) is False


def _signal(channel: paramiko.Channel, name: str) -> None:
    """Send the SSH ``signal`` request (RFC 4254 6.9) for ``name`` on ``channel``: sshd (OpenSSH 7.9 and later)
    passes it to the channel's command, which closing the channel alone does not end. paramiko has no method for
    it; a server that does not implement it ignores it (no reply is asked for)."""
    message = Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string("signal")
    message.add_boolean(False)
    message.add_string(name)
    # The channel or the connection may be gone already: closing it is then all that is left.
    with contextlib.suppress(paramiko.SSHException, EOFError, OSError, AttributeError):
        channel.transport._send_user_message(message)  # type: ignore[union-attr]


def _quiet(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments with its output captured and not echoed, whatever the task asked for."""
    return {**kwargs, "hide": True, "echo": False}


def _name(value: Any) -> str:
    if value is None:
        return "."
    return str(getattr(value, "name", None) or (value if isinstance(value, str) else type(value).__name__))


def _output(result: Any) -> str:
    stdout = str(getattr(result, "stdout", "") or "")
    stderr = str(getattr(result, "stderr", "") or "")
    parts = [bounded(stdout)] if stdout.strip() else []
    if stderr.strip():
        parts.append("[stderr]\n" + bounded(stderr))
    return "\n".join(parts)


def one_line(error: BaseException) -> str:
    """``Type: first line of the message`` of an exception (an UnexpectedExit: its command and exit code)."""
    if isinstance(error, invoke.exceptions.UnexpectedExit):
        return unexpected_exit(error)
    return error_line(error)


def unexpected_exit(error: invoke.exceptions.UnexpectedExit) -> str:
    """``COMMAND exited CODE: first stderr line`` of a command that failed."""
    result = error.result
    command = getattr(error, COMMAND_ATTRIBUTE, None) or redact_command(str(result.command))
    detail = next((line.strip() for line in (result.stderr or result.stdout or "").splitlines() if line.strip()), "")
    text = f"`{command}` exited {result.exited}"
    return f"{text}: {detail[:160]}" if detail else text


@dataclass
class Finished:
    """How a task's thread ended: its return value or exception (with the traceback's end), or that it was
    stopped (``timed_out``/``cancelled``) and whether it still ran after the grace period (``abandoned``)."""

    value: Any = None
    error: BaseException | None = None
    traceback: str = ""
    timed_out: bool = False
    cancelled: bool = False
    abandoned: bool = False
    closed_channels: int = 0
    seconds: float = 0.0
    printed: str = ""  # what the task wrote to sys.stdout or sys.stderr (print): kept out of maint's own output


class _TaskOutput:
    """``sys.stdout``/``sys.stderr`` while Python tasks run: what a task's thread writes (a ``print``) goes to
    that task's record, not to maint's output (which may be a JSON document); every other thread writes
    through to the stream as before."""

    _lock = threading.Lock()

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.captured: dict[int, list[str]] = {}

    @classmethod
    def install(cls) -> tuple[_TaskOutput, _TaskOutput]:
        """The routers of sys.stdout and sys.stderr, put in place once (again if something replaced them)."""
        with cls._lock:
            if not isinstance(sys.stdout, cls):
                sys.stdout = cls(sys.stdout)
            if not isinstance(sys.stderr, cls):
                sys.stderr = cls(sys.stderr)
            return sys.stdout, sys.stderr

    def write(self, text: str) -> int:
        captured = self.captured.get(threading.get_ident())
        if captured is None:
            return int(self.stream.write(text))
        captured.append(text)
        return len(text)

    def write_raw(self, text: str) -> int:
        """maint's own terminal sequences (:class:`maint.terminal.EscapingWriter`), never a task's."""
        raw = getattr(self.stream, "write_raw", None)
        return int(raw(text)) if raw is not None else self.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def run_task(
    connection: TaskConnection, call: Callable[[TaskConnection], Any], timeout: float, cancel: threading.Event | None,
    name: str = "task",
) -> Finished:  # fmt: skip
    """Run ``call(connection)`` in a worker thread for at most ``timeout`` seconds, or until ``cancel`` is set:
    then close the task's channels (a blocked call returns), and give its thread ABANDON_GRACE seconds more
    before abandoning it (a daemon thread). Never raises."""
    finished = Finished()
    done = threading.Event()

    routers = _TaskOutput.install()
    printed: list[str] = []

    def work() -> None:
        me = threading.get_ident()
        for router in routers:
            router.captured[me] = printed
        try:
            finished.value = call(connection)
        except BaseException as error:  # the task's exception is its result
            finished.error = error
            finished.traceback = bounded(traceback.format_exc(), TRACEBACK_LINES, RECORD_CHARS)
        finally:
            for router in routers:
                router.captured.pop(me, None)
            done.set()

    started = time.monotonic()
    deadline = started + timeout
    worker = threading.Thread(target=work, name=f"maint-{name}", daemon=True)
    worker.start()
    while not done.wait(max(0.0, min(0.2, deadline - time.monotonic()))):
        if cancel is not None and cancel.is_set():
            finished.cancelled = True
            break
        if time.monotonic() >= deadline:
            finished.timed_out = True
            break
    if finished.timed_out or finished.cancelled:
        finished.closed_channels = connection.stop()
        finished.abandoned = not done.wait(ABANDON_GRACE)
    else:
        connection.close()
    finished.seconds = time.monotonic() - started
    finished.printed = bounded("".join(printed), CALL_LINES, CALL_CHARS)
    return finished
