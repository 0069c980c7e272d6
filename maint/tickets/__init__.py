"""Reactive tickets: after a run, one ticket per failing (host, check), kept up to date.

:func:`react` turns a run's results into findings per dedup key (``HOST/CHECK``), updates the
alert state, asks the policy (:mod:`maint.tickets.policy`) what to do, stores tickets and their
history, and queues every action for the external backends the routing rules name. Delivery is
:func:`maint.tickets.outbox.deliver`'s job, so a backend that is down never loses an action.
"""

from __future__ import annotations

import fnmatch
import functools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maint import alerts
from maint.alerts import AlertState, Observation
from maint.clock import stored, timestamp
from maint.inventory import patterns
from maint.playbooks import REMEDIATION_SUFFIX
from maint.store.tickets import Event, Reaction, Ticket
from maint.tickets.policy import Finding, Policy, decide, manual

if TYPE_CHECKING:
    import datetime as dt

    import jinja2

    from maint.config import Config
    from maint.store import Store

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "data" / "templates"
# What each history event asks of an external system.
BACKEND_ACTION = {
    "opened": "open", "occurrence": "comment", "flapping": "comment", "escalated": "escalate",
    "acknowledged": "acknowledge", "comment": "comment", "resolved": "resolve", "reopened": "reopen",
}  # fmt: skip


@dataclass(frozen=True)
class StepInfo:
    """What the ticket needs to know about a step beyond its result."""

    runbook: str = ""


