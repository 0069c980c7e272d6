"""``maint runs list`` filters and ``maint stats`` through the CLI (``maint.cli.main`` in-process) on a history
written into a real SQLite store through maint's own Store API and ticket functions; and one real
run on the lab fleet with a broken host, found again by ``runs list --host --check --status``.

The generated history: 40 nightly runs of the playbook ``nightly`` (root-disk, backup) on web-01,
web-02, web-03 and db-01, run ``k`` started ``41 - k`` days before now, plus one hour:

- web-03 root-disk fails in runs 3-4, 10, 20-22 (3 episodes, 7 and 10 days apart); in run 4 the
  remediation's second attempt fails too, in run 5 it succeeds (attempt 1 failed, so run 5 is not a
  failure);
- web-01 backup fails in runs 15-16 and 30 (2 episodes, 15 days apart);
- db-01 is unreachable in runs 25 and 26; web-02's backup is skipped in run 7;
- tickets: web-03/root-disk opened at run 3 and resolved 54 h later, opened at run 10 and resolved
  24 h later, opened at run 20 and still open; web-01/backup opened at run 15 and resolved 60 h
  later, opened at run 30 and acknowledged.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from maint.clock import timestamp
from maint.lab import Lab
from maint.store import ResultRecord, RunRecord, Store
from maint.store.tickets import Event, Ticket, add_event, save_ticket
from maint.testing import broken

HOSTS = ("db-01", "web-01", "web-02", "web-03")
CHECKS = {"root-disk": "disk.usage", "backup": "backup.restic"}
RUNS = 40
FAILING = {("web-03", "root-disk"): {3, 4, 10, 20, 21, 22}, ("web-01", "backup"): {15, 16, 30}}
UNREACHABLE = {("db-01", 25), ("db-01", 26)}
CALM = ("-e", "health_load_warn=1000 health_load_critical=1000")


def started(number: int, anchor: dt.datetime, hours: float = 0) -> dt.datetime:
    return anchor + dt.timedelta(days=number, hours=hours)


def attempts(host: str, step: str, number: int) -> list[tuple[str, str]]:
    """The (status, summary) of each attempt of one result of the generated history."""
    if (host, number) in UNREACHABLE:
        return [("unreachable", "connection refused")]
    if (host, step, number) == ("web-02", "backup", 7):
        return [("skipped", "skipped: repository locked by another run")]
    if (host, step, number) == ("web-03", "root-disk", 4):
        return [("failed", "/ 96% used (critical 90%)"), ("failed", "/ 95% used (critical 90%)")]
    if (host, step, number) == ("web-03", "root-disk", 5):
        return [("failed", "/ 91% used (critical 90%)"), ("ok", "/ 40% used")]
    if number in FAILING.get((host, step), set()):
        return [("failed", "/ 99% used (critical 90%)" if number in (21, 22) else f"{step} failed: exit 1")]
    return [("ok", f"{step} fine")]


def write_history(store: Store, anchor: dt.datetime) -> dict[int, str]:
    """Write the generated runs and tickets through maint's own API; returns run number -> run id."""
    ids = {}
    for number in range(1, RUNS + 1):
        run_id = f"{number:02d}-nightly"
        ids[number] = run_id
        moment = started(number, anchor)
        store.create_run(
            RunRecord(
                id=run_id, started=timestamp(moment), operator="tester", controller="ci",
                argv=["maint", "run", "nightly"], reason="nightly", inventory={"sources": ["hosts.yml"], "digest": "y"},
                playbooks=[{"name": "nightly", "path": "nightly.yml", "digest": "x", "builtin": False}],
                maint_version="0", ci={}, options={}, hosts=list(HOSTS),
            )
        )  # fmt: skip
        records = []
        last: list[str] = []
        for host in HOSTS:
            for step, step_type in CHECKS.items():
                tries = attempts(host, step, number)
                last.append(tries[-1][0])
                for attempt, (status, summary) in enumerate(tries, start=1):
                    records.append(
                        ResultRecord(
                            run_id=run_id, host=host, playbook="nightly", step=step, step_type=step_type,
                            status=status, exit_code=None if status in ("unreachable", "skipped") else int(
                                status != "ok"), summary=summary, metrics={}, output="[stdout]\n" + "x" * 500,
                            started=timestamp(moment), duration=0.5, attempt=attempt,
                        )
                    )  # fmt: skip
        store.add_results(records)
        status = "failed" if "failed" in last else "unreachable" if "unreachable" in last else "ok"
        exit_code = {"failed": 4, "unreachable": 5, "ok": 0}[status]
        counts = {name: last.count(name) for name in set(last)}
        store.finish_run(run_id, status, exit_code, timestamp(moment + dt.timedelta(minutes=20)), counts)

    tickets = [
        ("web-03", "root-disk", 3, 54.0, "resolved"),
        ("web-03", "root-disk", 10, 24.0, "resolved"),
        ("web-03", "root-disk", 20, None, "open"),
        ("web-01", "backup", 15, 60.0, "resolved"),
        ("web-01", "backup", 30, None, "acknowledged"),
    ]
    with store.engine.begin() as connection:
        for host, check, number, hours, status in tickets:
            opened = timestamp(started(number, anchor, hours=0.5))
            resolved = timestamp(started(number, anchor, hours=0.5 + hours)) if hours is not None else None
            ticket = save_ticket(
                connection,
                Ticket(
                    key=f"{host}/{check}", host=host, check=check, step_type=CHECKS[check], playbook="nightly",
                    tier="L1", severity="warning", status=status, summary=f"{check} failing", opened=opened,
                    updated=resolved or opened, tier_since=opened, resolved=resolved, first_run=ids[number],
                    last_run=ids[number],
                ),
            )  # fmt: skip
            assert ticket.id is not None
            add_event(connection, ticket.id, Event("opened", opened, "maint", "opened", run_id=ids[number]))
            if resolved is not None:
                add_event(connection, ticket.id, Event("resolved", resolved, "maint", "passed again"))
    return ids


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[int, str], dt.datetime]:
    """The generated history in a SQLite store: (environment for maint, run ids, anchor)."""
    path = tmp_path_factory.mktemp("history") / "maint.db"
    # Run k starts 41 - k days before now plus one hour, so ages like 30d fall between runs.
    now = dt.datetime.now(dt.UTC)
    anchor = now - dt.timedelta(days=RUNS + 1, hours=-1)
    store = Store(f"sqlite:///{path}")
    try:
        ids = write_history(store, anchor)
    finally:
        store.close()
    return {"MAINT_DB": f"sqlite:///{path}"}, ids, anchor


