"""react() and act() against a real SQLite store: tickets, their history, alert state and the outbox."""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from maint import config as config_module
from maint.config import Config
from maint.errors import BadInput
from maint.store import ResultRecord, RunRecord, Store
from maint.store.tickets import events_of, find_tickets, get_ticket, load_alerts, outbox, pending
from maint.tickets import StepInfo, TicketReport, act, react

HAVE_WEBHOOK = importlib.util.find_spec("maint.tickets.backends.webhook") is not None
needs_webhook = pytest.mark.skipif(not HAVE_WEBHOOK, reason="maint/tickets/backends/webhook.py is not there yet")

GROUPS = {"web1": ["web"], "db1": ["db"]}
FIRST_DAY = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
STEPS = {("daily", "disk"): StepInfo(runbook="clean /var/log")}


def reproduce(playbook: str, host: str) -> str:
    return f"maint run {playbook} -l {host}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store("sqlite:///" + str(tmp_path / "m.db"))
    yield opened
    opened.close()


@pytest.fixture
def defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.delenv("MAINT_CONFIG", raising=False)
    return config_module.load(project_dir=tmp_path)


def record_run(store: Store, number: int, outcomes: dict[tuple[str, str], str]) -> dict[str, Any]:
    """Store run ``run-N`` with one result per (host, step) and return its document (as react gets it)."""
    run_id = f"run-{number}"
    started = (FIRST_DAY + dt.timedelta(days=number)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    hosts = sorted({host for host, _step in outcomes})
    store.create_run(
        RunRecord(
            id=run_id, started=started, operator="tester", controller="ci", argv=["maint", "run", "daily"],
            reason=None, playbooks=[{"name": "daily", "path": "daily.yml", "digest": "x", "builtin": False}],
            inventory={"sources": ["hosts.yml"], "digest": "y"}, maint_version="0", ci={}, options={}, hosts=hosts,
        )
    )  # fmt: skip
    store.add_results(
        ResultRecord(
            run_id=run_id, host=host, playbook="daily", step=step, step_type="shell", status=status,
            exit_code=0 if status == "ok" else 1, summary=f"{step} is {status}", metrics={},
            output=f"output of {step}", started=started, duration=0.1, severity="warning", tier="L1",
        )
        for (host, step), status in outcomes.items()
    )  # fmt: skip
    document = store.get_run(run_id)
    return {"run": document.run, "results": document.results}


def run_and_react(
    store: Store, config: Config, project_dir: Path, number: int, outcomes: dict[tuple[str, str], str]
) -> TicketReport:
    document = record_run(store, number, outcomes)
    return react(store, config, document["run"], document["results"], GROUPS, STEPS, reproduce, project_dir)


def tickets_in(store: Store) -> list[Any]:
    with store.engine.connect() as connection:
        return sorted(find_tickets(connection), key=lambda ticket: ticket.id)


def history(store: Store, ticket_id: int) -> list[str]:
    with store.engine.connect() as connection:
        return [event.action for event in events_of(connection, ticket_id)]


def outbox_rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(outbox).order_by(outbox.c.id)).mappings()]


FAILING = {("web1", "disk"): "failed", ("web1", "load"): "ok", ("db1", "backup"): "error"}
PASSING = {("web1", "disk"): "ok", ("web1", "load"): "ok", ("db1", "backup"): "ok"}


def test_first_run_opens_a_ticket_per_failing_check(store: Store, defaults: Config, tmp_path: Path) -> None:
    report = run_and_react(store, defaults, tmp_path, 1, FAILING)
    assert report.counts == {"opened": 2}
    assert report.quiet == 0
    summary = report.as_dict()
    assert summary["actions"] == {"opened": 2}
    assert (summary["quiet"], summary["delivered"], summary["pending"], summary["warnings"]) == (0, 0, 0, [])
    assert sorted(entry["key"] for entry in report.tickets) == ["db1/backup", "web1/disk"]
    opened = tickets_in(store)
    assert [(ticket.key, ticket.status, ticket.occurrences) for ticket in opened] == [
        ("web1/disk", "open", 1), ("db1/backup", "open", 1),
    ]  # fmt: skip
    disk = opened[0]
    assert disk.groups == ["web"]
    assert disk.runbook == "clean /var/log"
    assert disk.first_run == disk.last_run == "run-1"
    assert history(store, disk.id) == ["opened"]
    assert outbox_rows(store) == []  # no routing: the store only
    with store.engine.connect() as connection:
        states = load_alerts(connection, ["web1/disk", "web1/load", "db1/backup", "web1/unreachable"])
    # Checks that pass as they always did leave no row: a healthy fleet costs the store no writes.
    assert set(states) == {"web1/disk", "db1/backup"}
    assert states["web1/disk"].hard and states["web1/disk"].consecutive_failures == 1
    # A key seen failing for the first time starts from a window of passes (flap.window - 1 = 9).
    assert [entry["fail"] for entry in states["web1/disk"].history] == [False] * 9 + [True]
    assert states["web1/disk"].history[-1] == {"run": "run-1", "fail": True, "remediated": False}


