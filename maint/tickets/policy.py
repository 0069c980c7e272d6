"""The ticket policy: what a good L1 desk would do with one (host, check) after a run.

Pure: given the policy settings, what the run found, the alert state before and after, the key's
latest ticket and the time, :func:`decide` returns the ticket (new or changed) and the history
events to append. The caller stores them and queues the events for the external backends.

- A hard failure with no active ticket opens one, or reopens the last one when it was resolved
  within ``reopen_within``. With an active ticket it adds an occurrence, never a second ticket.
- Escalation rules (data, from maint.yml) move an active ticket one tier up: after N occurrences
  at its tier, after H hours at its tier, or when a new occurrence is more severe.
- A remediation that keeps being needed (``recurring`` times within ``runs`` runs) opens a ticket
  one tier above the check's, even though the check passes after each remediation.
- After ``resolve_after`` consecutive passes the active ticket is resolved, unless the check is
  flapping: a flapping ticket stays open (one ticket, marked flapping) until the flapping stops.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from maint.alerts import AlertState, FlapSettings
from maint.store.tickets import Event, Ticket

TIERS = ("L1", "L2", "L3")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
ACTOR = "maint"


@dataclass(frozen=True)
class EscalationRule:
    """Escalate an active ticket (one tier up) when any given condition holds."""

    tier: str | None = None  # only tickets at this tier
    occurrences: int | None = None
    hours: float | None = None
    severity_rise: bool = False


@dataclass(frozen=True)
class Policy:
    """The policy settings (``tickets`` in maint.yml)."""

    open_on: frozenset[str] = frozenset({"failed", "error"})
    open_after: int = 1
    resolve_after: int = 1
    reopen_within: float = 24 * 3600.0
    flap: FlapSettings = field(default_factory=FlapSettings)
    escalation: Sequence[EscalationRule] = (EscalationRule(occurrences=3), EscalationRule(severity_rise=True))
    remediation_max_attempts: int = 3
    remediation_runs: int = 10
    remediation_recurring: int = 3
    unreachable: bool = True

    @classmethod
    def from_config(cls, tickets: Mapping[str, Any]) -> Policy:
        """The policy from a validated ``tickets`` section."""
        flap = tickets["flap"]
        remediation = tickets["remediation"]
        return cls(
            open_on=frozenset(tickets["open_on"]),
            open_after=tickets["open_after"],
            resolve_after=tickets["resolve_after"],
            reopen_within=tickets["reopen_within"],
            flap=FlapSettings(window=flap["window"], high=flap["high"], low=flap["low"]),
            escalation=tuple(EscalationRule(**rule) for rule in tickets["escalation"]),
            remediation_max_attempts=remediation["max_attempts"],
            remediation_runs=remediation["runs"],
            remediation_recurring=remediation["recurring"],
            unreachable=tickets["unreachable"],
        )

    @property
    def history_size(self) -> int:
        """How many observations the alert state keeps (enough for flapping and remediation limits)."""
        return max(self.flap.window, self.remediation_runs, self.resolve_after + 1)


@dataclass(frozen=True)
class Finding:
    """What a run found for one (host, check): the input of the policy and of the ticket templates."""

    key: str
    host: str
    check: str
    step_type: str
    playbook: str
    status: str
    summary: str
    severity: str
    tier: str
    run_id: str
    at: str
    failing: bool
    output: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    groups: Sequence[str] = ()
    runbook: str = ""
    reproduce: str = ""
    remediation: Mapping[str, Any] | None = None  # {"step", "type", "status", "summary"} when one ran

    @property
    def remediated(self) -> bool:
        """Whether a remediation task ran for this finding."""
        return self.remediation is not None


def _parse(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))


def _hours_between(start: str, end: str) -> float:
    return (_parse(end) - _parse(start)).total_seconds() / 3600.0


def next_tier(tier: str) -> str:
    """The tier above ``tier`` (L3 stays L3)."""
    index = TIERS.index(tier) if tier in TIERS else 0
    return TIERS[min(index + 1, len(TIERS) - 1)]


def _event(action: str, finding: Finding, text: str, **data: Any) -> Event:
    return Event(action=action, at=finding.at, actor=ACTOR, text=text, run_id=finding.run_id, data=data)


def decide(
    policy: Policy, finding: Finding, before: AlertState, after: AlertState, ticket: Ticket | None
) -> tuple[Ticket | None, list[Event]]:
    """The key's ticket after this finding (None when it has none) and the events to record.

    ``ticket`` is the key's active ticket, else its latest resolved one, else None; it is not
    changed in place (a changed copy is returned).
    """
    ticket = dataclasses.replace(ticket) if ticket is not None else None
    recurring = (
        finding.remediated
        and not finding.failing
        and after.remediations(policy.remediation_runs) >= policy.remediation_recurring
    )
    if finding.failing or recurring:
        if finding.failing and not after.hard:
            return ticket, []  # soft: not yet open_after failures in a row
        tier = next_tier(finding.tier) if recurring and not finding.failing else finding.tier
        if recurring and not finding.failing:
            count = after.remediations(policy.remediation_runs)
            reason = f"remediated {count} times in the last {policy.remediation_runs} runs"
        else:
            reason = ""
        if ticket is not None and ticket.active:
            return ticket, _occurrence(policy, finding, after, ticket, reason)
        if ticket is not None and ticket.resolved and _hours_between(ticket.resolved, finding.at) * 3600 <= (
            policy.reopen_within
        ):
            return ticket, _reopen(finding, after, ticket, reason)
        return _open(finding, after, tier, reason)
    if ticket is None or not ticket.active:
        return ticket, []
    if after.flapping:
        return ticket, []  # one open ticket while it flaps; resolved once it is stable again
    if finding.remediated:
        return ticket, []  # passing only thanks to a remediation: the ticket stays
    if after.consecutive_passes < policy.resolve_after:
        return ticket, []
    ticket.status = "resolved"
    ticket.resolved = finding.at
    ticket.updated = finding.at
    ticket.last_run = finding.run_id
    ticket.flapping = False
    passes = f"{after.consecutive_passes} consecutive passes" if after.consecutive_passes > 1 else "passed"
    text = f"Resolved: {finding.check} on {finding.host} {passes} (run {finding.run_id}): {finding.summary}"
    return ticket, [_event("resolved", finding, text, passes=after.consecutive_passes)]


def _open(finding: Finding, after: AlertState, tier: str, reason: str) -> tuple[Ticket, list[Event]]:
    ticket = Ticket(
        key=finding.key,
        host=finding.host,
        check=finding.check,
        step_type=finding.step_type,
        playbook=finding.playbook,
        tier=tier,
        severity=finding.severity,
        status="open",
        summary=reason or finding.summary,
        opened=finding.at,
        updated=finding.at,
        tier_since=finding.at,
        flapping=after.flapping,
        first_run=finding.run_id,
        last_run=finding.run_id,
        groups=list(finding.groups),
        runbook=finding.runbook,
    )
    text = f"Opened: {finding.check} on {finding.host}: {reason or finding.summary}"
    return ticket, [_event("opened", finding, text, status=finding.status, reason=reason, flapping=after.flapping)]


def _reopen(finding: Finding, after: AlertState, ticket: Ticket, reason: str) -> list[Event]:
    ticket.status = "open"
    ticket.resolved = None
    ticket.occurrences += 1
    ticket.tier_occurrences += 1
    ticket.updated = finding.at
    ticket.last_run = finding.run_id
    ticket.summary = reason or finding.summary
    ticket.flapping = after.flapping
    text = f"Reopened: {finding.check} on {finding.host} fails again: {reason or finding.summary}"
    return [_event("reopened", finding, text, status=finding.status, reason=reason)]


def _occurrence(
    policy: Policy, finding: Finding, after: AlertState, ticket: Ticket, reason: str
) -> list[Event]:
    ticket.occurrences += 1
    ticket.tier_occurrences += 1
    ticket.updated = finding.at
    ticket.last_run = finding.run_id
    ticket.summary = reason or finding.summary
    events = [
        _event(
            "occurrence", finding,
            f"Occurrence {ticket.occurrences}: {finding.check} on {finding.host}: {reason or finding.summary}",
            status=finding.status, occurrence=ticket.occurrences,
        )
    ]  # fmt: skip
    if after.flapping and not ticket.flapping:
        ticket.flapping = True
        events.append(_event("flapping", finding, f"{finding.check} on {finding.host} is flapping"))
    why = _escalation_reason(policy, finding, ticket)
    if why:
        before_tier = ticket.tier
        ticket.tier = next_tier(ticket.tier)
        ticket.tier_since = finding.at
        ticket.tier_occurrences = 0
        ticket.status = "escalated"
        if SEVERITY_RANK.get(finding.severity, 1) > SEVERITY_RANK.get(ticket.severity, 1):
            ticket.severity = finding.severity
        text = f"Escalated {before_tier} -> {ticket.tier}: {why}"
        events.append(_event("escalated", finding, text, **{"from": before_tier, "to": ticket.tier, "why": why}))
    elif SEVERITY_RANK.get(finding.severity, 1) > SEVERITY_RANK.get(ticket.severity, 1):
        ticket.severity = finding.severity
    return events


def _escalation_reason(policy: Policy, finding: Finding, ticket: Ticket) -> str:
    if ticket.tier == TIERS[-1]:
        return ""
    for rule in policy.escalation:
        if rule.tier and rule.tier != ticket.tier:
            continue
        if rule.occurrences and ticket.tier_occurrences >= rule.occurrences:
            return f"{ticket.tier_occurrences} occurrences at {ticket.tier}"
        if rule.hours is not None and _hours_between(ticket.tier_since, finding.at) >= rule.hours:
            return f"open at {ticket.tier} for {_hours_between(ticket.tier_since, finding.at):.0f} h"
        if rule.severity_rise and SEVERITY_RANK.get(finding.severity, 1) > SEVERITY_RANK.get(ticket.severity, 1):
            return f"severity rose from {ticket.severity} to {finding.severity}"
    return ""


def manual(ticket: Ticket, action: str, actor: str, at: str, text: str = "") -> tuple[Ticket, Event]:
    """An operator's action on a ticket (acknowledge, comment, escalate, resolve); returns the changed copy.

    Raises ValueError when the action does not apply (e.g. escalating a resolved ticket).
    """
    ticket = dataclasses.replace(ticket)
    if action != "comment" and not ticket.active:
        raise ValueError(f"ticket {ticket.id} is resolved")
    data: dict[str, Any] = {}
    if action == "acknowledged":
        ticket.status = "acknowledged"
        text = text or f"Acknowledged by {actor}"
    elif action == "escalated":
        if ticket.tier == TIERS[-1]:
            raise ValueError(f"ticket {ticket.id} is already at {ticket.tier}")
        data = {"from": ticket.tier, "to": next_tier(ticket.tier), "why": text or f"by {actor}"}
        ticket.tier = next_tier(ticket.tier)
        ticket.tier_since = at
        ticket.tier_occurrences = 0
        ticket.status = "escalated"
        text = f"Escalated {data['from']} -> {data['to']} by {actor}" + (f": {text}" if text else "")
    elif action == "resolved":
        ticket.status = "resolved"
        ticket.resolved = at
        ticket.flapping = False
        text = f"Resolved by {actor}" + (f": {text}" if text else "")
    elif action != "comment":
        raise ValueError(f"unknown action {action!r}")
    ticket.updated = at
    return ticket, Event(action=action, at=at, actor=actor, text=text, data=data)
