"""The engine end to end on the controller itself (ansible_connection=local): faults inside maint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import maint.run as engine
from maint.checks.command import CommandCheck


def request(tmp_path: Path) -> engine.RunRequest:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[local]\nh1 ansible_connection=local\nh2 ansible_connection=local\n")
    book = tmp_path / "book.yml"
    book.write_text(
        "steps:\n  - id: one\n    type: command\n    command: echo one\n"
        "  - id: two\n    type: command\n    command: echo two\n"
    )
    return engine.RunRequest(
        playbooks=[str(book)], inventory=[str(inventory)], db_url=f"sqlite:///{tmp_path / 'm.db'}",
        project_dir=tmp_path,
    )  # fmt: skip


def test_local_hosts_run_and_record(tmp_path: Path) -> None:
    document = engine.run(request(tmp_path))
    assert document.run["status"] == "ok"
    # Hosts run concurrently; each host's steps run in order.
    assert sorted((r["host"], r["step"], r["summary"]) for r in document.results) == [
        ("h1", "one", "one"), ("h1", "two", "two"), ("h2", "one", "one"), ("h2", "two", "two"),
    ]  # fmt: skip
    for host in ("h1", "h2"):
        assert [r["step"] for r in document.results if r["host"] == host] == ["one", "two"]


def test_a_bug_in_a_step_type_is_an_error_result_not_a_hung_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = CommandCheck.command

    def broken(self: CommandCheck) -> str:
        if self.values["command"] == "echo one":
            raise ZeroDivisionError("boom")
        return original(self)

    monkeypatch.setattr(CommandCheck, "command", broken)
    document = engine.run(request(tmp_path))
    by_step = {(r["host"], r["step"]): r for r in document.results}
    assert by_step[("h1", "one")]["status"] == "error"
    assert by_step[("h1", "one")]["summary"] == "step type command failed: ZeroDivisionError: boom"
    assert by_step[("h2", "two")]["status"] == "ok"
    assert document.run["exit_code"] == 4


def test_a_connection_no_executor_serves_is_that_hosts_error_not_ssh(tmp_path: Path) -> None:
    """ansible_connection names the executor through the maint.executors entry points; winrm or docker
    hosts are refused with the reason, never reached over SSH instead."""
    inventory = tmp_path / "mixed.ini"
    inventory.write_text("h1 ansible_connection=local\nwin1 ansible_connection=winrm ansible_host=127.0.0.1 "
                         "ansible_port=1\n")  # fmt: skip
    document = engine.run(dataclasses.replace(request(tmp_path), inventory=[str(inventory)]))
    statuses = {(r["host"], r["step"]): (r["status"], r["summary"]) for r in document.results}
    assert statuses[("h1", "one")] == ("ok", "one")
    status, summary = statuses[("win1", "one")]
    assert status == "error"
    assert summary.startswith("ansible_connection=winrm: maint has no executor for it (known: local, ssh;")