def test_second_failing_run_adds_occurrences_and_opens_nothing(
    store: Store, defaults: Config, tmp_path: Path
) -> None:
    run_and_react(store, defaults, tmp_path, 1, FAILING)
    report = run_and_react(store, defaults, tmp_path, 2, FAILING)
    assert report.counts == {"occurrence": 2}
    current = tickets_in(store)
    assert len(current) == 2
    assert all(ticket.occurrences == 2 and ticket.last_run == "run-2" for ticket in current)
    assert all(ticket.first_run == "run-1" for ticket in current)
    assert history(store, current[0].id) == ["opened", "occurrence"]
    with store.engine.connect() as connection:
        state = load_alerts(connection, ["web1/disk"])["web1/disk"]
    assert state.consecutive_failures == 2
    assert [entry["run"] for entry in state.history][-2:] == ["run-1", "run-2"]


def test_third_failing_run_escalates_with_the_default_rules(store: Store, defaults: Config, tmp_path: Path) -> None:
    for number in (1, 2, 3):
        report = run_and_react(store, defaults, tmp_path, number, {("web1", "disk"): "failed"})
    assert report.counts == {"occurrence": 1, "escalated": 1}
    (disk,) = tickets_in(store)
    assert (disk.tier, disk.status, disk.occurrences) == ("L2", "escalated", 3)


def test_a_passing_run_resolves(store: Store, defaults: Config, tmp_path: Path) -> None:
    run_and_react(store, defaults, tmp_path, 1, FAILING)
    report = run_and_react(store, defaults, tmp_path, 2, PASSING)
    assert report.counts == {"resolved": 2}
    resolved = tickets_in(store)
    assert all(ticket.status == "resolved" and ticket.resolved == "2026-11-22T02:00:00.000Z" for ticket in resolved)
    assert history(store, resolved[0].id) == ["opened", "resolved"]
    again = run_and_react(store, defaults, tmp_path, 3, PASSING)
    assert again.counts == {}
    assert again.tickets == []


def test_failing_again_soon_reopens_the_resolved_ticket(store: Store, defaults: Config, tmp_path: Path) -> None:
    config = config_module.replace(defaults, reopen_within=7 * 86400.0)
    run_and_react(store, config, tmp_path, 1, {("web1", "disk"): "failed"})
    run_and_react(store, config, tmp_path, 2, {("web1", "disk"): "ok"})
    report = run_and_react(store, config, tmp_path, 3, {("web1", "disk"): "failed"})
    assert report.counts == {"reopened": 1}
    (disk,) = tickets_in(store)
    assert (disk.status, disk.occurrences, disk.resolved) == ("open", 2, None)
    assert history(store, disk.id) == ["opened", "resolved", "reopened"]


def test_failing_again_later_opens_a_new_ticket(store: Store, defaults: Config, tmp_path: Path) -> None:
    config = config_module.replace(defaults, reopen_within=3600.0)
    run_and_react(store, config, tmp_path, 1, {("web1", "disk"): "failed"})
    run_and_react(store, config, tmp_path, 2, {("web1", "disk"): "ok"})
    report = run_and_react(store, config, tmp_path, 3, {("web1", "disk"): "failed"})
    assert report.counts == {"opened": 1}
    assert [ticket.status for ticket in tickets_in(store)] == ["resolved", "open"]


def test_a_flapping_check_keeps_one_ticket_until_it_is_stable(store: Store, defaults: Config, tmp_path: Path) -> None:
    config = config_module.replace(defaults, reopen_within=7 * 86400.0, escalation=[])
    actions = []
    for number, outcome in enumerate(["failed", "ok"] * 3, start=1):
        report = run_and_react(store, config, tmp_path, number, {("web1", "disk"): outcome})
        actions.append(sorted(report.counts))
    # From the fifth run on there is enough history: flapping, so the passing sixth run resolves nothing.
    assert actions == [["opened"], ["resolved"], ["reopened"], ["resolved"], ["reopened"], []]
    (disk,) = tickets_in(store)
    assert disk.status == "open" and disk.flapping
    number = 6
    while True:
        number += 1
        report = run_and_react(store, config, tmp_path, number, {("web1", "disk"): "ok"})
        with store.engine.connect() as connection:
            state = load_alerts(connection, ["web1/disk"])["web1/disk"]
        if state.flapping:
            assert report.counts == {}
            continue
        assert report.counts == {"resolved": 1}  # resolved with the first pass after the flapping stopped
        break
    assert number > 7
    (disk,) = tickets_in(store)
    assert disk.status == "resolved" and not disk.flapping


def test_an_unreachable_host_gets_one_ticket(store: Store, defaults: Config, tmp_path: Path) -> None:
    down_results = {("db1", "backup"): "unreachable", ("db1", "disk"): "unreachable"}
    report = run_and_react(store, defaults, tmp_path, 1, down_results)
    assert report.counts == {"opened": 1}
    (down,) = tickets_in(store)
    assert (down.key, down.severity) == ("db1/unreachable", "critical")


