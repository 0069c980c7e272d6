"""Python and Fabric tasks without sshd: finding a task and checking its arguments when the playbook loads (bad
input naming the file and line), check mode, the outcome of what a task returned or raised, the recorded
calls of a TaskConnection (on fabric.testing's scripted sessions), and the error on a connection without SSH.
Each behaviour on a real host is tested in tests/integration/test_python_tasks.py."""

from __future__ import annotations

import hashlib
import re
import sys
import threading
from pathlib import Path
from typing import Any

import invoke
import pytest
from fabric.testing.base import Session

import maint
from maint import playbooks, tasks
from maint.checks import Outcome, Status
from maint.checks.python import PythonTask
from maint.errors import BadInput
from maint.executors.taskconnection import NO_CONNECTION, Finished, TaskConnection, run_task
from maint.run import RunRequest, run
from maint.testing import FakeExecutor, services

MAINTFILE = '''
import maint


def plain(c, path, mode="600"):
    """Checks a file's mode."""


@maint.task(check_mode=True)
def checked(c, path, check=False):
    return check


def takes_check(c, check=False):
    return check


@maint.task(check_mode=False)
def refuses(c, check=False):
    return check
'''


def project(tmp_path: Path, step: str) -> Path:
    (tmp_path / "maintfile.py").write_text(MAINTFILE)
    (tmp_path / "book.yml").write_text(f"steps:\n  - id: one\n{step}")
    (tmp_path / "hosts.ini").write_text("web1 ansible_host=127.0.0.2\n")
    return tmp_path


def load_error(tmp_path: Path, step: str) -> BadInput:
    directory = project(tmp_path, step)
    with pytest.raises(BadInput) as caught:
        playbooks.load(str(directory / "book.yml"), directory)
    return caught.value


@pytest.mark.parametrize(
    ("step", "line", "message"),
    [
        ("    type: python\n    task: maintfile.py:plain\n    path: /x\n    colour: red\n", 6,
         "unknown parameter 'colour' for task .*maintfile.py:plain \\(it takes: mode, path\\)"),
        ("    type: python\n    task: maintfile.py:plain\n", 2, "needs parameter 'path'"),
        ("    type: python\n    task: maintfile.py:nosuch\n", 4, "has no function 'nosuch' \\(it has: checked, plain"),
        ("    type: python\n    task: other.py:plain\n", 4, "task file other.py not found \\(looked in "),
        ("    type: python\n    task: 'no_such_module_xyz:plain'\n", 4, "cannot import no_such_module_xyz"),
        ("    type: python\n    task: 'maintfile.py:{{ name }}'\n", 4, "'task' of a python step cannot be a template"),
        ("    type: python\n    task: maintfile.py:checked\n    path: /x\n    check: true\n", 6,
         "'check' is set by maint in check mode"),
        ("    type: fabric\n    fabfile: maintfile.py\n    task: plain\n", 5, "has no Fabric task 'plain'"),
    ],
)  # fmt: skip
def test_a_task_and_its_arguments_are_checked_when_the_playbook_loads(
    tmp_path: Path, step: str, line: int, message: str
) -> None:
    error = load_error(tmp_path, step)
    assert error.source == str(tmp_path / "book.yml")
    assert error.line == line, error.message
    assert re.search(message, error.message), error.message


def test_a_bad_argument_is_exit_3_naming_file_and_line(tmp_path: Path, maint_cli: Any) -> None:
    directory = project(tmp_path, "    type: python\n    task: maintfile.py:plain\n    path: /x\n    colour: red\n")
    done = maint_cli("run", "book.yml", "-i", "hosts.ini", cwd=directory)
    assert done.returncode == 3
    assert f"{directory / 'book.yml'}:6:" in done.stderr
    assert "unknown parameter 'colour'" in done.stderr


