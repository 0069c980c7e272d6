"""``--format json``: exactly one JSON document on stdout whatever the outcome, each valid against the schema
maint publishes (maint/data/schemas), the human line still on stderr.

The hosts are this machine (``ansible_connection=local``) and a port nobody listens on, so a run takes
milliseconds without the sshd lab. Each exit code's document goes through a real subprocess once (3, 7, 8,
130); the other cases through ``maint.cli.main`` in-process (``maint_cli``).
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from json_documents import error_document, one_document
from store_lock import write_locked

from maint.locks import acquire, lock_directory
from maint.processes import process_alive

HOSTS = "web2 ansible_connection=local\nweb10 ansible_connection=local\ndown ansible_host=127.0.0.1 ansible_port=1\n"
BOOK = ("name: book\nsteps:\n  - id: hello\n    type: command\n    command: echo hi\n"
        "  - id: broken\n    type: command\n    command: 'false'\n")  # fmt: skip
# A window that opens one minute a year: closed whenever the tests run but on 1 January 02:00 UTC.
CONFIG = 'store_busy_timeout: 0.5s\nwindows:\n  yearly:\n    cron: "0 2 1 1 *"\n    duration: 1m\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "hosts.ini").write_text(HOSTS, encoding="utf-8")
    (directory / "book.yml").write_text(BOOK, encoding="utf-8")
    (directory / "maint.yml").write_text(CONFIG, encoding="utf-8")
    return directory


def test_every_document_the_cli_prints_is_valid_against_its_schema(maint_cli: Any, project: Path) -> None:
    def json_of(schema: str, *args: str, code: int = 0) -> Any:
        return one_document(maint_cli(*args, "--format", "json", cwd=project), code, schema)

    run = json_of("run", "run", "book.yml", "-i", "hosts.ini", "--reason", "CHG-1 it's json", code=4)
    assert run["status"] == "failed" and len(run["results"]) == 6 and run["tickets"]["tickets"]
    assert "error" not in run
    assert json_of("run", "runs", "show", "last")["id"] == run["id"]
    assert [listed["id"] for listed in json_of("runs-list", "runs", "list")] == [run["id"]]
    assert json_of("runs-list", "runs", "list", "--host", "web*", "--status", "failed")[0]["matches"]
    rerun = json_of("run", "rerun", run["id"], "--failed", code=4)
    assert rerun["options"]["rerun_of"] == run["id"]
    tickets = json_of("tickets-list", "tickets", "list")
    assert {ticket["key"] for ticket in tickets} == {"web2/broken", "web10/broken", "down/unreachable"}
    assert json_of("ticket", "tickets", "show", str(tickets[0]["id"]))["history"]
    json_of("tickets-sync", "tickets", "sync")
    assert json_of("windows-list", "windows", "list")[0]["name"] == "yearly"
    assert json_of("window-status", "windows", "status", "yearly")["open"] is False
    json_of("window-status", "windows", "status")
    assert any(book["name"] == "health" for book in json_of("playbooks-list", "playbooks", "list"))
    assert any(check["type"] == "disk.usage" for check in json_of("checks-list", "checks", "list"))
    assert json_of("stats", "stats")["hosts"]
    json_of("config", "config", "show")
    assert json_of("audit-verify", "audit", "verify")["intact"] is True
    json_of("db", "db", "current")
    json_of("db", "db", "upgrade")
    assert json_of("runs-prune", "runs", "prune", "--keep-last", "1", "--dry-run")["runs"] == [run["id"]]
    assert json_of("report", "report", "last")["id"] == rerun["id"]


def test_bad_playbook_prints_the_error_document_with_file_and_line(run_maint: Any, project: Path) -> None:
    (project / "bad.yml").write_text("steps:\n  - id: a\n    type: disk.usgae\n", encoding="utf-8")
    done = run_maint("run", "bad.yml", "-i", "hosts.ini", "--format", "json", cwd=project)
    document = error_document(done, 3, "bad-input")
    assert (document["error"]["source"], document["error"]["line"]) == (str(project / "bad.yml"), 3)
    assert "did you mean 'disk.usage'?" in document["error"]["hint"]
    assert "unknown type 'disk.usgae'" in document["error"]["message"]


def test_bad_inventory_and_unknown_ticket_print_the_error_document(maint_cli: Any, project: Path) -> None:
    (project / "bad.ini").write_text("[web]\nweb1 ansible_port=22\n[web:vars\nx=1\n", encoding="utf-8")
    done = maint_cli("run", "book.yml", "-i", "bad.ini", "--format", "json", cwd=project)
    assert str(project / "bad.ini") in error_document(done, 3, "bad-input")["error"]["message"]
    assert maint_cli("db", "upgrade", cwd=project).returncode == 0  # a store without ticket 99
    done = maint_cli("tickets", "show", "99", "--format", "json", cwd=project)
    assert error_document(done, 3, "bad-input")["error"]["hint"] == "see 'maint tickets list --status all'"


def test_a_usage_error_after_format_json_prints_the_error_document(maint_cli: Any, project: Path) -> None:
    done = maint_cli("run", "book.yml", "--format", "json", "-f", "many", cwd=project)
    assert done.returncode == 2
    document = one_document(done, 2, "error")
    assert document["error"]["kind"] == "usage" and "many" in document["error"]["message"]


def test_a_closed_window_prints_the_not_started_run(run_maint: Any, maint_cli: Any, project: Path) -> None:
    done = run_maint("run", "book.yml", "-i", "hosts.ini", "--window", "yearly", "--format", "json", cwd=project)
    document = error_document(done, 7, "not-started", schema="run")
    assert (document["status"], document["results"]) == ("not-started", [])
    assert "window 'yearly' is closed" in document["error"]["message"]
    assert document["error"]["hint"].startswith("use --ignore-window")
    recorded = one_document(maint_cli("runs", "show", document["id"], "--format", "json", cwd=project), 0, "run")
    assert recorded["status"] == "not-started" and recorded["exit_code"] == 7


def test_busy_hosts_print_the_run_that_did_not_start(maint_cli: Any, project: Path) -> None:
    store = project / ".maint" / "maint.db"
    assert maint_cli("db", "upgrade", cwd=project).returncode == 0  # the store exists
    other = "20261128-020000-aaaaaa"
    acquire(lock_directory(f"sqlite:///{store}", store), other, ["web10"], process_alive, "2026-11-28T02:00:00Z")
    done = maint_cli("run", "book.yml", "-i", "hosts.ini", "--format", "json", cwd=project)
    document = error_document(done, 7, "not-started", schema="run")
    assert (document["status"], document["exit_code"], document["results"]) == ("not-started", 7, [])
    assert document["hosts"] == ["web2", "web10", "down"] and document["finished"] is None
    assert f"run {other} (pid " in document["error"]["message"] and "web10" in document["error"]["message"]
    listed = one_document(maint_cli("runs", "list", "--format", "json", cwd=project), 0, "runs-list")
    assert listed == []  # never recorded: the hosts were never held


def test_a_locked_store_prints_the_error_document_with_the_run_id(
    run_maint: Any, maint_cli: Any, project: Path
) -> None:
    store = project / ".maint" / "maint.db"
    assert maint_cli("db", "upgrade", cwd=project).returncode == 0  # the store exists
    with write_locked(store):
        done = run_maint("run", "book.yml", "-i", "hosts.ini", "--format", "json", cwd=project)
    document = error_document(done, 8, "store-unavailable")
    error = document["error"]
    assert (error["store"], error["cause"]) == (f"sqlite:///{store}", "database is locked")
    assert f"run {document['run_id']} not started, no step ran" in error["message"]


def test_an_interrupted_run_prints_the_interrupted_run(maint_bin: Path, project: Path) -> None:
    (project / "naps.yml").write_text(
        "steps:\n  - id: hello\n    type: command\n    command: echo hi\n"
        "  - id: nap\n    type: command\n    command: sleep 30\n", encoding="utf-8",
    )  # fmt: skip
    process = subprocess.Popen(
        [str(maint_bin), "run", "naps.yml", "-i", "hosts.ini", "-l", "web2", "--format", "json", "--no-tickets"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    store = project / ".maint" / "maint.db"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _results(store):
        time.sleep(0.02)  # the poll's interval, not a guess at when the result arrives
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    document = error_document(done, 130, "interrupted", schema="run")
    assert document["status"] == "interrupted"
    assert [(result["step"], result["status"]) for result in document["results"]] == [
        ("hello", "ok"), ("nap", "skipped")
    ]


def test_an_internal_error_prints_the_error_document_with_the_debug_log(
    maint_cli: Any, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug\nwith a second line")

    assert maint_cli("db", "upgrade", cwd=project).returncode == 0  # the store exists
    monkeypatch.setattr("maint.store.Store.find_runs", broken)
    done = maint_cli("runs", "list", "--format", "json", cwd=project)
    document = error_document(done, 1, "internal")
    assert document["error"]["message"] == "internal error: RuntimeError: a bug"
    assert document["error"]["debug_log"] == str(tmp_path / "maint-debug.log")
    assert "RuntimeError" in Path(document["error"]["debug_log"]).read_text()


def _results(store: Path) -> int:
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(store)) as connection:
        return int(connection.execute("SELECT count(*) FROM results").fetchone()[0])
    return 0