@dataclass
class TicketReport:
    """What a run did to tickets, for the run's summary and JSON."""

    counts: Counter[str] = field(default_factory=Counter)  # opened, occurrence, escalated, resolved, ...
    quiet: int = 0
    tickets: list[dict[str, Any]] = field(default_factory=list)  # tickets changed by the run
    pending: int = 0
    sent: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape under ``tickets`` in a run document."""
        return {
            "actions": dict(self.counts),
            "quiet": self.quiet,
            "tickets": self.tickets,
            "delivered": self.sent,
            "pending": self.pending,
            "warnings": list(self.warnings),
        }


def host_matches(pattern: str, host: str, groups: Sequence[str]) -> bool:
    """Whether ``host`` (in ``groups``) matches the Ansible host pattern ``pattern`` of a routing rule:
    the one matcher of host patterns without an inventory (:func:`maint.inventory.patterns.matches`)."""
    return patterns.matches(pattern, host, groups)


def routes(ticket: Ticket, rules: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    """The external backends (and queue) a ticket goes to: every matching routing rule, in order."""
    found: dict[str, str | None] = {}
    for rule in rules:
        if "tier" in rule and ticket.tier not in rule["tier"]:
            continue
        if "severity" in rule and ticket.severity not in rule["severity"]:
            continue
        if "group" in rule and not set(rule["group"]) & {*ticket.groups, "all"}:
            continue
        if "check" in rule and not any(fnmatch.fnmatchcase(ticket.check, p) for p in rule["check"]):
            continue
        for name in rule["backends"]:
            if name != "local":
                found.setdefault(name, rule.get("queue"))
    return list(found.items())


def quiet_reason(
    rules: Sequence[Mapping[str, Any]], finding: Finding, playbooks: Sequence[str], groups: Sequence[str]
) -> str | None:
    """The reason of the first declared maintenance that covers this failure, or None."""
    for rule in rules:
        if not host_matches(rule.get("hosts", "all"), finding.host, groups):
            continue
        checks = rule.get("checks")
        if checks and not any(fnmatch.fnmatchcase(name, pattern) for pattern in checks
                              for name in (finding.check, finding.step_type)):  # fmt: skip
            continue
        if rule.get("playbooks") and not set(rule["playbooks"]) & set(playbooks):
            continue
        if rule.get("start") and finding.at < stored(rule["start"]):
            continue
        if rule.get("end") and finding.at > stored(rule["end"]):
            continue
        return str(rule.get("reason") or "declared maintenance")
    return None


def findings(
    run: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    policy: Policy,
    groups: Mapping[str, Sequence[str]],
    steps: Mapping[tuple[str, str], StepInfo],
    reproduce: Callable[[str, str], str],
) -> list[Finding]:
    """One finding per (host, check) of the run, from its last attempt.

    Unreachable results say nothing about a check: they become one finding per host for the
    ``unreachable`` check (failing when every step of the host was unreachable), so a host that is
    down gets one ticket, not one per check.
    """
    by_pair: dict[tuple[str, str], Mapping[str, Any]] = {}
    remedies: dict[tuple[str, str], Mapping[str, Any]] = {}
    reached: dict[str, bool] = {}
    unreachable: dict[str, Mapping[str, Any]] = {}
    for result in results:
        host, step = result["host"], result["step"]
        if step.endswith(REMEDIATION_SUFFIX):
            remedies[(host, step[: -len(REMEDIATION_SUFFIX)])] = result
            continue
        if result["status"] == "unreachable":
            unreachable.setdefault(host, result)
            reached.setdefault(host, False)
            continue
        reached[host] = True
        current = by_pair.get((host, step))
        if current is None or result["attempt"] >= current["attempt"]:
            by_pair[(host, step)] = result
    found = []
    for (host, step), result in by_pair.items():
        if result["status"] == "skipped":
            continue
        remedy = remedies.get((host, step))
        found.append(
            Finding(
                key=alerts.dedup_key(host, step),
                host=host,
                check=step,
                step_type=result["type"],
                playbook=result["playbook"],
                status=result["status"],
                summary=result["summary"],
                severity=result["severity"],
                tier=result["tier"],
                run_id=run["id"],
                at=result["started"],
                failing=result["status"] in policy.open_on,
                output=result.get("output", ""),
                metrics=dict(result["metrics"]),
                groups=list(groups.get(host, ())),
                runbook=steps.get((result["playbook"], step), StepInfo()).runbook,
                reproduce=reproduce(result["playbook"], host),
                remediation=_remedy(remedy),
            )
        )
    if policy.unreachable:
        for host, was_reached in reached.items():
            down = unreachable.get(host)
            if was_reached or down is None:
                at = run["started"]
                status, summary, failing = "ok", "reachable over SSH", False
            else:
                at = down["started"]
                status, summary, failing = "unreachable", down["summary"], True
            found.append(
                Finding(
                    key=alerts.dedup_key(host, alerts.UNREACHABLE_CHECK), host=host, check=alerts.UNREACHABLE_CHECK,
                    step_type="ssh", playbook=(down or {}).get("playbook", ""), status=status, summary=summary,
                    severity="critical", tier="L1", run_id=run["id"], at=at, failing=failing,
                    groups=list(groups.get(host, ())), reproduce=reproduce((down or {}).get("playbook", ""), host),
                )
            )  # fmt: skip
    return found


def _remedy(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"step": result["step"], "type": result["type"], "status": result["status"], "summary": result["summary"]}


@functools.cache
def template_environment(project_dir: Path) -> jinja2.Environment:
    """The sandboxed Jinja2 environment of maint's templates: ``project_dir/templates`` first, then the
    built-in ones (ticket texts, the HTML report), StrictUndefined."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    loader = jinja2.FileSystemLoader([str(project_dir / "templates"), str(BUILTIN_TEMPLATES)])
    return SandboxedEnvironment(loader=loader, undefined=jinja2.StrictUndefined, autoescape=False,
                                keep_trailing_newline=False, trim_blocks=False)  # fmt: skip


def render_message(
    project_dir: Path, ticket: Ticket, event: Event, event_id: int, finding: Finding | None, queue: str | None
) -> dict[str, Any]:
    """The backend message for one event: subject and body from the (overridable) templates.

    Raises BadInput when a project template is broken (names the template and the error).
    """
    import jinja2

    from maint.errors import BadInput

    action = BACKEND_ACTION[event.action]
    variables = {
        "action": action,
        "event": asdict(event),
        "ticket": ticket.as_dict() | {"groups": list(ticket.groups), "runbook": ticket.runbook},
        "finding": asdict(finding) | {"failing": finding.failing} if finding else None,
        "reproduce": finding.reproduce if finding else "",
        "runbook": ticket.runbook,
        "marker": f"maint-event-{event_id}",
    }
    environment = template_environment(project_dir)
    rendered: dict[str, str] = {}
    current = "templates/ticket-subject.j2"
    try:
        for name in ("ticket-subject.j2", "ticket-body.j2"):
            current = f"templates/{name}"
            template = environment.get_template(name)
            current = template.filename or current  # the file in use (the project's or the built-in one)
            rendered[name] = template.render(variables)
    except jinja2.TemplateError as error:
        # A syntax error knows its file and line; an error while rendering (an undefined variable) does not.
        name = getattr(error, "filename", None) or current
        line = getattr(error, "lineno", None)
        raise BadInput(f"ticket template: {error}", source=str(name), line=line) from None
    subject = rendered["ticket-subject.j2"].strip()
    body = rendered["ticket-body.j2"].strip() + "\n"
    return {
        "action": action,
        "key": ticket.key,
        "ticket_id": ticket.id,
        "event_id": event_id,
        "host": ticket.host,
        "check": ticket.check,
        "tier": ticket.tier,
        "severity": ticket.severity,
        "status": ticket.status,
        "subject": " ".join(subject.split()),
        "body": body,
        "run_id": event.run_id,
        "queue": queue,
        "flapping": ticket.flapping,
        "occurrences": ticket.occurrences,
    }


