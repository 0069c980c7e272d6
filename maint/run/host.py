"""One host's part of a run: connect once, run its steps in order, remediate, notice a hung host."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from maint import become as escalation
from maint import registry
from maint.alerts import AlertState, dedup_key
from maint.become import Keywords as BecomeKeywords
from maint.checks import Outcome, ParamError, Status
from maint.executors import BecomeFailed, Connection, Executor, HostHung, Unreachable, Unsupported
from maint.inventory import Host
from maint.playbooks import DEFAULT_STEP_TIMEOUT, REMEDIATION_SUFFIX, Step
from maint.run.controls import Controls, WindowGuard
from maint.run.plan import PlannedStep
from maint.run.request import INTERRUPTED, RunRequest
from maint.run.results import Results, StepRun, masked
from maint.secrets import mask as masked_text
from maint.secrets import secret_variable_values
from maint.store import ResultRecord, SkipKind
from maint.templating import RenderError
from maint.vault import Revealed

# ansible_connection values that maint's executors serve under another name.
CONNECTION_ALIASES = {"smart": "ssh", "paramiko": "ssh", "paramiko_ssh": "ssh", "ssh": "ssh", "local": "local"}


class Executors:
    """The run's executors by the name ``ansible_connection`` selects (ssh when unset), each made once per
    run with ``connect_timeout``. The given ones (tests: :class:`maint.testing.FakeExecutor`) come first;
    the rest, built-in or third-party alike, are found through the ``maint.executors`` entry points."""

    def __init__(self, given: Mapping[str, Executor] | None, connect_timeout: float) -> None:
        self._made: dict[str, Executor] = dict(given or {})
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()

    def for_host(self, host: Host) -> Executor:
        """The executor of ``host``; raises Unsupported (that host's ``error``) for a connection no executor
        serves: maint never reaches a host differently from what its inventory says."""
        connection = str(host.vars.get("ansible_connection") or "ssh")
        kind = CONNECTION_ALIASES.get(connection, connection)
        with self._lock:
            if kind not in self._made:
                factory = registry.load(registry.EXECUTORS, kind)
                if factory is None:
                    known = ", ".join(registry.names(registry.EXECUTORS))
                    raise Unsupported(
                        f"ansible_connection={connection}: maint has no executor for it (known: {known}; "
                        "an executor plugin registers under the maint.executors entry points)"
                    )
                self._made[kind] = factory(connect_timeout=self._connect_timeout)
            return self._made[kind]


class Remediations:
    """The rate limit of remediations: a (host, check) is remediated at most ``max_attempts`` times in its
    last ``runs`` runs (maint.yml's ``tickets.remediation``); ``alerts`` holds their state from the store."""

    def __init__(self, max_attempts: int, runs: int) -> None:
        self.max_attempts = max_attempts
        self.runs = runs
        self.alerts: Mapping[str, AlertState] = {}

    def keys(self, work: Mapping[str, Sequence[PlannedStep]]) -> list[str]:
        """The alert keys of the steps of ``work`` that have a remediation (whose state limits it)."""
        return [dedup_key(host, p.step.id) for host, steps in work.items() for p in steps if p.step.remediate]

    def allowed(self, host: str, check: str) -> bool:
        """Whether the remediation limit of (host, check) allows another attempt in this run."""
        state = self.alerts.get(dedup_key(host, check))
        if state is None:
            return True
        return state.remediations(self.runs) < self.max_attempts


class HostRun:
    """Runs the steps of one host over one connection and hands each result to ``emit``, in order.

    Nothing a host does raises out of :meth:`run`: an unreachable or broken host is its results.
    """

    def __init__(
        self, request: RunRequest, results: Results, executors: Executors, controls: Controls, window: WindowGuard,
        remediations: Remediations, vault: Revealed | None = None,
    ) -> None:  # fmt: skip
        self.request = request
        # The extra variables with their vault values decrypted, and those values, masked like secrets.
        self.extra_vars = vault.extra_vars if vault is not None else request.extra_vars
        self.revealed = vault.values if vault is not None else ()
        self.results = results
        self.clock = results.clock
        self.executors = executors
        self.controls = controls
        self.window = window
        self.remediations = remediations

    def run(self, host: Host, steps: Sequence[PlannedStep], emit: Callable[[ResultRecord], None]) -> None:
        """Connect to ``host`` and run ``steps``; every step gets a result unless the run stops first."""
        make = self.results.outcome
        variables = {
            **host.vars,
            "inventory_hostname": host.name,
            "group_names": list(host.groups),
            **self.extra_vars,
        }
        hidden = (*secret_variable_values(variables), *self.revealed, *self.request.become_passwords)
        connect_started = self.clock()
        began = time.monotonic()
        try:
            connection: Connection = self.executors.for_host(host).connect(host)
        except Exception as error:
            self.controls.recorded.wait()
            if isinstance(error, Unreachable):
                outcome, seconds = Outcome(Status.UNREACHABLE, str(error)), time.monotonic() - began
            elif isinstance(error, Unsupported):
                outcome, seconds = Outcome(Status.ERROR, str(error)), 0.0
            else:  # a bug in an executor must stay this host's problem
                outcome = Outcome(Status.ERROR, f"executor failed: {type(error).__name__}: {error}")
                seconds = time.monotonic() - began
            for planned in steps:
                emit(make(host.name, planned, StepRun(outcome, None, connect_started, seconds)))
            return

        escalations: dict[Any, escalation.Become | str | None] = {}

        def execute(planned: PlannedStep, step: Step) -> StepRun:
            return self.execute(planned, step, variables, connection, hidden, escalations)

        try:
            self.controls.recorded.wait()
            for index, planned in enumerate(steps):
                if self.controls.stop.is_set():
                    return
                if self.window.closed():
                    closed = Outcome(Status.SKIPPED, self.window.closed_reason)
                    for later in steps[index:]:
                        emit(make(host.name, later, StepRun(closed, None, self.clock(), 0.0, SkipKind.WINDOW_CLOSED)))
                    return
                try:
                    done = execute(planned, planned.step)
                    emit(make(host.name, planned, done))
                    remedy = planned.step.remediate
                    if (
                        remedy is None
                        or done.outcome.status != Status.FAILED
                        or self.request.check_mode
                        or not self.remediations.allowed(host.name, planned.step.id)
                    ):
                        continue
                    # Remediate, then check again: the ticket (if any) follows the second attempt.
                    task = dataclasses.replace(remedy, id=planned.step.id + REMEDIATION_SUFFIX)
                    fixing = PlannedStep(planned.playbook, task)
                    fixed = execute(fixing, task)
                    emit(make(host.name, fixing, fixed))
                    again = execute(planned, planned.step)
                    emit(make(host.name, planned, again, attempt=2))
                except HostHung as error:
                    hung = Outcome(Status.ERROR, str(error))
                    emit(make(host.name, planned, StepRun(hung, None, error.started or self.clock(), error.seconds)))
                    gone = Outcome(Status.UNREACHABLE, f"host stopped responding during step '{planned.step.id}'")
                    for later in steps[index + 1 :]:
                        emit(make(host.name, later, StepRun(gone, None, self.clock(), 0.0)))
                    return
        finally:
            connection.close()

    def execute(
        self, planned: PlannedStep, step: Step, variables: Mapping[str, Any], connection: Connection,
        hidden: Sequence[str] = (), escalations: dict[Any, escalation.Become | str | None] | None = None,
    ) -> StepRun:  # fmt: skip
        """Run one step on a connected host: its outcome, command result, start, seconds and why it was skipped.
        ``escalations`` keeps the host's become settings (or why they are unusable) by the keywords that gave
        them, so a password file is read once per host, not once per step.

        Raises HostHung (with ``started`` and ``seconds`` set) when the host stops answering.
        """
        step_started = self.clock()
        began = time.monotonic()
        try:
            if not step.applies(variables):
                condition = Outcome(Status.SKIPPED, f"condition is false: {step.when}")
                return StepRun(condition, None, step_started, 0.0, SkipKind.CONDITION)
            instance = step.instantiate(variables)
            if self.request.check_mode:
                dry_run = instance.in_check_mode()
                if dry_run is None:
                    reason = instance.check_mode_skip_reason()
                    return StepRun(Outcome(Status.SKIPPED, reason), None, step_started, 0.0, SkipKind.CHECK_MODE)
                instance = dry_run
            command = "" if instance.on_controller else instance.command()
            stdin = None if instance.on_controller else instance.stdin()
            # Resolved secrets, and the values of secret-looking variables (``hidden``) a template may have put
            # in the command (-e db_password=..., a host var): none of them may reach the record.
            secrets = (*instance.secret_values(), *hidden)
        except (RenderError, ParamError) as error:
            return StepRun(Outcome(Status.ERROR, f"bad parameters: {error}"), None, step_started, 0.0)
        except Exception as error:  # a bug in a step type is this result's error, not a hung run
            summary = f"step type {step.type} failed: {type(error).__name__}: {error}"
            return StepRun(Outcome(Status.ERROR, summary), None, step_started, 0.0)
        timeout = self.request.step_timeout or step.timeout or planned.playbook.timeout or DEFAULT_STEP_TIMEOUT
        timeout = self.window.step_timeout(timeout)
        # A controller step escalates only where it asks to (a task's c.sudo): it knows the host's become user
        # and password unless the step, playbook, command line or host turns become off.
        command_line = self.request.become.over(BecomeKeywords(become=True)) if instance.on_controller else \
            self.request.become
        escalations = {} if escalations is None else escalations
        keywords = (step.become, planned.playbook.become, command_line)
        if keywords not in escalations:
            try:
                escalations[keywords] = escalation.settings(variables, *keywords, self.request.become_password)
            except escalation.BecomeError as error:
                escalations[keywords] = str(error)
        found = escalations[keywords]
        if isinstance(found, str):
            return StepRun(Outcome(Status.ERROR, found), None, step_started, 0.0)
        become = found
        if become is not None and become.password is not None:
            secrets = (*secrets, become.password)
        try:
            if instance.on_controller:
                try:
                    outcome, result = instance.perform(connection, become, timeout, self.controls.cancel)
                except Exception as error:  # a bug in a step type is this result's error
                    summary = masked_text(f"step type {step.type} failed: {type(error).__name__}: {error}", secrets)
                    return StepRun(Outcome(Status.ERROR, summary), None, step_started, time.monotonic() - began)
                if result.timed_out and not _alive(connection):
                    raise HostHung(f"host stopped responding: task timed out after {timeout:g}s")
            else:
                result = connection.run(command, timeout, stdin, cancel=self.controls.cancel, become=become)
        except HostHung as error:
            error.started = step_started
            error.seconds = time.monotonic() - began
            raise
        except BecomeFailed as error:
            return StepRun(Outcome(Status.ERROR, masked_text(str(error), secrets)), None, step_started,
                           time.monotonic() - began)  # fmt: skip
        skip_kind = None
        if result.cancelled:
            # Not a result of the step: resume runs it again.
            outcome, skip_kind = Outcome(Status.SKIPPED, f"{INTERRUPTED}; {result.ended}"), SkipKind.INTERRUPTED
        elif result.timed_out:
            outcome = Outcome(Status.ERROR, f"timed out after {timeout:g}s")
        elif instance.on_controller:
            pass  # the outcome perform() gave
        elif result.exit_code is None:
            outcome = Outcome(Status.ERROR, "the command's channel closed before it finished")
        else:
            try:
                outcome = instance.evaluate(result)
            except Exception as error:  # a check bug is this result's error
                outcome = Outcome(Status.ERROR, f"check failed to evaluate: {type(error).__name__}: {error}")
        if secrets:
            outcome, result = masked(outcome, result, secrets)
        return StepRun(outcome, result, step_started, result.duration, skip_kind)


def _alive(connection: Connection) -> bool:
    """Whether the host still answers on ``connection`` (a connection that cannot tell is taken as alive)."""
    alive = getattr(connection, "alive", None)
    return bool(alive()) if callable(alive) else True