def test_quiet_failures_open_nothing(store: Store, defaults: Config, tmp_path: Path) -> None:
    config = config_module.replace(defaults, quiet=[{"hosts": "web", "checks": ["disk"], "reason": "CHG-1"}])
    report = run_and_react(store, config, tmp_path, 1, FAILING)
    assert report.quiet == 1
    assert report.counts == {"opened": 1}
    assert [ticket.key for ticket in tickets_in(store)] == ["db1/backup"]


def webhook_config(tmp_path: Path) -> Config:
    (tmp_path / "maint.yml").write_text(
        "tickets:\n"
        "  backends:\n"
        "    hooks:\n"
        "      type: webhook\n"
        "      url: https://hooks.example.invalid/maint\n"
        "      format: json\n"
        "  routing:\n"
        "    - group: web\n"
        "      backends: [hooks]\n"
        "      queue: web-team\n"
        "    - backends: [local]\n"
    )
    return config_module.load(path=tmp_path / "maint.yml")


@needs_webhook
def test_routing_queues_rendered_messages_in_the_outbox(store: Store, tmp_path: Path) -> None:
    config = webhook_config(tmp_path)
    run_and_react(store, config, tmp_path, 1, FAILING)
    rows = outbox_rows(store)
    assert len(rows) == 1  # only web1 is in group web; db1's ticket stays in the store
    row = rows[0]
    assert (row["backend"], row["status"], row["attempts"]) == ("hooks", "pending", 0)
    assert row["created"] == "2026-11-21T02:00:00.000Z"
    message = row["message"]
    (disk,) = [ticket for ticket in tickets_in(store) if ticket.key == "web1/disk"]
    assert (message["action"], message["key"], message["ticket_id"], message["queue"]) == (
        "open", "web1/disk", disk.id, "web-team",
    )  # fmt: skip
    assert message["subject"] == "[maint L1] disk on web1: disk is failed"
    assert f"maint-event-{message['event_id']}" in message["body"]
    assert "Reproduce: maint run daily -l web1" in message["body"]
    assert "output of disk" in message["body"]
    assert "clean /var/log" in message["body"]
    run_and_react(store, config, tmp_path, 2, PASSING)
    with store.engine.connect() as connection:
        queued = pending(connection)
    assert [row["message"]["action"] for row in queued] == ["open", "resolve"]
    assert queued[1]["event_id"] > queued[0]["event_id"]


@needs_webhook
def test_act_queues_the_operator_action(store: Store, tmp_path: Path) -> None:
    config = webhook_config(tmp_path)
    run_and_react(store, config, tmp_path, 1, {("web1", "disk"): "failed"})
    (disk,) = tickets_in(store)
    now = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
    changed = act(store, config, disk.id, "acknowledged", "alice", now, "on it", tmp_path)
    assert changed.status == "acknowledged"
    messages = [row["message"] for row in outbox_rows(store)]
    assert [message["action"] for message in messages] == ["open", "acknowledge"]
    assert messages[1]["run_id"] is None
    assert messages[1]["body"].startswith("on it\n")


def test_act_records_an_operator_action(store: Store, defaults: Config, tmp_path: Path) -> None:
    run_and_react(store, defaults, tmp_path, 1, {("web1", "disk"): "failed"})
    (disk,) = tickets_in(store)
    now = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
    changed = act(store, defaults, disk.id, "escalated", "alice", now, "needs a DBA", tmp_path)
    assert (changed.tier, changed.status, changed.updated) == ("L2", "escalated", "2026-11-21T09:30:00.000Z")
    with store.engine.connect() as connection:
        stored = get_ticket(connection, disk.id)
        events = events_of(connection, disk.id)
    assert stored is not None and stored.tier == "L2"
    assert [event.action for event in events] == ["opened", "escalated"]
    assert (events[1].actor, events[1].data["why"]) == ("alice", "needs a DBA")
    assert outbox_rows(store) == []


def test_act_on_a_missing_ticket(store: Store, defaults: Config, tmp_path: Path) -> None:
    now = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
    with pytest.raises(BadInput, match="no ticket #99"):
        act(store, defaults, 99, "acknowledged", "alice", now, "", tmp_path)


def test_act_that_does_not_apply_is_bad_input(store: Store, defaults: Config, tmp_path: Path) -> None:
    run_and_react(store, defaults, tmp_path, 1, {("web1", "disk"): "failed"})
    run_and_react(store, defaults, tmp_path, 2, {("web1", "disk"): "ok"})
    (disk,) = tickets_in(store)
    now = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)
    with pytest.raises(BadInput, match="is resolved"):
        act(store, defaults, disk.id, "escalated", "alice", now, "", tmp_path)
    assert history(store, disk.id) == ["opened", "resolved"]


def steps_of(outcomes: Sequence[str]) -> list[dict[tuple[str, str], str]]:
    return [{("web1", "disk"): outcome} for outcome in outcomes]


def test_soft_failures_wait_for_open_after(store: Store, defaults: Config, tmp_path: Path) -> None:
    config = config_module.replace(defaults, open_after=2)
    counts = [
        dict(run_and_react(store, config, tmp_path, number, outcomes).counts)
        for number, outcomes in enumerate(steps_of(["failed", "failed"]), start=1)
    ]
    assert counts == [{}, {"opened": 1}]