def test_templated_arguments_count_as_given_and_a_file_is_found_in_the_project(tmp_path: Path) -> None:
    directory = project(tmp_path, "    type: python\n    task: maintfile.py:plain\n    path: '{{ where }}'\n")
    (directory / "playbooks").mkdir()
    (directory / "book.yml").rename(directory / "playbooks" / "book.yml")
    book = playbooks.load("book", directory)
    assert book.steps[0].params["task"] == f"{directory / 'maintfile.py'}:plain"


def test_the_playbook_digest_covers_the_task_file(tmp_path: Path) -> None:
    directory = project(tmp_path, "    type: python\n    task: maintfile.py:plain\n    path: /x\n")
    first = playbooks.load(str(directory / "book.yml"), directory).digest
    assert playbooks.load(str(directory / "book.yml"), directory).digest == first
    # The task's code changed, the playbook did not: the run records it, and resume refuses it as changed.
    (directory / "maintfile.py").write_text(MAINTFILE + "\n# changed\n")
    assert playbooks.load(str(directory / "book.yml"), directory).digest != first
    (directory / "book.yml").write_text("steps:\n  - id: one\n    type: command\n    command: 'true'\n")
    plain = playbooks.load(str(directory / "book.yml"), directory)
    assert plain.digest == hashlib.sha256((directory / "book.yml").read_bytes()).hexdigest()  # as before


def test_a_task_file_is_imported_once_and_stays_out_of_sys_modules(tmp_path: Path) -> None:
    (tmp_path / "maintfile.py").write_text(MAINTFILE)
    before = set(sys.modules)
    first, _ = tasks.load_function("maintfile.py:plain", [tmp_path])
    again, _ = tasks.load_function(f"{tmp_path / 'maintfile.py'}:plain", [])
    assert first is again
    assert set(sys.modules) == before
    assert str(tmp_path) not in sys.path


def test_check_mode_follows_the_decorator_then_the_check_argument(tmp_path: Path) -> None:
    (tmp_path / "maintfile.py").write_text(MAINTFILE)
    path = tmp_path / "maintfile.py"

    def task(name: str, **arguments: Any) -> PythonTask:
        return PythonTask({"task": f"{path}:{name}", **arguments})

    assert task("plain", path="/x").in_check_mode() is None
    assert "does not support check mode" in task("plain", path="/x").check_mode_skip_reason()
    assert task("refuses").in_check_mode() is None
    for name, arguments in (("checked", {"path": "/x"}), ("takes_check", {})):
        dry_run = task(name, **arguments).in_check_mode()
        assert isinstance(dry_run, PythonTask)
        assert dry_run.call(object()) is True
        assert task(name, **arguments).call(object()) is False
    assert maint.task is tasks.task


def outcome_of(finished: Finished) -> tuple[Outcome, int | None]:
    return PythonTask({"task": "maint.tasks:summary"}).outcome(finished, 2.0)


def test_what_a_task_returns_or_raises_is_its_outcome() -> None:
    assert outcome_of(Finished(value=None))[0].status == Status.OK
    assert outcome_of(Finished(value=True))[0].status == Status.OK
    assert outcome_of(Finished(value=False))[0] == Outcome(Status.FAILED, "task maint.tasks:summary returned False")
    mine = Outcome(Status.WARNING, "almost full", {"used": 91.0})
    assert outcome_of(Finished(value=mine))[0] == mine
    assert outcome_of(Finished(value=Outcome("failed", "as text")))[0].status == Status.FAILED  # type: ignore[arg-type]
    assert outcome_of(Finished(value="yes"))[0].status == Status.ERROR
    assert outcome_of(Finished(error=ValueError("gone\nmore")))[0] == Outcome(Status.ERROR, "ValueError: gone")
    assert outcome_of(Finished(timed_out=True))[0] == Outcome(Status.ERROR, "timed out after 2s")
    result = invoke.Result(command="false", exited=1, stderr="it broke\n")
    failed = outcome_of(Finished(error=invoke.exceptions.UnexpectedExit(result)))
    assert failed == (Outcome(Status.ERROR, "`false` exited 1: it broke"), 1)


