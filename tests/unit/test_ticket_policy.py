"""The ticket policy: open, occurrence, escalate, reopen, resolve, flapping, recurring remediation, manual actions."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from maint.alerts import AlertState, FlapSettings
from maint.store.tickets import Ticket
from maint.tickets.policy import EscalationRule, Finding, Policy, decide, manual, next_tier

KEY = "db1/backup"
OPENED = "2026-11-20T02:00:00.000Z"


def at(day: int = 20, hour: int = 2, minute: int = 0) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00.000Z"


def finding(
    failing: bool = True,
    when: str = OPENED,
    run_id: str = "run-2",
    severity: str = "warning",
    tier: str = "L1",
    remediated: bool = False,
    summary: str = "last backup is 3 days old",
) -> Finding:
    return Finding(
        key=KEY,
        host="db1",
        check="backup",
        step_type="backup.age",
        playbook="daily",
        status="failed" if failing else "ok",
        summary=summary if failing else "last backup is 2 hours old",
        severity=severity,
        tier=tier,
        run_id=run_id,
        at=when,
        failing=failing,
        groups=("db", "prod"),
        runbook="restart the backup job",
        remediation={"step": "backup.remediate", "type": "shell", "status": "ok", "summary": "restarted"}
        if remediated
        else None,
    )


def state(
    failing: bool = True,
    hard: bool | None = None,
    failures: int | None = None,
    passes: int | None = None,
    flapping: bool = False,
    remediated_runs: int = 0,
) -> AlertState:
    """An alert state; ``remediated_runs`` adds that many remediated entries to the history."""
    failures = (1 if failing else 0) if failures is None else failures
    passes = (0 if failing else 1) if passes is None else passes
    entries = tuple({"run": f"run-{index}", "fail": False, "remediated": True} for index in range(remediated_runs))
    return AlertState(
        key=KEY,
        host="db1",
        check="backup",
        failing=failing,
        consecutive_failures=failures,
        consecutive_passes=passes,
        hard=failing if hard is None else hard,
        flapping=flapping,
        since=OPENED,
        last_run="run-1",
        history=entries,
    )


def ticket(**changes: Any) -> Ticket:
    values: dict[str, Any] = {
        "key": KEY,
        "host": "db1",
        "check": "backup",
        "step_type": "backup.age",
        "playbook": "daily",
        "tier": "L1",
        "severity": "warning",
        "status": "open",
        "summary": "last backup is 3 days old",
        "opened": OPENED,
        "updated": OPENED,
        "tier_since": OPENED,
        "first_run": "run-1",
        "last_run": "run-1",
        "groups": ["db", "prod"],
        "id": 7,
    }
    values.update(changes)
    return Ticket(**values)


def actions(events: list[Any]) -> list[str]:
    return [event.action for event in events]


NO_ESCALATION = Policy(escalation=())


# Opening


def test_hard_failure_without_a_ticket_opens_one() -> None:
    new, events = decide(Policy(), finding(), state(failing=False), state(), None)
    assert new is not None
    assert actions(events) == ["opened"]
    assert new.id is None
    assert new.status == "open"
    assert (new.key, new.host, new.check, new.step_type, new.playbook) == (KEY, "db1", "backup", "backup.age", "daily")
    assert (new.tier, new.severity) == ("L1", "warning")
    assert new.occurrences == 1 and new.tier_occurrences == 1
    assert new.opened == new.updated == new.tier_since == OPENED
    assert new.first_run == new.last_run == "run-2"
    assert new.groups == ["db", "prod"]
    assert new.runbook == "restart the backup job"
    assert new.summary == "last backup is 3 days old"
    assert not new.flapping
    event = events[0]
    assert event.at == OPENED and event.run_id == "run-2" and event.actor == "maint"
    assert "backup on db1" in event.text and "3 days old" in event.text
    assert event.data["status"] == "failed"


def test_the_new_ticket_takes_the_tier_and_severity_of_the_finding() -> None:
    new, _ = decide(Policy(), finding(severity="critical", tier="L2"), state(failing=False), state(), None)
    assert new is not None
    assert (new.tier, new.severity) == ("L2", "critical")


def test_soft_failure_opens_nothing() -> None:
    policy = Policy(open_after=3)
    new, events = decide(policy, finding(), state(failing=False), state(hard=False, failures=1), None)
    assert new is None
    assert events == []


def test_soft_failure_adds_no_occurrence_to_an_active_ticket() -> None:
    current = ticket()
    new, events = decide(Policy(open_after=2), finding(), state(failing=False), state(hard=False), current)
    assert events == []
    assert new is not None and new.occurrences == 1


def test_a_ticket_opened_while_flapping_is_marked_flapping() -> None:
    new, events = decide(Policy(), finding(), state(), state(flapping=True), None)
    assert new is not None and new.flapping
    assert events[0].data["flapping"] is True


def test_passing_without_a_ticket_does_nothing() -> None:
    new, events = decide(Policy(), finding(failing=False), state(), state(failing=False), None)
    assert new is None
    assert events == []


# Occurrences


def test_failure_with_an_active_ticket_adds_an_occurrence_not_a_ticket() -> None:
    current = ticket()
    when = at(hour=3)
    new, events = decide(NO_ESCALATION, finding(when=when, run_id="run-3"), state(), state(failures=2), current)
    assert actions(events) == ["occurrence"]
    assert new is not None
    assert new.id == 7  # the same ticket
    assert new.occurrences == 2 and new.tier_occurrences == 2
    assert new.last_run == "run-3" and new.first_run == "run-1"
    assert new.updated == when and new.opened == OPENED
    assert new.status == "open"
    assert events[0].data["occurrence"] == 2
    assert "Occurrence 2" in events[0].text


def test_occurrences_on_an_acknowledged_ticket_keep_it_acknowledged() -> None:
    new, events = decide(NO_ESCALATION, finding(), state(), state(), ticket(status="acknowledged"))
    assert actions(events) == ["occurrence"]
    assert new is not None and new.status == "acknowledged"


def test_occurrence_updates_the_summary() -> None:
    new, _ = decide(NO_ESCALATION, finding(summary="no backup at all"), state(), state(), ticket())
    assert new is not None and new.summary == "no backup at all"


def test_decide_does_not_change_the_ticket_passed_in() -> None:
    current = ticket(tier_occurrences=2, occurrences=2)
    snapshot = dataclasses.replace(current, groups=list(current.groups), refs=dict(current.refs))
    new, events = decide(Policy(), finding(severity="critical", when=at(hour=9)), state(), state(), current)
    assert actions(events) == ["occurrence", "escalated"]
    assert new is not current
    assert current == snapshot


def test_decide_does_not_change_a_resolved_ticket_it_reopens() -> None:
    current = ticket(status="resolved", resolved=at(hour=3))
    snapshot = dataclasses.replace(current)
    new, events = decide(Policy(), finding(when=at(hour=4)), state(failing=False), state(), current)
    assert actions(events) == ["reopened"]
    assert new is not current and current == snapshot


# Escalation


def test_escalation_after_n_occurrences_at_the_tier() -> None:
    policy = Policy(escalation=(EscalationRule(occurrences=3),))
    current = ticket()
    new, events = decide(policy, finding(when=at(hour=3)), state(), state(), current)
    assert actions(events) == ["occurrence"]
    assert new is not None and new.tier == "L1" and new.tier_occurrences == 2
    when = at(hour=4)
    new, events = decide(policy, finding(when=when), state(), state(), new)
    assert actions(events) == ["occurrence", "escalated"]
    assert new is not None
    assert new.tier == "L2"
    assert new.status == "escalated"
    assert new.tier_occurrences == 0
    assert new.occurrences == 3
    assert new.tier_since == when
    escalated = events[1]
    assert escalated.data == {"from": "L1", "to": "L2", "why": "3 occurrences at L1"}
    assert "L1 -> L2" in escalated.text


def test_escalation_goes_l1_l2_l3_and_never_past_l3() -> None:
    policy = Policy(escalation=(EscalationRule(occurrences=1),))
    current: Ticket | None = ticket(tier_occurrences=0)
    tiers = []
    escalations = 0
    for hour in range(3, 8):
        current, events = decide(policy, finding(when=at(hour=hour)), state(), state(), current)
        assert current is not None
        tiers.append(current.tier)
        escalations += actions(events).count("escalated")
    assert tiers == ["L2", "L3", "L3", "L3", "L3"]
    assert escalations == 2


def test_escalation_after_hours_at_the_tier() -> None:
    policy = Policy(escalation=(EscalationRule(hours=24),))
    current = ticket()
    new, events = decide(policy, finding(when=at(day=21, hour=1)), state(), state(), current)
    assert actions(events) == ["occurrence"]  # 23 hours
    new, events = decide(policy, finding(when=at(day=21, hour=2)), state(), state(), new)
    assert actions(events) == ["occurrence", "escalated"]
    assert new is not None and new.tier == "L2" and new.tier_since == at(day=21, hour=2)
    assert events[-1].data["why"] == "open at L1 for 24 h"


def test_escalation_on_severity_rise_updates_the_severity() -> None:
    policy = Policy(escalation=(EscalationRule(severity_rise=True),))
    new, events = decide(policy, finding(severity="critical"), state(), state(), ticket(severity="warning"))
    assert actions(events) == ["occurrence", "escalated"]
    assert new is not None
    assert new.tier == "L2"
    assert new.severity == "critical"
    assert events[-1].data["why"] == "severity rose from warning to critical"


def test_same_or_lower_severity_does_not_escalate_or_lower_the_severity() -> None:
    policy = Policy(escalation=(EscalationRule(severity_rise=True),))
    new, events = decide(policy, finding(severity="info"), state(), state(), ticket(severity="warning"))
    assert actions(events) == ["occurrence"]
    assert new is not None and new.severity == "warning" and new.tier == "L1"


def test_higher_severity_without_a_severity_rule_updates_the_severity_only() -> None:
    new, events = decide(NO_ESCALATION, finding(severity="critical"), state(), state(), ticket())
    assert actions(events) == ["occurrence"]
    assert new is not None and new.severity == "critical" and new.tier == "L1"


def test_escalation_rule_restricted_to_a_tier() -> None:
    policy = Policy(escalation=(EscalationRule(tier="L2", occurrences=2),))
    at_l1, events = decide(policy, finding(), state(), state(), ticket(tier="L1", tier_occurrences=5))
    assert actions(events) == ["occurrence"]
    assert at_l1 is not None and at_l1.tier == "L1"
    at_l2, events = decide(policy, finding(), state(), state(), ticket(tier="L2", tier_occurrences=1))
    assert actions(events) == ["occurrence", "escalated"]
    assert at_l2 is not None and at_l2.tier == "L3"


def test_any_rule_escalates_and_the_first_matching_one_gives_the_reason() -> None:
    policy = Policy(escalation=(EscalationRule(occurrences=10), EscalationRule(hours=1)))
    new, events = decide(policy, finding(when=at(hour=5)), state(), state(), ticket())
    assert new is not None and new.tier == "L2"
    assert events[-1].data["why"] == "open at L1 for 3 h"


def test_default_policy_escalates_at_the_third_occurrence() -> None:
    current: Ticket | None = ticket()
    history = []
    for hour in (3, 4):
        current, events = decide(Policy(), finding(when=at(hour=hour)), state(), state(), current)
        history.append(actions(events))
    assert history == [["occurrence"], ["occurrence", "escalated"]]


def test_next_tier() -> None:
    assert [next_tier(tier) for tier in ("L1", "L2", "L3")] == ["L2", "L3", "L3"]


# Reopening


def test_failure_within_reopen_within_reopens_the_resolved_ticket() -> None:
    resolved = ticket(status="resolved", resolved=at(hour=3), occurrences=2, tier_occurrences=2, flapping=False)
    when = at(hour=10)
    new, events = decide(Policy(reopen_within=24 * 3600), finding(when=when, run_id="run-9"), state(failing=False),
                         state(flapping=True), resolved)  # fmt: skip
    assert actions(events) == ["reopened"]
    assert new is not None
    assert new.id == 7
    assert new.status == "open"
    assert new.resolved is None
    assert new.occurrences == 3 and new.tier_occurrences == 3
    assert new.updated == when and new.last_run == "run-9"
    assert new.flapping


def test_failure_after_reopen_within_opens_a_new_ticket() -> None:
    resolved = ticket(status="resolved", resolved=at(day=20, hour=3))
    when = at(day=21, hour=4)  # 25 hours later
    new, events = decide(Policy(reopen_within=24 * 3600), finding(when=when), state(failing=False), state(),
                         resolved)  # fmt: skip
    assert actions(events) == ["opened"]
    assert new is not None
    assert new.id is None
    assert new.opened == when
    assert new.occurrences == 1


def test_reopen_within_is_inclusive_at_the_limit() -> None:
    resolved = ticket(status="resolved", resolved=at(hour=2))
    new, events = decide(Policy(reopen_within=3600), finding(when=at(hour=3)), state(failing=False), state(), resolved)
    assert actions(events) == ["reopened"]
    assert new is not None and new.id == 7


# Resolution


def test_resolve_after_resolve_after_passes() -> None:
    policy = Policy(resolve_after=2)
    current = ticket(flapping=True)
    new, events = decide(policy, finding(failing=False), state(), state(failing=False, passes=1), current)
    assert events == []
    assert new is not None and new.status == "open"
    when = at(hour=5)
    new, events = decide(policy, finding(failing=False, when=when, run_id="run-5"), state(failing=False),
                         state(failing=False, passes=2), new)  # fmt: skip
    assert actions(events) == ["resolved"]
    assert new is not None
    assert new.status == "resolved"
    assert new.resolved == when and new.updated == when
    assert new.last_run == "run-5"
    assert not new.flapping
    assert events[0].data == {"passes": 2}
    assert "2 consecutive passes" in events[0].text


def test_resolve_after_one_pass_by_default() -> None:
    new, events = decide(Policy(), finding(failing=False), state(), state(failing=False), ticket())
    assert actions(events) == ["resolved"]
    assert new is not None and not new.active
    assert "passed" in events[0].text


def test_no_resolution_while_flapping() -> None:
    new, events = decide(Policy(), finding(failing=False), state(), state(failing=False, flapping=True), ticket())
    assert events == []
    assert new is not None and new.status == "open"


def test_resolution_once_flapping_stops() -> None:
    new, events = decide(Policy(), finding(failing=False), state(failing=False, flapping=True),
                         state(failing=False, passes=4, flapping=False), ticket(flapping=True))  # fmt: skip
    assert actions(events) == ["resolved"]
    assert new is not None and not new.flapping


def test_no_resolution_when_passing_thanks_to_a_remediation() -> None:
    new, events = decide(Policy(), finding(failing=False, remediated=True), state(),
                         state(failing=False, remediated_runs=1), ticket())  # fmt: skip
    assert events == []
    assert new is not None and new.status == "open"


def test_passing_with_a_resolved_ticket_does_nothing() -> None:
    resolved = ticket(status="resolved", resolved=at(hour=3))
    new, events = decide(Policy(), finding(failing=False), state(failing=False), state(failing=False), resolved)
    assert events == []
    assert new is not None and new.status == "resolved" and new.resolved == at(hour=3)


# Flapping


def test_flapping_marks_the_ticket_once() -> None:
    current = ticket()
    flapping = state(flapping=True)
    new, events = decide(NO_ESCALATION, finding(), state(), flapping, current)
    assert actions(events) == ["occurrence", "flapping"]
    assert new is not None and new.flapping
    assert "flapping" in events[1].text
    again, events = decide(NO_ESCALATION, finding(when=at(hour=4)), flapping, flapping, new)
    assert actions(events) == ["occurrence"]
    assert again is not None and again.flapping


# Recurring remediation


def test_recurring_remediation_opens_a_ticket_one_tier_up() -> None:
    policy = Policy(remediation_runs=10, remediation_recurring=3)
    after = state(failing=False, remediated_runs=3)
    new, events = decide(policy, finding(failing=False, remediated=True), state(failing=False), after, None)
    assert actions(events) == ["opened"]
    assert new is not None
    assert new.tier == "L2"
    assert new.summary == "remediated 3 times in the last 10 runs"
    assert events[0].data["reason"] == "remediated 3 times in the last 10 runs"
    assert "remediated 3 times" in events[0].text


def test_recurring_remediation_from_l3_stays_l3() -> None:
    policy = Policy(remediation_recurring=2)
    after = state(failing=False, remediated_runs=2)
    new, _ = decide(policy, finding(failing=False, remediated=True, tier="L3"), state(failing=False), after, None)
    assert new is not None and new.tier == "L3"


def test_remediation_below_the_recurring_count_opens_nothing() -> None:
    policy = Policy(remediation_recurring=3)
    after = state(failing=False, remediated_runs=2)
    new, events = decide(policy, finding(failing=False, remediated=True), state(failing=False), after, None)
    assert new is None
    assert events == []


def test_recurring_remediation_counts_only_within_runs() -> None:
    policy = Policy(remediation_runs=2, remediation_recurring=3)
    after = state(failing=False, remediated_runs=5)
    new, events = decide(policy, finding(failing=False, remediated=True), state(failing=False), after, None)
    assert new is None and events == []


def test_recurring_remediation_with_an_active_ticket_adds_an_occurrence_with_the_reason() -> None:
    policy = Policy(escalation=(), remediation_recurring=3)
    after = state(failing=False, remediated_runs=4)
    new, events = decide(policy, finding(failing=False, remediated=True), state(failing=False), after, ticket())
    assert actions(events) == ["occurrence"]
    assert new is not None and new.occurrences == 2
    assert new.summary == "remediated 4 times in the last 10 runs"


# Settings


def test_policy_from_a_validated_tickets_section() -> None:
    tickets = {
        "open_on": ["failed", "warning"], "open_after": 2, "resolve_after": 3, "reopen_within": 7200.0,
        "flap": {"window": 8, "high": 40.0, "low": 20.0},
        "escalation": [{"occurrences": 4}, {"tier": "L2", "hours": 12.0}],
        "remediation": {"max_attempts": 2, "runs": 15, "recurring": 4}, "unreachable": False,
    }  # fmt: skip
    policy = Policy.from_config(tickets)
    assert policy.open_on == frozenset({"failed", "warning"})
    assert (policy.open_after, policy.resolve_after, policy.reopen_within) == (2, 3, 7200.0)
    assert policy.flap == FlapSettings(window=8, high=40.0, low=20.0)
    assert policy.escalation == (EscalationRule(occurrences=4), EscalationRule(tier="L2", hours=12.0))
    assert (policy.remediation_max_attempts, policy.remediation_runs, policy.remediation_recurring) == (2, 15, 4)
    assert policy.unreachable is False
    assert policy.history_size == 15


# Operator actions


def test_manual_acknowledge() -> None:
    current = ticket()
    new, event = manual(current, "acknowledged", "alice", at(hour=9))
    assert new.status == "acknowledged"
    assert new.updated == at(hour=9)
    assert event.action == "acknowledged" and event.actor == "alice" and event.run_id is None
    assert event.text == "Acknowledged by alice"
    assert current.status == "open"


def test_manual_comment_keeps_the_status() -> None:
    new, event = manual(ticket(status="escalated"), "comment", "bob", at(hour=9), "looking into it")
    assert new.status == "escalated"
    assert event.action == "comment" and event.text == "looking into it"
    assert new.updated == at(hour=9)


def test_manual_comment_on_a_resolved_ticket_is_allowed() -> None:
    new, event = manual(ticket(status="resolved", resolved=at(hour=3)), "comment", "bob", at(hour=9), "root cause")
    assert new.status == "resolved"
    assert event.text == "root cause"


def test_manual_escalate() -> None:
    current = ticket(tier_occurrences=2)
    new, event = manual(current, "escalated", "alice", at(hour=9), "needs a DBA")
    assert (new.tier, new.status, new.tier_occurrences, new.tier_since) == ("L2", "escalated", 0, at(hour=9))
    assert event.data == {"from": "L1", "to": "L2", "why": "needs a DBA"}
    assert event.text == "Escalated L1 -> L2 by alice: needs a DBA"
    assert current.tier == "L1"


def test_manual_escalate_without_text_gives_the_actor_as_the_reason() -> None:
    new, event = manual(ticket(tier="L2"), "escalated", "alice", at(hour=9))
    assert new.tier == "L3"
    assert event.data["why"] == "by alice"


def test_manual_resolve() -> None:
    new, event = manual(ticket(flapping=True), "resolved", "carol", at(hour=9), "fixed the cron job")
    assert new.status == "resolved"
    assert new.resolved == at(hour=9)
    assert not new.flapping and not new.active
    assert event.text == "Resolved by carol: fixed the cron job"


def test_manual_escalate_at_l3_is_refused() -> None:
    with pytest.raises(ValueError, match="already at L3"):
        manual(ticket(tier="L3"), "escalated", "alice", at(hour=9))


@pytest.mark.parametrize("action", ["acknowledged", "escalated", "resolved"])
def test_manual_actions_on_a_resolved_ticket_are_refused(action: str) -> None:
    with pytest.raises(ValueError, match="is resolved"):
        manual(ticket(status="resolved", resolved=at(hour=3)), action, "alice", at(hour=9))


def test_manual_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action 'close'"):
        manual(ticket(), "close", "alice", at(hour=9))