def listed(maint_cli: Any, env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    done = maint_cli("runs", "list", *args, "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def numbers(found: list[dict[str, Any]], ids: dict[int, str]) -> list[int]:
    by_id = {run_id: number for number, run_id in ids.items()}
    return [by_id[run["id"]] for run in found]


def test_runs_list_filters(recorded: tuple[dict[str, str], dict[int, str], dt.datetime], maint_cli: Any) -> None:
    env, ids, anchor = recorded

    def runs(*args: str) -> list[int]:
        return numbers(listed(maint_cli, env, *args), ids)

    failed = ("--host", "web-03", "--check", "root-disk", "--status", "failed")
    assert runs(*failed) == [22, 21, 20, 10, 4, 3]  # not 5: its last attempt passed
    assert runs(*failed, "--since", "30d") == [22, 21, 20]
    assert runs(*failed, "--since", "4w") == [22, 21, 20]
    assert runs(*failed, "-n", "2") == [22, 21]
    assert runs(*failed, "--until", timestamp(started(10, anchor))) == [10, 4, 3]
    assert runs(*failed, "--since", timestamp(started(4, anchor)), "--until", timestamp(started(20, anchor))) == [
        20, 10, 4,
    ]  # fmt: skip
    assert runs("--host", "web-03", "--check", "root-disk", "--status", "ok", "--until", "34d") == [6, 5, 2, 1]
    assert runs("--host", "web-0[12]", "--status", "failed") == [30, 16, 15]
    assert runs("--host", "web-*", "--check", "*-disk", "--status", "failed", "--status", "error", "-n", "3") == [
        22, 21, 20,
    ]  # fmt: skip
    assert runs("--check", "back*", "--status", "skipped") == [7]
    assert runs("--host", "nosuch*") == []
    # Without --host/--check, --status is the run's status.
    assert runs("--status", "unreachable") == [26, 25]
    assert runs("--status", "ok", "--since", "17d") == [40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 29, 28, 27, 24]
    assert runs("--since", "3d") == [40, 39, 38]
    assert runs("-n", "3") == [40, 39, 38]

    found = listed(maint_cli, env, "--host", "db-0?", "--status", "unreachable")
    assert numbers(found, ids) == [26, 25]
    assert "results" not in found[0]
    assert found[0]["status"] == "unreachable"
    assert found[0]["matches"] == [
        {"host": "db-01", "playbook": "nightly", "step": "backup", "status": "unreachable"},
        {"host": "db-01", "playbook": "nightly", "step": "root-disk", "status": "unreachable"},
    ]
    assert "matches" not in listed(maint_cli, env, "-n", "1")[0]

    text = maint_cli("runs", "list", *failed, "--since", "30d", env=env)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].split()[:3] == ["ID", "STARTED", "(UTC)"]
    assert f"{ids[22]}  web-03  root-disk  failed" in text.stdout
    nothing = maint_cli("runs", "list", "--host", "nosuch", env=env)
    assert (nothing.returncode, nothing.stdout, nothing.stderr) == (0, "", "no runs match\n")


def expected_hosts() -> dict[str, dict[str, Any]]:
    return {
        "web-03": {
            "host": "web-03", "results": 80, "failures": 6, "failure_rate": 0.075, "episodes": 3, "unreachable": 0,
            "mtbf_hours": 204.0, "mttr_hours": 39.0, "tickets_resolved": 2, "tickets_active": 1,
        },
        "web-01": {
            "host": "web-01", "results": 80, "failures": 3, "failure_rate": 0.0375, "episodes": 2, "unreachable": 0,
            "mtbf_hours": 360.0, "mttr_hours": 60.0, "tickets_resolved": 1, "tickets_active": 1,
        },
        "db-01": {
            "host": "db-01", "results": 76, "failures": 0, "failure_rate": 0.0, "episodes": 0, "unreachable": 2,
            "mtbf_hours": None, "mttr_hours": None, "tickets_resolved": 0, "tickets_active": 0,
        },
        "web-02": {
            "host": "web-02", "results": 79, "failures": 0, "failure_rate": 0.0, "episodes": 0, "unreachable": 0,
            "mtbf_hours": None, "mttr_hours": None, "tickets_resolved": 0, "tickets_active": 0,
        },
    }  # fmt: skip


def stats(maint_cli: Any, env: dict[str, str], *args: str) -> dict[str, Any]:
    done = maint_cli("stats", *args, "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_stats_over_the_whole_history(
    recorded: tuple[dict[str, str], dict[int, str], dt.datetime], maint_cli: Any
) -> None:
    env, _ids, anchor = recorded
    document = stats(maint_cli, env)  # the default --since 90d covers all 40 runs
    assert list(document) == ["schema_version", "since", "until", "hosts", "checks", "top"]
    assert document["hosts"] == list(expected_hosts().values())
    assert document["checks"] == [
        {
            "check": "root-disk", "type": "disk.usage", "hosts": 4, "results": 158, "failures": 6,
            "failure_rate": round(6 / 158, 4), "episodes": 3, "mtbf_hours": 204.0, "mttr_hours": 39.0,
            "tickets_resolved": 2, "tickets_active": 1,
        },
        {
            "check": "backup", "type": "backup.restic", "hosts": 4, "results": 157, "failures": 3,
            "failure_rate": round(3 / 157, 4), "episodes": 2, "mtbf_hours": 360.0, "mttr_hours": 60.0,
            "tickets_resolved": 1, "tickets_active": 1,
        },
    ]  # fmt: skip
    assert document["top"] == [
        {
            "check": "root-disk", "type": "disk.usage", "episodes": 3, "failures": 6, "hosts_affected": 1,
            "hosts": ["web-03"], "last_seen": timestamp(started(22, anchor)),
            # Runs 3, 10 and 20 say this; runs 21-22 say "/ 99% used", run 4's last attempt "/ 95% used".
            "summary": "root-disk failed: exit 1", "tickets_opened": 3,
        },
        {
            "check": "backup", "type": "backup.restic", "episodes": 2, "failures": 3, "hosts_affected": 1,
            "hosts": ["web-01"], "last_seen": timestamp(started(30, anchor)), "summary": "backup failed: exit 1",
            "tickets_opened": 2,
        },
    ]  # fmt: skip
    assert [entry["check"] for entry in stats(maint_cli, env, "--top", "1")["top"]] == ["root-disk"]

    until = timestamp(started(RUNS, anchor, hours=1))
    explicit = stats(maint_cli, env, "--since", timestamp(started(1, anchor)), "--until", until)
    assert explicit["hosts"] == document["hosts"]
    assert (explicit["since"], explicit["until"]) == (timestamp(started(1, anchor)), until)


def test_stats_since_30_days_and_patterns(
    recorded: tuple[dict[str, str], dict[int, str], dt.datetime], maint_cli: Any
) -> None:
    env, _ids, _anchor = recorded
    # Runs 11..40: web-03's only episode is runs 20-22; the ticket resolved at run 11 + 24.5 h counts,
    # the one resolved at run 5 does not.
    recent = stats(maint_cli, env, "--since", "30d")
    hosts = {line["host"]: line for line in recent["hosts"]}
    assert {key: hosts["web-03"][key] for key in ("results", "failures", "episodes", "mtbf_hours")} == {
        "results": 60, "failures": 3, "episodes": 1, "mtbf_hours": None,
    }  # fmt: skip
    assert (hosts["web-03"]["mttr_hours"], hosts["web-03"]["tickets_resolved"]) == (24.0, 1)
    assert (hosts["web-01"]["episodes"], hosts["web-01"]["mtbf_hours"], hosts["web-01"]["mttr_hours"]) == (
        2, 360.0, 60.0,
    )  # fmt: skip
    assert hosts["db-01"]["unreachable"] == 2
    top = {entry["check"]: entry for entry in recent["top"]}
    assert (top["root-disk"]["tickets_opened"], top["backup"]["tickets_opened"]) == (1, 2)
    assert [entry["check"] for entry in recent["top"]] == ["backup", "root-disk"]

    only = stats(maint_cli, env, "--host", "web-0[13]", "--check", "root-*")
    assert [line["host"] for line in only["hosts"]] == ["web-03", "web-01"]
    assert [line["check"] for line in only["checks"]] == ["root-disk"]
    web_03 = {key: only["hosts"][0][key] for key in ("results", "failures", "failure_rate", "episodes", "mtbf_hours")}
    assert web_03 == {"results": 40, "failures": 6, "failure_rate": 0.15, "episodes": 3, "mtbf_hours": 204.0}
    assert (only["hosts"][0]["mttr_hours"], only["hosts"][0]["tickets_active"]) == (39.0, 1)
    # web-01's backup tickets are not root-* tickets.
    assert (only["hosts"][1]["results"], only["hosts"][1]["tickets_active"]) == (40, 0)

    older = stats(maint_cli, env, "--since", "60d", "--until", "35d")  # runs 1..5
    assert {line["host"]: line["failures"] for line in older["hosts"]} == {
        "web-03": 2, "db-01": 0, "web-01": 0, "web-02": 0,
    }  # fmt: skip


def test_stats_text(recorded: tuple[dict[str, str], dict[int, str], dt.datetime], maint_cli: Any) -> None:
    env, _ids, _anchor = recorded
    done = maint_cli("stats", "--top", "2", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("maint stats: runs started ")
    assert lines[2].split() == [
        "HOST", "RESULTS", "FAILURES", "RATE", "EPISODES", "UNREACHABLE", "MTBF(h)", "MTTR(h)", "RESOLVED", "ACTIVE",
    ]  # fmt: skip
    assert lines[3].split() == ["web-03", "80", "6", "7.5%", "3", "0", "204.0", "39.0", "2", "1"]
    assert lines[5] == "... and 2 more hosts (--top N, or --format json for all)"
    assert "Top recurring failures:" in lines
    top = lines[lines.index("Top recurring failures:") + 2]
    assert top.split()[:6] == ["root-disk", "disk.usage", "3", "6", "1", "(web-03)"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("stats", "--since", "3x"), "--since"),
        (("stats", "--until", "yesterday"), "--until"),
        (("runs", "list", "--since", "30 days"), "--since"),
        (("runs", "list", "--status", "broken"), "--status"),
        (("runs", "list", "--host", "web-03", "--status", "running"), "--status"),
        (("stats", "--since", "2026-03-01", "--until", "2026-02-01"), "--since"),
    ],
)
def test_bad_values_are_usage_errors(maint_cli: Any, tmp_path: Path, args: tuple[str, ...], option: str) -> None:
    done = maint_cli(*args, env={"MAINT_DB": f"sqlite:///{tmp_path / 'm.db'}"})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    assert option in errors[0]
    assert "e.g." in errors[0]
    assert done.stdout == ""


