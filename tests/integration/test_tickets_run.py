"""Tickets from real runs: ``maint run`` over real SSH against the lab, then ``maint tickets ...``.

The checks here are command steps whose outcome a test controls through a file on the (loopback)
host, so a test can make a check fail, pass and flap run after run exactly as it wants.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab

pytestmark = pytest.mark.lab


def project(tmp_path: Path, config: str = "", playbook: str | None = None) -> Path:
    """A project directory with maint.yml and a playbook ``book.yml`` checking for the flag files."""
    directory = tmp_path / "project"
    directory.mkdir(exist_ok=True)
    (directory / "maint.yml").write_text(f"store: sqlite:///{directory / 'maint.db'}\n{config}", encoding="utf-8")
    flags = tmp_path / "flags"
    flags.mkdir(exist_ok=True)
    (directory / "book.yml").write_text(
        playbook
        or f"""
name: book
steps:
  - id: flag-absent
    type: command
    command: test ! -e {flags}/{{{{ inventory_hostname }}}}.bad
    tier: L1
    runbook: Remove the flag file.
""",
        encoding="utf-8",
    )
    return directory


def run(maint_cli: Any, lab: Lab, directory: Path, *args: str) -> dict[str, Any]:
    done = maint_cli("run", "book.yml", "-i", lab.inventory, "--format", "json", *args, cwd=directory)
    assert done.returncode in (0, 4, 5), done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def tickets(maint_cli: Any, directory: Path, *args: str) -> list[dict[str, Any]]:
    done = maint_cli("tickets", "list", "--format", "json", *args, cwd=directory)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_one_ticket_per_failing_pair_then_occurrences_then_resolved(
    lab: Lab, maint_cli: Any, tmp_path: Path
) -> None:
    directory = project(tmp_path)
    flags = tmp_path / "flags"
    (flags / "lab2.bad").touch()
    (flags / "lab5.bad").touch()

    first = run(maint_cli, lab, directory)
    assert first["exit_code"] == 4
    assert first["tickets"]["actions"] == {"opened": 2}
    opened = tickets(maint_cli, directory)
    assert sorted(ticket["key"] for ticket in opened) == ["lab2/flag-absent", "lab5/flag-absent"]
    assert {ticket["status"] for ticket in opened} == {"open"}
    assert {ticket["tier"] for ticket in opened} == {"L1"}

    second = run(maint_cli, lab, directory)
    assert second["tickets"]["actions"] == {"occurrence": 2}
    again = tickets(maint_cli, directory)
    assert [ticket["id"] for ticket in again] == [ticket["id"] for ticket in opened]
    assert {ticket["occurrences"] for ticket in again} == {2}

    (flags / "lab2.bad").unlink()
    third = run(maint_cli, lab, directory)
    # lab5's third occurrence meets the default rule (3 occurrences at L1): escalated to L2.
    assert third["tickets"]["actions"] == {"occurrence": 1, "escalated": 1, "resolved": 1}
    active = tickets(maint_cli, directory)
    assert [(ticket["key"], ticket["tier"]) for ticket in active] == [("lab5/flag-absent", "L2")]
    resolved = tickets(maint_cli, directory, "--status", "resolved")
    assert [ticket["key"] for ticket in resolved] == ["lab2/flag-absent"]

    shown = maint_cli("tickets", "show", str(resolved[0]["id"]), "--format", "json", cwd=directory)
    history = json.loads(shown.stdout)["history"]
    assert [event["action"] for event in history] == ["opened", "occurrence", "resolved"]
    assert history[-1]["run_id"] == third["id"]
    assert third["id"] in history[-1]["text"]
    (flags / "lab5.bad").unlink()
    assert_verified(maint_cli, directory)  # every ticket and alert-state row as its last ledger entry says


def assert_verified(maint_cli: Any, directory: Path) -> None:
    """``maint audit verify`` finds the store intact (tickets and alert state included)."""
    done = maint_cli("audit", "verify", cwd=directory)
    assert done.returncode == 0, done.stdout + done.stderr


def test_escalation_rules_from_maint_yml_and_reopen(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path, "tickets:\n  escalation:\n    - occurrences: 2\n  reopen_within: 1h\n")
    flag = tmp_path / "flags" / "lab3.bad"
    flag.touch()
    limit = ("-l", "lab3")
    run(maint_cli, lab, directory, *limit)
    second = run(maint_cli, lab, directory, *limit)
    assert second["tickets"]["actions"] == {"occurrence": 1, "escalated": 1}
    (ticket,) = tickets(maint_cli, directory)
    assert (ticket["tier"], ticket["status"]) == ("L2", "escalated")
    run(maint_cli, lab, directory, *limit)
    fourth = run(maint_cli, lab, directory, *limit)
    assert fourth["tickets"]["actions"] == {"occurrence": 1, "escalated": 1}
    assert tickets(maint_cli, directory)[0]["tier"] == "L3"

    flag.unlink()
    assert run(maint_cli, lab, directory, *limit)["tickets"]["actions"] == {"resolved": 1}
    flag.touch()
    reopened = run(maint_cli, lab, directory, *limit)
    assert reopened["tickets"]["actions"] == {"reopened": 1}
    (again,) = tickets(maint_cli, directory)
    assert again["id"] == ticket["id"]
    assert again["occurrences"] == 5
    flag.unlink()


def test_a_flapping_check_keeps_one_ticket_marked_flapping(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path, "tickets:\n  flap: {window: 4, high: 50, low: 25}\n")
    flag = tmp_path / "flags" / "lab4.bad"
    for attempt in range(6):
        if attempt % 2 == 0:
            flag.touch()
        else:
            flag.unlink()
        run(maint_cli, lab, directory, "-l", "lab4")
    every = tickets(maint_cli, directory, "--status", "all")
    assert len(every) == 1
    (ticket,) = every
    assert ticket["flapping"] is True
    assert ticket["status"] != "resolved"  # a flapping ticket stays open until the check is stable
    assert ticket["occurrences"] == 3
    flag.unlink(missing_ok=True)


def test_soft_failures_open_nothing_until_open_after(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path, "tickets:\n  open_after: 2\n")
    flag = tmp_path / "flags" / "lab1.bad"
    flag.touch()
    assert run(maint_cli, lab, directory, "-l", "lab1")["tickets"]["actions"] == {}
    assert tickets(maint_cli, directory) == []
    assert run(maint_cli, lab, directory, "-l", "lab1")["tickets"]["actions"] == {"opened": 1}
    flag.unlink()


def test_remediation_runs_then_the_check_again_and_recurring_fixes_escalate(
    lab: Lab, maint_cli: Any, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    playbook = f"""
