"""A fleet step: one Ansible playbook through ansible-runner for many hosts, a result per (host, task)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from maint.checks import ParamError
from maint.files import private_directory
from maint.run.controls import Controls, WindowGuard
from maint.run.plan import PlannedStep, RunPlan
from maint.run.results import Results
from maint.secrets import mask
from maint.store import ResultRecord, SkipKind
from maint.templating import RenderError


def records_directory(plan: RunPlan) -> Path:
    """Where ansible-runner's record of each Ansible step of the run goes (events, stdout, status)."""
    return plan.request.state_dir / "runs" / plan.run_id


def run_fleet_step(
    plan: RunPlan, planned: PlannedStep, host_names: Sequence[str], results: Results, controls: Controls,
    window: WindowGuard, emit: Callable[[ResultRecord], None],
) -> None:  # fmt: skip
    """Run the Ansible playbook of ``planned`` on ``host_names``; each (host, task) result goes to ``emit``
    as the runner reports it, then a result for every host that no task reported."""
    from maint.executors.ansible import PlaybookRequest, TaskResult, run_playbook

    request = plan.request
    step = planned.step
    began = results.clock()
    path = plan.ansible_playbooks[(planned.playbook.name, step.id)]

    def record(host: str, status: str, summary: str, *, task: str | None = None, module: str = "",
               exit_code: int | None = None, metrics: Mapping[str, float] | None = None, output: str = "",
               started: dt.datetime | None = None, duration: float = 0.0, skip_kind: SkipKind | None = None,
               ) -> None:  # fmt: skip
        # A task's result shows as STEP/TASK of type ansible:MODULE (e.g. ansible:ansible.builtin.copy).
        step_type = f"{step.type}:{module}" if module else step.type
        step_id = f"{step.id}/{task}" if task else None
        if plan.vault.values:  # what ansible-playbook printed of a decrypted vault value is not recorded
            summary, output = mask(summary, plan.vault.values), mask(output, plan.vault.values)
        emit(results.make(host, planned, status, summary, step_id=step_id, step_type=step_type, exit_code=exit_code,
                          metrics=metrics, output=output, started=started or began, duration=duration,
                          skip_kind=skip_kind, task=task))  # fmt: skip

    try:
        instance = step.instantiate(dict(plan.vault.extra_vars or request.extra_vars))
    except (RenderError, ParamError) as error:
        for host in host_names:
            record(host, "error", f"bad parameters: {error}")
        return
    seen: Counter[tuple[str, str]] = Counter()
    reported: set[str] = set()

    def on_result(task: TaskResult) -> None:
        seen[(task.host, task.task)] += 1
        count = seen[(task.host, task.task)]
        name = task.task if count == 1 else f"{task.task} #{count}"
        reported.add(task.host)
        record(
            task.host, task.status, task.summary, task=name, module=task.module,
            exit_code=task.rc, metrics={"changed": 1.0 if task.changed else 0.0}, output=task.output,
            started=dt.datetime.fromtimestamp(task.started, dt.UTC), duration=task.duration,
            skip_kind=SkipKind.ANSIBLE if task.status == "skipped" else None,
        )  # fmt: skip

    values = instance.values
    timeout = step.timeout or planned.playbook.timeout
    data_dir = records_directory(plan) / "ansible" / f"{planned.playbook.name}-{step.id}".replace("/", "_")
    private_directory(data_dir.parent)  # owner-only: it holds the runner's copy of the environment and extra vars
    try:
        outcome = run_playbook(
            PlaybookRequest(
                playbook=path, inventory=[str(source) for source in request.inventory], hosts=list(host_names),
                data_dir=data_dir, forks=request.forks, extra_vars={**request.extra_vars, **values["extra_vars"]},
                tags=values["tags"], skip_tags=values["skip_tags"], check=request.check_mode or values["check"],
                connect_timeout=request.connect_timeout, task_timeout=request.step_timeout, timeout=timeout,
                cancel=lambda: controls.cancel.is_set() or window.grace_over(), vault=request.vault,
                hidden=(*plan.vault.values, *request.become_passwords),
                become=step.become.over(planned.playbook.become).over(request.become),
                become_password=request.become_password,
            ),
            on_result,
        )  # fmt: skip
    except Exception as error:  # the runner failing to start is this step's error on every host
        for host in host_names:
            record(host, "error", f"ansible-runner failed: {type(error).__name__}: {error}")
        return
    if controls.stop.is_set():
        return
    seconds = (results.clock() - began).total_seconds()
    for host in host_names:
        if outcome.status == "timeout":
            record(host, "error", f"the Ansible playbook timed out after {timeout:g}s", exit_code=outcome.rc,
                   output=outcome.output, duration=seconds)  # fmt: skip
        elif host in reported:
            continue
        elif outcome.status == "successful":
            record(host, "skipped", "no play of the Ansible playbook ran on this host", duration=seconds,
                   skip_kind=SkipKind.NO_PLAY)  # fmt: skip
        else:
            summary = f"ansible-playbook ended {outcome.status} (rc {outcome.rc}) before any task ran here"
            record(host, "error", summary, exit_code=outcome.rc, output=outcome.output, duration=seconds)


def fleet_records(plan: RunPlan) -> Mapping[str, str]:
    """The run's ``options`` entry naming its Ansible records, when it has a fleet step."""
    return {"records": str(records_directory(plan))} if plan.ansible_playbooks else {}
