"""Host patterns, routing rules, declared maintenance, findings from results and ticket messages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from maint.errors import BadInput
from maint.store.tickets import Event, Ticket
from maint.tickets import StepInfo, findings, host_matches, quiet_reason, render_message, routes
from maint.tickets.backends import ACTIONS, TicketMessage
from maint.tickets.policy import Finding, Policy

RUN = {"id": "run-7", "started": "2026-11-20T02:00:00.000Z", "playbooks": [{"name": "daily"}]}


# host_matches


@pytest.mark.parametrize(
    ("pattern", "host", "groups", "expected"),
    [
        ("web1", "web1", [], True),
        ("web2", "web1", [], False),
        ("web", "web1", ["web", "prod"], True),
        ("db", "web1", ["web", "prod"], False),
        ("web*", "web1", [], True),
        ("web?", "web12", [], False),
        ("*.example.org", "mail.example.org", [], True),
        ("all", "anything", [], True),
        ("*", "anything", [], True),
        ("db:web", "web1", ["web"], True),
        ("db,web", "web1", ["web"], True),
        ("db, mail", "web1", ["web"], False),
        ("web:!web2", "web1", ["web"], True),
        ("web:!web2", "web2", ["web"], False),
        ("all:!staging", "web1", ["web", "staging"], False),
        ("!staging", "web1", ["web"], True),  # only exclusions: every other host
        ("!staging", "web1", ["staging"], False),
        ("web:&prod", "web1", ["web", "prod"], True),
        ("web:&prod", "web2", ["web", "staging"], False),
        ("&prod", "db1", ["db", "prod"], True),  # only an intersection: every host in it
        ("web:&prod:!web3", "web3", ["web", "prod"], False),
        ("WEB1", "web1", [], False),  # names are case-sensitive
    ],
)
def test_host_matches(pattern: str, host: str, groups: list[str], expected: bool) -> None:
    assert host_matches(pattern, host, groups) is expected


# routes


def ticket(**changes: Any) -> Ticket:
    values: dict[str, Any] = {
        "key": "db1/backup", "host": "db1", "check": "backup", "step_type": "backup.age", "playbook": "daily",
        "tier": "L1", "severity": "warning", "status": "open", "summary": "last backup is 3 days old",
        "opened": "2026-11-20T02:00:00.000Z", "updated": "2026-11-20T02:00:00.000Z",
        "tier_since": "2026-11-20T02:00:00.000Z", "groups": ["db", "prod"], "id": 3,
    }  # fmt: skip
    values.update(changes)
    return Ticket(**values)


def test_routes_every_matching_rule_in_order() -> None:
    rules: list[dict[str, Any]] = [
        {"backends": ["desk"], "queue": "helpdesk"},
        {"group": ["db"], "backends": ["chat"]},
        {"group": ["web"], "backends": ["mail"]},
    ]
    assert routes(ticket(), rules) == [("desk", "helpdesk"), ("chat", None)]


def test_routes_the_first_queue_wins() -> None:
    rules: list[dict[str, Any]] = [
        {"tier": ["L1"], "backends": ["desk"], "queue": "first-line"},
        {"backends": ["desk", "chat"], "queue": "everyone"},
    ]
    assert routes(ticket(), rules) == [("desk", "first-line"), ("chat", "everyone")]


def test_routes_ignore_local() -> None:
    rules: list[dict[str, Any]] = [{"backends": ["local"]}, {"backends": ["local", "desk"], "queue": "q"}]
    assert routes(ticket(), rules) == [("desk", "q")]


def test_routes_without_rules_go_nowhere() -> None:
    assert routes(ticket(), []) == []


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        ({"group": ["db"]}, True),
        ({"group": ["web", "prod"]}, True),
        ({"group": ["web"]}, False),
        ({"group": ["all"]}, True),
        ({"check": ["backup*"]}, True),
        ({"check": ["disk", "load"]}, False),
        ({"check": ["backup.*"]}, False),  # the step id, not the type
        ({"tier": ["L1", "L2"]}, True),
        ({"tier": ["L3"]}, False),
        ({"severity": ["warning", "critical"]}, True),
        ({"severity": ["critical"]}, False),
        ({"group": ["db"], "tier": ["L3"]}, False),  # every given key must match
        ({"group": ["db"], "check": ["back*"], "tier": ["L1"], "severity": ["warning"]}, True),
    ],
)
def test_routes_filters(rule: dict[str, Any], matches: bool) -> None:
    expected = [("desk", None)] if matches else []
    assert routes(ticket(), [{**rule, "backends": ["desk"]}]) == expected


def test_routes_follow_the_tier_after_an_escalation() -> None:
    rules = [{"tier": ["L1"], "backends": ["desk"]}, {"tier": ["L2", "L3"], "backends": ["pager"]}]
    assert routes(ticket(tier="L2"), rules) == [("pager", None)]


# quiet_reason


def finding(**changes: Any) -> Finding:
    values: dict[str, Any] = {
        "key": "web1/nginx", "host": "web1", "check": "nginx", "step_type": "service.running",
        "playbook": "updates-apply", "status": "failed", "summary": "nginx is not running", "severity": "warning",
        "tier": "L1", "run_id": "run-7", "at": "2026-11-28T03:00:00.000Z", "failing": True,
        "groups": ["web", "prod"],
    }  # fmt: skip
    values.update(changes)
    return Finding(**values)


def quiet(rules: list[dict[str, Any]], playbooks: Sequence[str] = ("updates-apply",), **changes: Any) -> str | None:
    found = finding(**changes)
    return quiet_reason(rules, found, playbooks, found.groups)


def test_quiet_without_rules() -> None:
    assert quiet([]) is None


def test_quiet_rule_with_only_a_reason_covers_everything() -> None:
    assert quiet([{"reason": "freeze"}]) == "freeze"
    assert quiet([{}]) == "declared maintenance"


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [("web", "patching"), ("web1", "patching"), ("db", None), ("all:!prod", None), ("web:&prod", "patching")],
)
def test_quiet_hosts(hosts: str, expected: str | None) -> None:
    assert quiet([{"hosts": hosts, "reason": "patching"}]) == expected


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        (["nginx"], "patching"),
        (["ngi*"], "patching"),
        (["service.*"], "patching"),  # by step type
        (["service.running", "disk"], "patching"),
        (["disk", "load"], None),
        (["service"], None),
    ],
)
def test_quiet_checks_by_id_or_type(checks: list[str], expected: str | None) -> None:
    assert quiet([{"checks": checks, "reason": "patching"}]) == expected


def test_quiet_playbooks() -> None:
    rules = [{"playbooks": ["updates-apply"], "reason": "patching"}]
    assert quiet(rules, playbooks=["daily", "updates-apply"]) == "patching"
    assert quiet(rules, playbooks=["daily"]) is None


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"start": "2026-11-28T02:00:00Z", "end": "2026-11-28T04:00:00Z"}, "patching"),
        ({"start": "2026-11-28T03:00:00Z"}, "patching"),  # inclusive start
        ({"end": "2026-11-28T03:00:00Z"}, "patching"),  # inclusive end
        ({"start": "2026-11-28T03:00:01Z"}, None),
        ({"end": "2026-11-28T02:59:59Z"}, None),
        ({"start": "2026-11-28T04:00:00+01:00", "end": "2026-11-28T05:00:00+01:00"}, "patching"),  # 03:00-04:00 UTC
        ({"start": "2026-11-28T02:30:00"}, "patching"),  # no zone: UTC
        ({"start": "2026-11-28T02:00:00+00:00", "end": "2026-11-28T02:30:00+00:00"}, None),
    ],
)
def test_quiet_start_and_end(window: dict[str, str], expected: str | None) -> None:
    assert quiet([{**window, "reason": "patching"}]) == expected


def test_quiet_first_covering_rule_gives_the_reason() -> None:
    rules: list[dict[str, Any]] = [
        {"hosts": "db", "reason": "database migration"},
        {"checks": ["nginx"], "reason": "CHG-1 nginx upgrade"},
        {"reason": "freeze"},
    ]
    assert quiet(rules) == "CHG-1 nginx upgrade"


# findings


def result(
    host: str,
    step: str,
    status: str,
    attempt: int = 1,
    summary: str = "",
    started: str = "2026-11-20T02:00:05.000Z",
    **changes: Any,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "host": host, "playbook": "daily", "step": step, "type": "shell", "status": status, "exit_code": 0,
        "summary": summary or f"{step} {status}", "metrics": {}, "duration": 0.1, "started": started,
        "attempt": attempt, "severity": "warning", "tier": "L1", "output": "",
    }  # fmt: skip
    values.update(changes)
    return values


def reproduce(playbook: str, host: str) -> str:
    return f"maint run {playbook or 'PLAYBOOK'} -l {host}"


def find(
    results: list[dict[str, Any]],
    policy: Policy | None = None,
    groups: dict[str, list[str]] | None = None,
    steps: dict[tuple[str, str], StepInfo] | None = None,
) -> dict[str, Finding]:
    found = findings(RUN, results, policy or Policy(), groups or {}, steps or {}, reproduce)
    keys = [item.key for item in found]
    assert len(keys) == len(set(keys)), keys
    return {item.key: item for item in found}


def test_findings_one_per_host_and_check_from_the_result() -> None:
    found = find(
        [
            result("web1", "disk", "failed", summary="97% used", metrics={"used_percent": 97.0}, output="/ 97%",
                   severity="critical", tier="L2", type="disk.usage"),
            result("web1", "load", "ok"),
        ],
        groups={"web1": ["web", "prod"]},
        steps={("daily", "disk"): StepInfo(runbook="clean /var/log")},
    )  # fmt: skip
    assert set(found) == {"web1/disk", "web1/load", "web1/unreachable"}
    disk = found["web1/disk"]
    assert disk.failing
    assert (disk.host, disk.check, disk.step_type, disk.playbook) == ("web1", "disk", "disk.usage", "daily")
    assert (disk.status, disk.summary, disk.severity, disk.tier) == ("failed", "97% used", "critical", "L2")
    assert (disk.run_id, disk.at) == ("run-7", "2026-11-20T02:00:05.000Z")
    assert disk.metrics == {"used_percent": 97.0}
    assert disk.output == "/ 97%"
    assert list(disk.groups) == ["web", "prod"]
    assert disk.runbook == "clean /var/log"
    assert disk.reproduce == "maint run daily -l web1"
    assert disk.remediation is None and not disk.remediated
    assert not found["web1/load"].failing
    assert found["web1/load"].runbook == ""


def test_findings_error_fails_and_warning_fails_only_when_in_open_on() -> None:
    results = [result("web1", "disk", "warning"), result("web1", "load", "error"), result("web1", "ntp", "ok")]
    default = find(results)
    assert (default["web1/disk"].failing, default["web1/load"].failing, default["web1/ntp"].failing) == (
        False, True, False,
    )  # fmt: skip
    strict = find(results, policy=Policy(open_on=frozenset({"failed", "error", "warning"})))
    assert strict["web1/disk"].failing
    assert strict["web1/disk"].status == "warning"


def test_findings_the_last_attempt_wins() -> None:
    found = find([
        result("web1", "nginx", "failed", attempt=1),
        result("web1", "nginx", "ok", attempt=2, summary="running"),
    ])
    assert not found["web1/nginx"].failing
    assert found["web1/nginx"].summary == "running"
    reordered = find([
        result("web1", "nginx", "ok", attempt=2, summary="running"),
        result("web1", "nginx", "failed", attempt=1),
    ])
    assert reordered["web1/nginx"].status == "ok"


def test_findings_attach_the_remediation_to_its_check() -> None:
    found = find([
        result("web1", "nginx", "failed", attempt=1),
        result("web1", "nginx.remediate", "ok", summary="restarted nginx", type="service.restart"),
        result("web1", "nginx", "ok", attempt=2),
    ])
    assert set(found) == {"web1/nginx", "web1/unreachable"}
    nginx = found["web1/nginx"]
    assert nginx.remediated
    assert nginx.remediation == {
        "step": "nginx.remediate", "type": "service.restart", "status": "ok", "summary": "restarted nginx",
    }  # fmt: skip
    assert not nginx.failing


def test_findings_a_remediation_on_another_host_is_not_attached() -> None:
    found = find([
        result("web1", "nginx", "ok"),
        result("web2", "nginx.remediate", "ok"),
        result("web2", "nginx", "ok"),
    ])
    assert not found["web1/nginx"].remediated
    assert found["web2/nginx"].remediated


def test_findings_ignore_skipped_results() -> None:
    found = find([result("web1", "nginx", "skipped"), result("web1", "disk", "ok")])
    assert set(found) == {"web1/disk", "web1/unreachable"}


def test_findings_an_unreachable_host_gives_one_failing_finding() -> None:
    found = find(
        [
            result("db1", "disk", "unreachable", summary="connection refused", started="2026-11-20T02:00:01.000Z"),
            result("db1", "backup", "unreachable", summary="connection refused"),
            result("db1", "load", "unreachable", summary="connection refused"),
        ],
        groups={"db1": ["db"]},
    )
    assert set(found) == {"db1/unreachable"}
    down = found["db1/unreachable"]
    assert down.failing
    assert (down.host, down.check, down.step_type, down.status) == ("db1", "unreachable", "ssh", "unreachable")
    assert (down.severity, down.tier) == ("critical", "L1")
    assert down.summary == "connection refused"
    assert down.at == "2026-11-20T02:00:01.000Z"
    assert down.playbook == "daily"
    assert list(down.groups) == ["db"]
    assert down.reproduce == "maint run daily -l db1"


def test_findings_a_host_that_answered_is_reachable_even_with_some_unreachable_results() -> None:
    found = find([
        result("db1", "disk", "ok"),
        result("db1", "backup", "error"),
        result("db1", "load", "unreachable", summary="host stopped responding"),
    ])
    assert set(found) == {"db1/disk", "db1/backup", "db1/unreachable"}
    reachable = found["db1/unreachable"]
    assert not reachable.failing
    assert reachable.status == "ok"
    assert reachable.at == RUN["started"]


def test_findings_every_reached_host_gets_a_passing_unreachable_finding() -> None:
    found = find([result("web1", "disk", "ok"), result("web2", "disk", "unreachable")])
    assert not found["web1/unreachable"].failing
    assert found["web2/unreachable"].failing
    assert "web2/disk" not in found


def test_findings_without_unreachable_tickets() -> None:
    found = find([result("web1", "disk", "ok"), result("web2", "disk", "unreachable")],
                 policy=Policy(unreachable=False))  # fmt: skip
    assert set(found) == {"web1/disk"}


# render_message


def message(
    project_dir: Path,
    action: str = "opened",
    the_finding: Finding | None = None,
    the_ticket: Ticket | None = None,
    event_id: int = 42,
    queue: str | None = "helpdesk",
) -> dict[str, Any]:
    current = the_ticket or ticket(host="web1", check="nginx", key="web1/nginx", groups=["web"],
                                   runbook="systemctl restart nginx", summary="nginx is not running")  # fmt: skip
    event = Event(action=action, at="2026-11-28T03:00:00.000Z", actor="maint",
                  text=f"{action.capitalize()}: nginx on web1", run_id="run-7")  # fmt: skip
    if the_finding is None and action != "comment":
        the_finding = finding(output="line 1\nline 2\nFailed to start nginx", metrics={"restarts": 3.0},
                              reproduce="maint run updates-apply -l web1")  # fmt: skip
    return render_message(project_dir, current, event, event_id, the_finding, queue)


def test_message_on_open(tmp_path: Path) -> None:
    sent = message(tmp_path)
    assert sent["action"] == "open"
    assert sent["subject"] == "[maint L1] nginx on web1: nginx is not running"
    body = sent["body"]
    assert body.startswith("Opened: nginx on web1\n")
    assert body.endswith("-- maint maint-event-42\n")
    assert "Host:      web1 (groups: web)" in body
    assert "Check:     nginx (service.running, playbook updates-apply)" in body
    assert "Reproduce: maint run updates-apply -l web1" in body
    assert "Output (last lines):\n    line 1\n    line 2\n    Failed to start nginx" in body
    assert "Runbook:\n    systemctl restart nginx" in body
    assert "Metrics:   restarts=3.0" in body
    assert {key: sent[key] for key in ("key", "ticket_id", "event_id", "host", "check", "tier", "severity")} == {
        "key": "web1/nginx", "ticket_id": 3, "event_id": 42, "host": "web1", "check": "nginx", "tier": "L1",
        "severity": "warning",
    }  # fmt: skip
    assert (sent["queue"], sent["run_id"], sent["status"], sent["occurrences"]) == ("helpdesk", "run-7", "open", 1)
    assert sent["flapping"] is False


def test_message_is_what_the_outbox_hands_to_a_backend(tmp_path: Path) -> None:
    sent = message(tmp_path, event_id=17)
    handed = TicketMessage(**sent)
    assert handed.marker == "maint-event-17"
    assert handed.marker in handed.body
    assert handed.action in ACTIONS


def test_message_subject_is_one_line_with_tier_check_and_host(tmp_path: Path) -> None:
    long_ticket = ticket(tier="L3", check="disk", host="db1", summary="a\nb " + "x" * 300)
    sent = message(tmp_path, action="escalated", the_ticket=long_ticket)
    assert sent["action"] == "escalate"
    assert sent["subject"].startswith("[maint L3] disk on db1: a b ")
    assert "\n" not in sent["subject"]
    assert sent["subject"].endswith("...")
    assert len(sent["subject"]) < 200


def test_message_on_occurrence_has_no_reproduce_command(tmp_path: Path) -> None:
    sent = message(tmp_path, action="occurrence")
    assert sent["action"] == "comment"
    assert "Reproduce:" not in sent["body"]
    assert "Runbook:" not in sent["body"]
    assert "Failed to start nginx" in sent["body"]
    assert "maint-event-42" in sent["body"]


def test_message_on_resolve_has_no_output(tmp_path: Path) -> None:
    sent = message(tmp_path, action="resolved")
    assert sent["action"] == "resolve"
    assert "Output (last lines):" not in sent["body"]


def test_message_on_reopen_has_the_reproduce_command(tmp_path: Path) -> None:
    sent = message(tmp_path, action="reopened")
    assert sent["action"] == "reopen"
    assert "Reproduce: maint run updates-apply -l web1" in sent["body"]


def test_message_of_an_operator_action_has_no_finding(tmp_path: Path) -> None:
    sent = message(tmp_path, action="comment", event_id=9, queue=None)
    assert sent["body"] == "Comment: nginx on web1\n\n-- maint maint-event-9\n"
    assert sent["queue"] is None


def test_message_shows_the_remediation(tmp_path: Path) -> None:
    remedied = finding(failing=False, status="ok", remediation={
        "step": "nginx.remediate", "type": "service.restart", "status": "ok", "summary": "restarted"})  # fmt: skip
    sent = message(tmp_path, action="occurrence", the_finding=remedied)
    assert "Tried:     remediation 'nginx.remediate' (service.restart): ok - restarted" in sent["body"]
    assert "the check passes after it." in sent["body"]


def test_a_project_template_overrides_the_built_in_one(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "ticket-body.j2").write_text(
        "{{ action }} {{ ticket.host }}/{{ ticket.check }} {{ marker }}\n"
    )
    sent = message(tmp_path)
    assert sent["body"] == "open web1/nginx maint-event-42\n"
    assert sent["subject"] == "[maint L1] nginx on web1: nginx is not running"  # the built-in subject


def test_a_broken_project_template_names_the_template(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "ticket-body.j2").write_text("line one\n{% if ticket.host %}\nno endif\n")
    with pytest.raises(BadInput) as caught:
        message(tmp_path)
    assert "ticket-body.j2" in str(caught.value)
    assert caught.value.source is not None and caught.value.source.endswith("ticket-body.j2")
    assert "ticket template:" in str(caught.value)


def test_a_project_template_with_an_undefined_variable_names_the_template(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "ticket-subject.j2").write_text("{{ ticket.no_such_field }}\n")
    with pytest.raises(BadInput) as caught:
        message(tmp_path)
    assert caught.value.source is not None and caught.value.source.endswith("ticket-subject.j2")
    assert "no_such_field" in str(caught.value)