name: book
steps:
  - id: logs-size
    type: log.size
    path: {logs}
    max_size: 1M
    tier: L1
    remediate:
      type: log.cleanup
      path: {logs}
      pattern: "*.gz"
      older_than: 1m
"""
    directory = project(tmp_path, "tickets:\n  remediation: {max_attempts: 5, runs: 5, recurring: 2}\n", playbook)
    database = directory / "maint.db"

    def fill(stale: bool) -> None:
        old = logs / "old.log.gz"
        old.write_bytes(b"x" * 2_000_000)
        if stale:
            import os

            os.utime(old, (1_000_000_000, 1_000_000_000))

    fill(stale=True)
    first = run(maint_cli, lab, directory, "-l", "lab1")
    assert first["exit_code"] == 0  # the second attempt passed: the remediation fixed it
    rows = [(r["step"], r["attempt"], r["status"]) for r in first["results"]]
    assert rows == [("logs-size", 1, "failed"), ("logs-size.remediate", 1, "ok"), ("logs-size", 2, "ok")]
    assert not (logs / "old.log.gz").exists()
    assert first["tickets"]["actions"] == {}

    fill(stale=True)
    second = run(maint_cli, lab, directory, "-l", "lab1")
    assert second["tickets"]["actions"] == {"opened": 1}
    (ticket,) = tickets(maint_cli, directory)
    assert ticket["tier"] == "L2"  # one above the check's L1: the fix keeps being needed
    assert "remediated 2 times in the last 5 runs" in ticket["summary"]

    # A file too young for the cleanup: remediation runs, the check still fails, the ticket says so.
    fill(stale=False)
    third = run(maint_cli, lab, directory, "-l", "lab1")
    assert third["exit_code"] == 4
    with sqlite3.connect(database) as connection:
        (message,) = connection.execute(
            "SELECT text FROM ticket_events WHERE action = 'occurrence' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert "logs-size" in message
    (logs / "old.log.gz").unlink()


def test_remediation_is_rate_limited(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "young.gz").write_bytes(b"x" * 2_000_000)  # too young for the cleanup: it never helps
    playbook = f"""
name: book
steps:
  - id: logs-size
    type: log.size
    path: {logs}
    max_size: 1M
    remediate: {{type: log.cleanup, path: {logs}, older_than: 1d}}