def test_a_run_without_an_ssh_connection_gives_an_error(tmp_path: Path) -> None:
    directory = project(tmp_path, "    type: python\n    task: maintfile.py:plain\n    path: /x\n")
    request = RunRequest(playbooks=["book.yml"], inventory=[str(directory / "hosts.ini")], project_dir=directory,
                         tickets=False)  # fmt: skip
    document = run(request, services=services(directory), executors={"ssh": FakeExecutor()})
    assert [(r["status"], r["summary"]) for r in document.results] == [("error", NO_CONNECTION)]


class ScriptedTransport:
    """A stand-in for maint's transport: each session it opens is the channel of one of fabric.testing's
    scripted Sessions, in order (no socket)."""

    def __init__(self, *sessions: Session) -> None:
        self.channels: list[Any] = []
        for session in sessions:
            session.generate_mocks()
            self.channels += session.channels
        self.active = True

    def open_session(self, *args: Any, **kwargs: Any) -> Any:
        return self.channels.pop(0)

    def is_active(self) -> bool:
        return self.active


def test_every_call_is_recorded_and_the_transport_is_never_closed() -> None:
    transport = ScriptedTransport(Session(cmd="uptime", out=b"up 3 days\n"), Session(cmd="exit 2", exit=2, err=b"no\n"))
    connection = TaskConnection(transport, "web1", "root", 22)  # type: ignore[arg-type]
    assert connection.is_connected and connection.client.get_transport() is transport

    def task(c: TaskConnection) -> None:
        c.run("uptime")
        c.run("exit 2")

    finished = run_task(connection, task, 5.0, threading.Event())
    assert isinstance(finished.error, invoke.exceptions.UnexpectedExit)
    assert [(call.shown, call.exit_code, call.output) for call in connection.calls] == [
        ("uptime", 0, "up 3 days"), ("exit 2", 2, "[stderr]\nno"),
    ]  # fmt: skip
    assert transport.active


class StandInSession:
    """The host's SSHConnection as a task connection uses it: ``run`` with a become, answered and remembered."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def run(self, command: str, timeout: float, cancel: Any = None, become: Any = None) -> Any:
        from maint.executors import CommandResult

        self.sent.append((command, become))
        return CommandResult(command, 0 if "fail" not in command else 3, "done\n", "", 0.01)


def test_plain_calls_run_in_the_hosts_sessions_su_and_doas_included() -> None:
    from maint.become import Become

    for method in ("sudo", "su", "doas"):
        session = StandInSession()
        become = Become(method, "root", password="pw" if method != "doas" else None)
        connection = TaskConnection(ScriptedTransport(), "web1", "ops", 22, become,  # type: ignore[arg-type]
                                    session=session, deadline=None)  # fmt: skip

        def task(c: TaskConnection) -> None:
            assert c.run("uptime").stdout == "done\n"
            with c.cd("/srv"):
                c.sudo("systemctl restart x", env={"MODE": "a b"})
            assert c.run("fail now", warn=True).exited == 3
            c.sudo("fail again")

        finished = run_task(connection, task, 5.0, threading.Event())
        assert isinstance(finished.error, invoke.exceptions.UnexpectedExit), method
        assert [(command, b.method if b else None) for command, b in session.sent] == [
            ("uptime", None), ("export MODE='a b'; cd /srv && systemctl restart x", method),
            ("fail now", None), ("fail again", method),
        ], method  # fmt: skip
        assert [call.shown for call in connection.calls] == [
            "uptime", "sudo systemctl restart x", "fail now", "sudo fail again",
        ]  # fmt: skip


def test_a_local_command_is_recorded_too() -> None:
    connection = TaskConnection(ScriptedTransport(), "web1", "ops", 22)  # type: ignore[arg-type]
    finished = run_task(connection, lambda c: c.local("echo on the controller; exit 4", warn=True), 5.0, None)
    assert finished.error is None and finished.value.exited == 4
    assert [(call.shown, call.exit_code, call.output) for call in connection.calls] == [
        ("local echo on the controller; exit 4", 4, "on the controller"),
    ]  # fmt: skip
