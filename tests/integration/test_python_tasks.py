"""``python`` and ``fabric`` steps against the real lab: tasks get a Fabric Connection over the host's own SSH
connection, every call is recorded (secrets masked), timeouts end the step and not the host, sudo uses the
host's become password, check mode runs only the tasks that support it, and a fabfile runs unchanged."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from lab_accounts import user_lab
from processes import processes_with, wait_until

from maint.executors.ssh import SSHExecutor
from maint.executors.taskconnection import TaskConnection
from maint.inventory import load_inventory
from maint.lab import Lab

pytestmark = pytest.mark.lab

# The module's sudo lab is made once per test worker: each gets an account of its own.
LOGIN = f"maintpytask{os.environ.get('PYTEST_XDIST_WORKER', '')}"
TOKEN = "s3cr3t-token-value"

MAINTFILE = '''
import time

import maint
from maint.checks import Outcome, Status


def passing(c, path, greeting="hello"):
    """Writes a greeting into a file and reads it back."""
    print("debugging output of the task's author")
    c.run(f"echo {greeting} > {path}")
    return c.run(f"cat {path}").stdout.strip() == greeting


def measuring(c):
    count = int(c.run("echo 42").stdout)
    return Outcome(Status.FAILED, f"{count} things", {"count": count})


def returns_false(c):
    c.run("true")
    return False


def raising(c):
    raise RuntimeError("the thing is broken\\nsecond line")


def exiting(c):
    c.run("echo about to fail >&2; exit 5")


def hanging(c):
    c.run("sleep 2978.5 & sleep 2978.6")


def spinning(c):
    while True:
        time.sleep(0.05)


@maint.task(check_mode=True)
def fix_mode(c, path, mode="600", check=False):
    """Gives a file the mode it should have."""
    current = c.run(f"stat -c %a {path}").stdout.strip()
    if current == mode:
        return Outcome(Status.OK, f"{path} is {mode}")
    if check:
        return Outcome(Status.FAILED, f"{path} is {current}, would be {mode}")
    c.run(f"chmod {mode} {path}")
    return Outcome(Status.OK, f"{path} was {current}, now {mode}")


def changes(c, path):
    c.run(f"touch {path}")


def telling(c, api_token, note):
    c.run(f"echo token={api_token} note={note}")
    return True


def escalating(c, path):
    who = c.sudo("id -un").stdout.strip()
    c.sudo(f"touch {path}")
    owner = c.run(f"stat -c %U {path}").stdout.strip()
    return Outcome(Status.OK, f"sudo as {who}, file of {owner}")
'''

FABFILE = """
from fabric import task


@task
def touch(c, path):
    c.run(f"touch {path}")


@task
def broken(c):
    c.run("echo nope >&2; exit 3")
"""


def step(step_id: str, task: str = "", **params: object) -> str:
    """A step of book.yml: a ``python`` step of the test maintfile's ``task``, or of the ``type`` given."""
    kind = params.pop("type", "python")
    lines = [f"  - id: {step_id}", f"    type: {kind}"]
    if task:
        lines.append(f"    task: {'maintfile.py:' if kind == 'python' else ''}{task}")
    lines += [f"    {key}: {value}" for key, value in params.items()]
    return "\n".join(lines) + "\n"


def project(directory: Path, steps: str) -> Path:
    """A project in ``directory``: maintfile.py and fabfile.py beside book.yml (steps as given)."""
    (directory / "playbooks").mkdir(exist_ok=True)
    (directory / "maintfile.py").write_text(MAINTFILE)
    (directory / "playbooks" / "fabfile.py").write_text(FABFILE)
    (directory / "playbooks" / "book.yml").write_text(f"name: book\nhosts: all\nsteps:\n{steps}")
    return directory


def run(maint_cli: Any, lab: Lab, directory: Path, *options: str, host: str = "lab1") -> tuple[int, dict[str, Any]]:
    done = maint_cli("run", "book", "-i", lab.inventory, "-l", host, "--format", "json", *options, cwd=directory,
                     env={"MAINT_DB": f"sqlite:///{directory / 'maint.db'}"})  # fmt: skip
    assert done.stdout.startswith("{"), done.stderr
    return done.returncode, json.loads(done.stdout)


def results(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["step"]: result for result in document["results"]}


