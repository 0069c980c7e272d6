"""``python`` and ``fabric``: maintenance tasks written in Python, run on the controller with a ``fabric.Connection``
to the host (the host's own SSH connection; see :mod:`maint.executors.taskconnection`).

``python`` calls ``task: package.module:function`` or ``task: FILE.py:function`` once per host with the
connection first and the step's other parameters as keyword arguments; the function returns an Outcome, a
bool or None. ``fabric`` runs a task of an existing Fabric fabfile unchanged (``fabfile: PATH``, ``task:
NAME``): one that returns is ok, one that raises is failed. Both are checked against the function's signature
when the playbook loads, and both are controller steps: the engine calls :meth:`perform` instead of running a
shell command.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from maint import tasks
from maint.checks import Outcome, Param, ParamError, Status, StepType, text
from maint.executors import CommandResult
from maint.secrets import SECRET_NAME, is_reference
from maint.secrets import resolve as resolve_secret

if TYPE_CHECKING:
    from maint.become import Become
    from maint.executors import Connection
    from maint.executors.taskconnection import Finished


class _TaskStep(StepType):
    """What ``python`` and ``fabric`` share: arguments from the step, check mode, running and the outcome."""

    changes_host = True
    on_controller = True
    # The step keys that are not the task's arguments.
    own: ClassVar[tuple[str, ...]] = ("task",)
    # Whether a command that exits non-zero (invoke's UnexpectedExit) makes the step failed (else error).
    failed_on_exit: ClassVar[bool] = False

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)
        self.function, self.reference = self.find(self.values)
        self.check = False
        self.arguments: dict[str, Any] = {}
        self._secrets: list[str] = []
        for name, value in self.values.items():
            if name in self.own:
                continue
            # A secret-looking parameter given as env:NAME or file:PATH gets the secret's value.
            if SECRET_NAME.search(name) and is_reference(value):
                try:
                    value = resolve_secret(value).value
                except ValueError as error:
                    raise ParamError(f"parameter '{name}': {error}") from None
            if SECRET_NAME.search(name) and isinstance(value, str):
                self._secrets.append(value)
            self.arguments[name] = value
        try:
            tasks.check_arguments(_body(self.function), self.arguments, f"task {self.reference}")
        except tasks.TaskError as error:
            raise ParamError(str(error)) from None

    @classmethod
    def find(cls, values: Mapping[str, Any], places: Sequence[Path] = ()) -> tuple[Callable[..., Any], str]:
        """The function the step names and its reference (files made absolute); raises ParamError."""
        raise NotImplementedError

    @classmethod
    def load_params(cls, values: Mapping[str, Any], pending: Collection[str], places: Sequence[Path]) -> dict[str, Any]:
        """Find the task (a file: beside the playbook or in the project) and check the step's parameters against
        its signature; the values to keep, with a file's path made absolute. Raises ParamError."""
        for name in cls.own:
            if name in pending:
                raise ParamError(f"'{name}' of a {cls.name} step cannot be a template: it is checked when the "
                                 "playbook loads")  # fmt: skip
            if values.get(name) in (None, ""):
                raise ParamError(f"{cls.name} needs parameter '{name}'")
        function, reference = cls.find(values, places)
        given = {*(name for name in values if name not in cls.own), *pending}
        try:
            tasks.check_arguments(_body(function), given, f"task {reference}")
        except tasks.TaskError as error:
            raise ParamError(str(error)) from None
        return cls.resolved(values, reference)

    @classmethod
    def resolved(cls, values: Mapping[str, Any], reference: str) -> dict[str, Any]:
        """``values`` with the task reference as :meth:`find` made it."""
        return {**values, "task": reference}

    @classmethod
    def sources(cls, params: Mapping[str, Any]) -> list[Path]:
        """The file the task's code is in (a task file, a fabfile, a module's source), for the playbook's digest:
        a run records it, and resume refuses a changed one as it refuses a changed playbook."""
        reference = str(params.get("fabfile") or params.get("task") or "")
        target = reference if params.get("fabfile") else reference.rpartition(":")[0]
        if target.endswith(".py"):
            return [Path(target)]
        import importlib.util

        try:
            spec = importlib.util.find_spec(target) if target else None
        except (ImportError, ValueError):
            spec = None
        return [Path(spec.origin)] if spec is not None and spec.origin and spec.origin.endswith(".py") else []

    def command(self) -> str:
        """What the record shows when no call was made: the task's reference."""
        return f"{self.name} {self.reference}"

    def secret_values(self) -> tuple[str, ...]:
        """The values of the secret-looking parameters, masked in everything recorded."""
        return tuple(self._secrets)

    def in_check_mode(self) -> StepType | None:
        """The task with ``check=True`` when it supports check mode (``maint.task(check_mode=True)``, or a
        ``check`` argument), else None (skipped)."""
        if not tasks.supports_check_mode(_body(self.function)):
            return None
        dry_run = copy.copy(self)
        dry_run.check = True
        return dry_run

    def check_mode_skip_reason(self) -> str:
        """Why check mode skips this task."""
        return (f"check mode: task {self.reference} does not support check mode (mark it "
                "@maint.task(check_mode=True) or give it a 'check' argument)")  # fmt: skip

    def call(self, connection: Any) -> Any:
        """Call the task with ``connection`` and its arguments (``check`` when it takes it)."""
        arguments = dict(self.arguments)
        if tasks.takes_check(_body(self.function)):
            arguments[tasks.CHECK_ARGUMENT] = self.check
        return self.function(connection, **arguments)

    def perform(
        self, connection: Connection, become: Become | None, timeout: float, cancel: threading.Event | None
    ) -> tuple[Outcome, CommandResult]:
        """Run the task on the host's SSH connection within ``timeout`` (see :func:`run_task`): its outcome and
        the record of its calls. A connection without an SSH transport (maint.testing's FakeExecutor, the local
        executor) gives an ``error``."""
        import paramiko

        from maint.executors import taskconnection

        transport = getattr(connection, "transport", None)
        if not isinstance(transport, paramiko.Transport):
            outcome = Outcome(Status.ERROR, taskconnection.NO_CONNECTION)
            return outcome, CommandResult(self.command(), None, "", "", 0.0)
        endpoint = getattr(connection, "endpoint", None)
        host = endpoint.address if endpoint is not None else str(getattr(connection, "host_name", "") or "host")
        port = endpoint.port if endpoint is not None else 22
        user = endpoint.user if endpoint is not None else str(transport.get_username() or "")
        timeout_at = endpoint.connect_timeout if endpoint is not None else None
        fabric_connection = taskconnection.TaskConnection(
            transport, host, user, port, become, timeout_at, session=connection, deadline=time.monotonic() + timeout
        )
        finished = taskconnection.run_task(fabric_connection, self.call, timeout, cancel, self.name)
        calls = tuple(fabric_connection.calls)
        outcome, exit_code = self.outcome(finished, timeout)
        output = "\n".join(str(call) for call in calls)
        if finished.printed.strip():
            output += ("\n" if output else "") + "[printed]\n" + finished.printed.rstrip("\n")
        if finished.traceback and finished.error is not None and not isinstance(
            finished.error, taskconnection.TaskStopped
        ):
            output += ("\n" if output else "") + "[traceback]\n" + finished.traceback.rstrip("\n")
        ended = ""
        if finished.timed_out or finished.cancelled:
            ended = f"closed the task's {finished.closed_channels} open channel(s)"
            if finished.abandoned:
                ended += "; its thread did not return and was left behind"
        record = taskconnection.TaskRecord(
            command="\n".join(call.shown for call in calls) or self.command(), exit_code=exit_code, stdout=output,
            stderr="", duration=finished.seconds, timed_out=finished.timed_out, cancelled=finished.cancelled,
            ended=ended, calls=calls,
        )  # fmt: skip
        return outcome, record

    def outcome(self, finished: Finished, timeout: float) -> tuple[Outcome, int | None]:
        """The outcome of a task that ended as ``finished`` and the exit code to record (a failed command's)."""
        import invoke

        from maint.executors.taskconnection import one_line

        if finished.timed_out:
            return Outcome(Status.ERROR, f"timed out after {timeout:g}s"), None
        error = finished.error
        if error is not None:
            if isinstance(error, invoke.exceptions.UnexpectedExit):
                status = Status.FAILED if self.failed_on_exit else Status.ERROR
                return Outcome(status, one_line(error)), error.result.exited
            return Outcome(Status.ERROR, one_line(error)), None
        value = finished.value
        if isinstance(value, Outcome):
            try:
                return Outcome(Status(value.status), str(value.summary), dict(value.metrics)), None
            except (ValueError, TypeError) as problem:
                return Outcome(Status.ERROR, f"task {self.reference} returned a bad Outcome: {problem}"), None
        if value is None or value is True:
            return Outcome(Status.OK, self.done_summary()), None
        if value is False:
            return Outcome(Status.FAILED, f"task {self.reference} returned False"), None
        if self.failed_on_exit:
            return Outcome(Status.OK, self.done_summary()), None  # a Fabric task's return value means nothing
        wrong = f"task {self.reference} returned a {type(value).__name__}: expected an Outcome, a bool or None"
        return Outcome(Status.ERROR, wrong), None

    def done_summary(self) -> str:
        """The summary of a task that succeeded without saying more."""
        return f"{self.reference.rpartition('/')[2]} done"