"""
    directory = project(tmp_path, "tickets:\n  remediation: {max_attempts: 2, runs: 10}\n", playbook)
    attempts = []
    for _ in range(3):
        document = run(maint_cli, lab, directory, "-l", "lab1")
        attempts.append(sum(1 for r in document["results"] if r["step"] == "logs-size.remediate"))
    assert attempts == [1, 1, 0]


def test_declared_maintenance_records_failures_without_tickets(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    config = """
tickets:
  quiet:
    - hosts: "web:!lab1"
      checks: [flag-*]
      reason: CHG-42 web restarts
"""
    directory = project(tmp_path, config)
    flags = tmp_path / "flags"
    for host in ("lab1", "lab2", "lab3"):
        (flags / f"{host}.bad").touch()
    document = run(maint_cli, lab, directory, "-l", "lab1,lab2,lab3")
    failed = sorted(r["host"] for r in document["results"] if r["status"] == "failed")
    assert failed == ["lab1", "lab2", "lab3"]  # every result is recorded
    web_hosts = {host for host in ("lab2", "lab3") if host in lab_groups(lab, "web")}
    assert document["tickets"]["quiet"] == len(web_hosts)
    ticketed = {ticket["host"] for ticket in tickets(maint_cli, directory)}
    assert ticketed == {"lab1", "lab2", "lab3"} - web_hosts
    for host in ("lab1", "lab2", "lab3"):
        (flags / f"{host}.bad").unlink()


def lab_groups(lab: Lab, group: str) -> set[str]:
    from maint.inventory import load_inventory

    return {host.name for host in load_inventory([str(lab.inventory)]).select(group)}


def test_unreachable_host_gets_one_ticket_not_one_per_check(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    from maint.testing import broken

    directory = project(tmp_path)
    with broken(lab, "lab6", "down"):
        document = run(maint_cli, lab, directory, "-l", "lab6", "--no-tickets")
        assert "tickets" not in document
        document = run(maint_cli, lab, directory, "-l", "lab6")
    assert document["exit_code"] == 5
    (ticket,) = tickets(maint_cli, directory)
    assert (ticket["key"], ticket["severity"]) == ("lab6/unreachable", "critical")
    assert run(maint_cli, lab, directory, "-l", "lab6")["tickets"]["actions"] == {"resolved": 1}


def test_operator_actions_and_their_errors(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    # Subprocesses: the operator's ticket commands as a user types them.
    directory = project(tmp_path)
    flag = tmp_path / "flags" / "lab1.bad"
    flag.touch()
    run(run_maint, lab, directory, "-l", "lab1")
    (ticket,) = tickets(run_maint, directory)
    number = str(ticket["id"])
    assert run_maint("tickets", "ack", number, "-m", "looking", cwd=directory).returncode == 0
    assert run_maint("tickets", "comment", number, "cleaned by hand", cwd=directory).returncode == 0
    assert run_maint("tickets", "escalate", number, cwd=directory).returncode == 0
    shown = json.loads(run_maint("tickets", "show", number, "--format", "json", cwd=directory).stdout)
    assert [event["action"] for event in shown["history"]] == ["opened", "acknowledged", "comment", "escalated"]
    assert shown["tier"] == "L2"
    assert all(event["actor"] for event in shown["history"])
    resolved = run_maint("tickets", "resolve", number, "-m", "fixed", cwd=directory)
    assert resolved.returncode == 0
    again = run_maint("tickets", "resolve", number, cwd=directory)
    assert again.returncode == 3
    assert "is resolved" in again.stderr and "Traceback" not in again.stderr
    missing = run_maint("tickets", "show", "999", cwd=directory)
    assert missing.returncode == 3 and "no ticket #999" in missing.stderr
    flag.unlink()
    assert_verified(run_maint, directory)
    with sqlite3.connect(directory / "maint.db") as connection:
        connection.execute("UPDATE tickets SET status = 'open' WHERE id = ?", (ticket["id"],))
    caught = run_maint("audit", "verify", cwd=directory)
    assert caught.returncode == 4
    assert f"ticket #{ticket['id']} (lab1/flag-absent) was changed after it was recorded" in caught.stdout


def test_bad_maint_yml_is_exit_3_with_file_and_line(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path, "tickets:\n  open_after: zero\n  flap: {window: 1}\n")
    done = maint_cli("run", "book.yml", "-i", lab.inventory, cwd=directory)
    assert done.returncode == 3
    assert "maint.yml:3: At 'tickets.open_after'" in done.stderr
    assert "and 1 more" in done.stderr
    assert "Traceback" not in done.stderr
    validate = maint_cli("config", "validate", cwd=directory)
    assert validate.returncode == 3
    assert len(validate.stderr.strip().splitlines()) == 2
