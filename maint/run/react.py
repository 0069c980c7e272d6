"""A recorded run's reaction: tickets for its findings, then their delivery to the external systems.

The one place that knows both runs and tickets.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maint import playbooks as playbook_module
from maint.clock import Clock
from maint.config import Config
from maint.errors import MaintError
from maint.inventory import Host
from maint.playbooks import Playbook
from maint.run.plan import RunPlan
from maint.store import RunDocument, Store


def react(store: Store, config: Config, plan: RunPlan, document: RunDocument, clock: Clock) -> dict[str, Any]:
    """Open, escalate or resolve the tickets of ``document``'s findings, deliver them within the budget,
    and return the ticket report (``document.tickets``). A broken ticket template is a warning: the run is
    recorded, its tickets are not."""
    from maint.tickets import StepInfo, TicketReport
    from maint.tickets import react as open_tickets
    from maint.tickets.outbox import deliver

    request = plan.request
    steps = {(p.name, step.id): StepInfo(runbook=step.runbook) for p in plan.playbooks for step in p.steps}
    sources = [argument for source in request.inventory for argument in ("-i", str(source))]
    references = {p.name: reference(p, request.project_dir) for p in plan.playbooks}
    recipes = {p.name: p.adhoc for p in plan.playbooks if p.adhoc is not None}

    def reproduce(playbook: str, host: str) -> str:
        check = ["-C"] if request.check_mode else []
        recipe = recipes.get(playbook)
        if recipe is not None:  # one word after --: maint exec takes it as the shell command line it is
            raw = [] if recipe["template"] else ["--no-template"]
            return shlex.join(["maint", "exec", host, *sources, *raw, "--", recipe["command"]])
        named = references.get(playbook) or playbook or "PLAYBOOK"
        return shlex.join(["maint", "run", named, *sources, "-l", host, *check])

    groups = _groups(plan.hosts)
    # A resumed run reacts to what this resume added; the earlier results had their reaction.
    fresh = [result for result in document.results if result["attempt"] > request.attempt_offset]
    try:
        report = open_tickets(store, config, document.run, fresh, groups, steps, reproduce, request.project_dir)
    except MaintError as error:
        report = TicketReport(warnings=[f"tickets not updated for run {document.run['id']}: {error}"])
    delivery = deliver(store, config, clock)
    report.sent = delivery.sent
    report.pending = delivery.pending
    report.warnings.extend(delivery.warnings)
    if config.backends:
        from maint.config.tickets import missing_libraries

        # Said where the run is watched, not only in `maint tickets show`: the fix is one pip install.
        missing = missing_libraries(config.backends)
        report.warnings.extend(f"{problem} (tickets for it wait in the outbox)" for problem in missing)
    return report.as_dict()


def remediation_limits(config: Config) -> tuple[int, int]:
    """How often a (host, check) may be remediated: (at most this many attempts, in its last this many
    runs), from maint.yml's ``tickets.remediation``."""
    from maint.tickets.policy import Policy

    policy = Policy.from_config(config.tickets)
    return policy.remediation_max_attempts, policy.remediation_runs


def reference(playbook: Playbook, project_dir: Path) -> str:
    """How to name ``playbook`` on a command line run from ``project_dir``."""
    if playbook.builtin or playbook.path == playbook_module.resolve_quietly(playbook.name, project_dir):
        return playbook.name
    try:
        return str(playbook.path.resolve().relative_to(project_dir.resolve()))
    except ValueError:
        return str(playbook.path)


def _groups(hosts: Mapping[str, Host]) -> dict[str, list[str]]:
    return {name: sorted(host.groups) for name, host in hosts.items()}