class PythonTask(_TaskStep):
    """Calls a Python function with a ``fabric.Connection`` to the host and the step's parameters.

    ``task: package.module:function`` imports an installed module; ``task: FILE.py:function`` a file beside
    the playbook or in the project directory (``maintfile.py``). The function returns an Outcome, True/None
    (ok) or False (failed); an exception is an ``error`` with its traceback's end in the output.
    """

    name = "python"
    description = "Call a Python function (package.module:function or maintfile.py:function) with a Fabric Connection."
    params = {
        "task": Param(
            text, required=True, help="package.module:function or FILE.py:function; other parameters are its arguments"
        ),
    }

    @classmethod
    def find(cls, values: Mapping[str, Any], places: Sequence[Path] = ()) -> tuple[Callable[..., Any], str]:
        """The function ``task`` names; raises ParamError."""
        try:
            return tasks.load_function(str(values.get("task") or ""), places)
        except tasks.TaskError as error:
            raise ParamError(f"'task': {error}") from None


class FabricTask(_TaskStep):
    """Runs a task of a Fabric fabfile (``@fabric.task``/``@invoke.task`` functions taking ``c`` first) as it is.

    A task that returns is ok; one that raises is failed (a command that exited non-zero: its command and exit
    code in the summary), or an error for anything else than a command's exit.
    """

    name = "fabric"
    description = "Run a task of an existing Fabric fabfile unchanged (fabfile: PATH, task: NAME)."
    params = {
        "fabfile": Param(text, required=True, help="the fabfile: a path beside the playbook or in the project"),
        "task": Param(text, required=True, help="the task's name; other parameters beside it are its arguments"),
    }
    own = ("fabfile", "task")
    failed_on_exit = True

    @classmethod
    def find(cls, values: Mapping[str, Any], places: Sequence[Path] = ()) -> tuple[Callable[..., Any], str]:
        """The task ``task`` of the fabfile ``fabfile`` (by function name or task name); raises ParamError."""
        import invoke.tasks

        name = str(values.get("task") or "")
        try:
            path = tasks.find_file(str(values.get("fabfile") or ""), places)
            module = tasks.load_file(path)
        except tasks.TaskError as error:
            raise ParamError(f"'fabfile': {error}") from None
        found = {value.name: value for value in vars(module).values() if isinstance(value, invoke.tasks.Task)}
        task = getattr(module, name, None)
        if not isinstance(task, invoke.tasks.Task):
            task = found.get(name) or found.get(name.replace("_", "-")) or found.get(name.replace("-", "_"))
        if task is None:
            known = ", ".join(sorted(found)) or "none"
            raise ParamError(f"'task': {path} has no Fabric task '{name}' (it has: {known})")
        return task, f"{path}:{name}"

    @classmethod
    def resolved(cls, values: Mapping[str, Any], reference: str) -> dict[str, Any]:
        """``values`` with the fabfile's path made absolute."""
        return {**values, "fabfile": reference.rpartition(":")[0]}


def _body(function: Callable[..., Any]) -> Callable[..., Any]:
    """The function a task runs: an Invoke/Fabric task's body, or the function itself."""
    body = getattr(function, "body", None)
    return body if callable(body) else function
