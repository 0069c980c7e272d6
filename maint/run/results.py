"""The one way a run makes a result record, whatever produced it (a host's step, an Ansible task, a skip)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from maint.checks import Outcome
from maint.clock import Clock, timestamp
from maint.errors import ExitCode
from maint.executors import CommandResult
from maint.run.plan import PlannedStep, RunPlan
from maint.secrets import mask, redact_command
from maint.store import ResultRecord, SkipKind


class StepRun(NamedTuple):
    """A step run on a host: its outcome, the command's result (None when no command ran), when it
    started, how long it took, and why it was skipped when the run (not the step) skipped it."""

    outcome: Outcome
    result: CommandResult | None
    started: dt.datetime
    seconds: float
    skip_kind: SkipKind | None = None


class Results:
    """Builds the result records of one run: its id, each step's classification, the attempt numbering."""

    def __init__(self, plan: RunPlan, clock: Clock) -> None:
        self.plan = plan
        self.clock = clock
        self.attempt_offset = plan.request.attempt_offset

    def make(
        self, host: str, planned: PlannedStep, status: str, summary: str, *, exit_code: int | None = None,
        metrics: Mapping[str, float] | None = None, output: str = "", started: dt.datetime | None = None,
        duration: float = 0.0, attempt: int = 1, step_id: str | None = None, step_type: str | None = None,
        skip_kind: SkipKind | None = None, task: str | None = None, command: str | None = None,
    ) -> ResultRecord:  # fmt: skip
        """The record of ``planned`` on ``host``: ``skip_kind`` says why a skipped one was skipped; an Ansible
        task's result names its ``task``, and ``step_id``/``step_type`` as shown (``STEP/TASK``, ``ansible:MODULE``)."""
        tier, severity = self.plan.classification(planned.playbook.name, planned.step)
        return ResultRecord(
            run_id=self.plan.run_id, host=host, playbook=planned.playbook.name, step=step_id or planned.step.id,
            step_type=step_type or planned.step.type, status=status, exit_code=exit_code, summary=summary,
            metrics=dict(metrics or {}), output=output, started=timestamp(started or self.clock()), duration=duration,
            severity=severity, tier=tier, attempt=attempt + self.attempt_offset,
            skip_kind=str(skip_kind) if skip_kind is not None else None, task=task, command=command,
        )  # fmt: skip

    def outcome(self, host: str, planned: PlannedStep, run: StepRun, attempt: int = 1) -> ResultRecord:
        """The record of a step that ran (or could not) on one of maint's own connections."""
        outcome, result = run.outcome, run.result
        return self.make(
            host, planned, outcome.status.value, outcome.summary, exit_code=result.exit_code if result else None,
            metrics=outcome.metrics, output=result.tail() if result else "", started=run.started,
            duration=run.seconds, attempt=attempt, skip_kind=run.skip_kind,
            command=redact_command(result.command) if result else None,
        )  # fmt: skip

    def skipped(self, work: Mapping[str, Sequence[PlannedStep]], reason: str, kind: SkipKind) -> list[ResultRecord]:
        """Every step of ``work`` (per host) skipped now, with ``reason`` (the summary) and ``kind``."""
        now = self.clock()
        return [self.make(host, planned, "skipped", reason, started=now, skip_kind=kind) for host, steps in work.items()
                for planned in steps]  # fmt: skip


def masked(outcome: Outcome, result: CommandResult, secrets: Sequence[str]) -> tuple[Outcome, CommandResult]:
    """The outcome and result with every secret value replaced by ***, before anything is recorded."""
    return (
        dataclasses.replace(outcome, summary=mask(outcome.summary, secrets)),
        dataclasses.replace(
            result,
            command=mask(result.command, secrets),
            stdout=mask(result.stdout, secrets),
            stderr=mask(result.stderr, secrets),
        ),
    )


def final_status(counts: Mapping[str, int]) -> tuple[str, ExitCode]:
    """The run's status and exit code from its result counts (see docs/exit-codes.md)."""
    if counts.get("failed") or counts.get("error"):
        return "failed", ExitCode.FAILED
    if counts.get("unreachable"):
        return "unreachable", ExitCode.UNREACHABLE
    return "ok", ExitCode.OK