def messages(
    config: Config, project_dir: Path, finding: Finding | None, ticket: Ticket, event: Event, event_id: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The message of ``event`` (stored with ``event_id``) for each backend the ticket is routed to, as
    (backend, message). Raises BadInput when a project template is broken."""
    for backend, queue in routes(ticket, config.tickets["routing"]):
        yield backend, render_message(project_dir, ticket, event, event_id, finding, queue)


def reaction(
    policy: Policy, config: Config, project_dir: Path, finding: Finding, stored: AlertState | None,
    latest: Ticket | None,
) -> Reaction | None:
    """What ``finding`` changes, given its key's stored alert state and latest ticket: the new alert state
    (or its deletion once quiet), and the ticket with the events the policy decided; None when the
    check passes as it always did (nothing to store, nothing to decide)."""
    if stored is None and not finding.failing and not finding.remediated and latest is None:
        return None
    before = stored or alerts.initial(finding.key, finding.host, finding.check, policy.flap.window - 1)
    after = alerts.observe(
        before, Observation(finding.run_id, finding.failing, finding.remediated), finding.at,
        open_after=policy.open_after, flap=policy.flap, keep=policy.history_size,
    )  # fmt: skip
    ticket, events = decide(policy, finding, before, after, latest)
    quiet = alerts.is_quiet(after) and not (ticket is not None and ticket.active)
    return Reaction(
        key=finding.key, state=None if quiet else after, forget=quiet and stored is not None, ticket=ticket,
        events=events, run_id=finding.run_id, messages=functools.partial(messages, config, project_dir, finding),
    )  # fmt: skip


def react(
    store: Store,
    config: Config,
    run: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
    steps: Mapping[tuple[str, str], StepInfo],
    reproduce: Callable[[str, str], str],
    project_dir: Path,
) -> TicketReport:
    """Update alert state and tickets from a finished run's results, in one transaction."""
    policy = Policy.from_config(config.tickets)
    report = TicketReport()
    found = findings(run, results, policy, groups, steps, reproduce)
    playbook_names = [playbook["name"] for playbook in run["playbooks"]]
    quiet_rules = config.tickets["quiet"]
    watched = [
        finding for finding in found
        if not (finding.failing and quiet_rules and quiet_reason(quiet_rules, finding, playbook_names, finding.groups))
    ]  # fmt: skip
    report.quiet = len(found) - len(watched)

    def plan(states: Mapping[str, AlertState], latest: Mapping[str, Ticket]) -> list[Reaction]:
        decided = (
            reaction(policy, config, project_dir, finding, states.get(finding.key), latest.get(finding.key))
            for finding in watched
        )
        return [one for one in decided if one is not None]

    for ticket, events in store.record_reactions([finding.key for finding in watched], plan, run["id"]):
        report.counts.update(event.action for event in events)
        report.tickets.append(ticket.as_dict())
    return report


def act(
    store: Store, config: Config, ticket_id: int, action: str, actor: str, now: dt.datetime, text: str,
    project_dir: Path,
) -> Ticket:
    """An operator's action on a ticket (acknowledged, comment, escalated, resolved), recorded and queued.

    Raises BadInput when there is no such ticket or the action does not apply to it.
    """
    from maint.errors import BadInput

    def change(ticket: Ticket) -> tuple[Ticket, Event]:
        try:
            return manual(ticket, action, actor, timestamp(now), text)
        except ValueError as error:
            raise BadInput(str(error), hint="see 'maint tickets show ID'") from None

    changed = store.change_ticket(ticket_id, change, functools.partial(messages, config, project_dir, None))
    if changed is None:
        raise BadInput(f"no ticket #{ticket_id} in {store.url}", hint="see 'maint tickets list'")
    return changed