def shown(maint_cli: Any, directory: Path, run_id: str) -> str:
    env = {"MAINT_DB": f"sqlite:///{directory / 'maint.db'}"}
    done = maint_cli("runs", "show", run_id, "-vv", cwd=directory, env=env)
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


def test_tasks_pass_fail_raise_and_time_out_and_the_host_goes_on(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "greeting"
    directory = project(
        tmp_path,
        step("passing", "passing", path=target)
        + step("measuring", "measuring")
        + step("returns-false", "returns_false")
        + step("raising", "raising")
        + step("exiting", "exiting")
        + step("hanging", "hanging", timeout=1)
        + step("after-hanging", type="command", command="echo still here")
        + step("spinning", "spinning", timeout=1)
        + step("after-spinning", "passing", path=target, greeting="again"),
    )
    code, document = run(maint_cli, lab, directory)
    assert code == 4
    found = results(document)
    assert found["passing"]["status"] == "ok", found["passing"]["summary"]
    assert found["measuring"]["status"] == "failed"
    assert found["measuring"]["summary"] == "42 things"
    assert found["measuring"]["metrics"] == {"count": 42.0}
    assert found["returns-false"]["status"] == "failed"
    assert found["raising"]["status"] == "error"
    assert found["raising"]["summary"] == "RuntimeError: the thing is broken"
    assert found["exiting"]["status"] == "error"
    assert found["exiting"]["summary"] == "`echo about to fail >&2; exit 5` exited 5: about to fail"
    assert found["exiting"]["exit_code"] == 5
    assert found["hanging"]["status"] == "error"
    assert found["hanging"]["summary"] == "timed out after 1s"
    assert found["hanging"]["duration"] < 10
    # Ended on the host too, what the command started included: its process group got SIGTERM.
    wait_until(lambda: not processes_with("2978."), 10, "the timed-out task's commands to end on the host")
    assert found["after-hanging"]["status"] == "ok"
    assert found["spinning"]["status"] == "error"
    assert found["spinning"]["summary"] == "timed out after 1s"
    assert found["after-spinning"]["status"] == "ok"
    assert target.read_text() == "again\n"
    text = shown(maint_cli, directory, document["id"])
    assert f"$ echo hello > {target}" in text
    assert "[exit 0," in text
    assert "RuntimeError: the thing is broken" in text and "Traceback" in text
    assert "left behind" in text  # the spinning task's thread


def test_secrets_are_masked_in_the_recorded_calls(
    lab: Lab, maint_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAINT_TEST_TOKEN", TOKEN)
    telling = step("telling", "telling", api_token="env:MAINT_TEST_TOKEN", note='"{{ db_password }}"')
    directory = project(tmp_path, telling)
    code, document = run(maint_cli, lab, directory, "-e", "db_password=hunter2-db")
    assert code == 0, document
    text = shown(maint_cli, directory, document["id"])
    assert "$ echo token=*** note=***" in text
    assert TOKEN not in text and "hunter2-db" not in text
    assert TOKEN not in (directory / "maint.db").read_bytes().decode("utf-8", "replace")


def test_check_mode_runs_only_tasks_that_support_it(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("x")
    key.chmod(0o644)
    untouched = tmp_path / "untouched"
    directory = project(tmp_path, step("fix-mode", "fix_mode", path=key) + step("changes", "changes", path=untouched))
    code, document = run(maint_cli, lab, directory, "-C")
    found = results(document)
    assert found["fix-mode"]["status"] == "failed"
    assert found["fix-mode"]["summary"] == f"{key} is 644, would be 600"
    assert found["changes"]["status"] == "skipped"
    assert "does not support check mode" in found["changes"]["summary"]
    assert not untouched.exists()
    assert key.stat().st_mode & 0o777 == 0o644
    code, document = run(maint_cli, lab, directory)
    assert code == 0
    assert results(document)["fix-mode"]["summary"] == f"{key} was 644, now 600"
    assert key.stat().st_mode & 0o777 == 0o600


def test_a_fabfile_runs_unchanged(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    touched = tmp_path / "touched"
    directory = project(
        tmp_path,
        step("touch", "touch", type="fabric", fabfile="fabfile.py", path=touched)
        + step("broken", "broken", type="fabric", fabfile="fabfile.py"),
    )
    code, document = run(maint_cli, lab, directory)
    assert code == 4
    found = results(document)
    assert found["touch"]["status"] == "ok"
    assert touched.exists()
    assert found["broken"]["status"] == "failed"
    assert found["broken"]["summary"] == "`echo nope >&2; exit 3` exited 3: nope"
    assert found["broken"]["exit_code"] == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="creating the lab's user needs root")
@pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed")
def test_sudo_uses_the_hosts_become_password(maint_cli: Any, tmp_path: Path) -> None:
    with user_lab(LOGIN, "127.0.41.2", sudo="password") as sudo_lab:
        base = sudo_lab.directory.parent
        target = base / "made-by-root"
        directory = project(tmp_path, step("escalating", "escalating", path=target))
        code, document = run(maint_cli, sudo_lab, directory)
        assert sudo_lab.account is not None and sudo_lab.account.password_file is not None
        password = sudo_lab.account.password_file.read_text().strip()
        found = results(document)["escalating"]
        assert code == 0, found
        assert found["summary"] == "sudo as root, file of root"
        text = shown(maint_cli, directory, document["id"])
        assert f"$ sudo touch {target}" in text
        assert password not in text


def test_maint_run_end_to_end(lab: Lab, run_maint: Any, tmp_path: Path) -> None:
    target = tmp_path / "greeting"
    directory = project(tmp_path, step("passing", "passing", path=target))
    env = {"MAINT_DB": f"sqlite:///{directory / 'maint.db'}", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    done = run_maint("run", "book", "-i", lab.inventory, "-l", "lab1:lab2", "--format", "json", cwd=directory,
                     env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert target.read_text() == "hello\n"
    # A task's print() never breaks maint's own output: it is in the task's record instead.
    results = json.loads(done.stdout)["results"]
    assert all("[printed]\ndebugging output of the task's author" in result["output"] for result in results)
    assert "debugging output" not in done.stderr
    listing = run_maint("checks", "list", cwd=directory, env=env)
    assert "maintfile.py:passing" in listing.stdout
    assert "Writes a greeting into a file and reads it back." in listing.stdout


def test_the_fabric_connection_is_the_hosts_own_and_put_get_are_recorded(lab: Lab, tmp_path: Path) -> None:
    host = load_inventory([str(lab.inventory)]).select("lab1")[0]
    connection = SSHExecutor().connect(host)
    try:
        fabric_connection = TaskConnection(connection.transport, "lab1", "root", 22)
        assert fabric_connection.is_connected
        source = tmp_path / "source"
        source.write_text("payload\n")
        fabric_connection.put(str(source), str(tmp_path / "copied"))
        fabric_connection.get(str(tmp_path / "copied"), str(tmp_path / "back"))
        assert fabric_connection.run("cat " + str(tmp_path / "copied")).stdout == "payload\n"
        fabric_connection.close()
        assert fabric_connection.transport is connection.transport
        assert connection.transport.is_active()
        assert connection.run("echo still", 10).stdout == "still\n"
        assert [call.shown.split()[0] for call in fabric_connection.calls] == ["put", "get", "cat"]
        assert (tmp_path / "back").read_text() == "payload\n"
    finally:
        connection.close()


def test_the_example_task_fixes_a_restic_password_files_mode(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    book = Path(__file__).resolve().parents[2] / "playbooks" / "restic-password.yml"
    secret = tmp_path / "restic-password"
    secret.write_text("x\n")
    secret.chmod(0o644)
    options = ("-i", lab.inventory, "-l", "lab1", "-e", f"restic_password_file={secret}", "--format", "json")
    env = {"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"}
    checked = maint_cli("run", book, *options, "-C", cwd=tmp_path, env=env)
    assert checked.returncode == 4, checked.stderr
    summary = json.loads(checked.stdout)["results"][0]["summary"]
    # The value of a secret-looking variable (restic_password_file) is masked wherever it appears, a path too.
    assert summary == "*** is 0644, owned by root: would make it 0600, owned by root"
    assert secret.stat().st_mode & 0o777 == 0o644
    fixed = maint_cli("run", book, *options, cwd=tmp_path, env=env)
    assert fixed.returncode == 0, fixed.stderr
    assert secret.stat().st_mode & 0o777 == 0o600
    again = maint_cli("run", book, *options, cwd=tmp_path, env=env)
    assert json.loads(again.stdout)["results"][0]["summary"] == "*** is 0600, owned by root"