@pytest.mark.lab
def test_a_real_failure_on_the_lab_is_found_by_host_check_and_status(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    env = {"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"}
    healthy = maint_cli("run", "health", "-i", lab.inventory, "-l", "lab1,lab2", *CALM, "--format", "json", env=env)
    assert healthy.returncode == 0, healthy.stderr
    with broken(lab, "lab2", "disk-full"):
        done = maint_cli("run", "health", "-i", lab.inventory, "-l", "lab1,lab2", *CALM, "--format", "json", env=env)
    assert done.returncode == 4, done.stderr
    run_id = json.loads(done.stdout)["id"]

    found = listed(maint_cli, env, "--host", "lab2", "--check", "root-disk", "--status", "failed")
    assert [run["id"] for run in found] == [run_id]
    assert found[0]["matches"] == [{"host": "lab2", "playbook": "health", "step": "root-disk", "status": "failed"}]
    assert listed(maint_cli, env, "--host", "lab1", "--check", "root-disk", "--status", "failed") == []
    assert len(listed(maint_cli, env, "--host", "lab1", "--check", "root-disk", "--status", "ok")) == 2
    assert [run["id"] for run in listed(maint_cli, env, "--status", "failed", "--since", "1h")] == [run_id]

    document = stats(maint_cli, env, "--since", "1h", "--check", "root-disk")
    assert [(line["host"], line["failures"], line["episodes"]) for line in document["hosts"]] == [
        ("lab2", 1, 1), ("lab1", 0, 0),
    ]  # fmt: skip
    assert document["top"][0]["hosts"] == ["lab2"]
