"""Ansible steps end to end: ``maint run`` runs real ansible-playbook through ansible-runner against the lab.

Each test limits the run to two or three lab hosts: an Ansible run costs a few seconds of
ansible-playbook start-up whatever the number of hosts, and these tests check what maint makes of
the runner's events, not Ansible's speed. The lab hosts share this machine and its user, so a task's
files land under the test's tmp_path, where the test can look at them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab
from maint.testing import broken

pytestmark = pytest.mark.lab

SECRET = "hunter2-never-in-records"


def project(tmp_path: Path) -> Path:
    """A project directory with maint.yml pointing at its own store."""
    directory = tmp_path / "project"
    directory.mkdir(exist_ok=True)
    (directory / "maint.yml").write_text(f"store: sqlite:///{directory / 'maint.db'}\n", encoding="utf-8")
    return directory


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(maint_cli: Any, directory: Path, playbook: str, inventory: Path, *args: str, expect: int = 0,
        env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """``maint run PLAYBOOK --format json`` in the project; checks the exit code and returns the document."""
    done = maint_cli("run", playbook, "-i", inventory, "--format", "json", *args, cwd=directory, env=env)
    assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def by_pair(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(result["host"], result["step"]): result for result in document["results"]}


def tickets(maint_cli: Any, directory: Path, *args: str) -> list[dict[str, Any]]:
    done = maint_cli("tickets", "list", "--format", "json", *args, cwd=directory)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def moment(result: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(result["started"].replace("Z", "+00:00"))


def test_an_ansible_playbook_file_runs_directly_and_is_recorded(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path)
    directory.chmod(0o755)
    tmp_path.chmod(0o755)
    project_mode, tmp_mode = stat.S_IMODE(directory.stat().st_mode), stat.S_IMODE(tmp_path.stat().st_mode)
    written = tmp_path / "written"
    written.mkdir()
    site = f"""
- name: site
  hosts: all
  gather_facts: false
  tasks:
    - name: say hello
      command: echo hello from {{{{ inventory_hostname }}}}
    - name: write marker
      copy:
        content: "marker of {{{{ inventory_hostname }}}}\\n"
        dest: "{written}/{{{{ inventory_hostname }}}}.txt"
        mode: "0644"
"""
    write(directory, "site.yml", site)
    environment = {"MAINT_TEST_DB_PASSWORD": SECRET}
    first = run(maint_cli, directory, "site.yml", lab.inventory, "-l", "lab1,lab2", env=environment)
    assert (first["status"], first["exit_code"]) == ("ok", 0)
    assert [playbook["name"] for playbook in first["playbooks"]] == ["site"]
    pairs = by_pair(first)
    hosts = ("lab1", "lab2")
    assert sorted(pairs) == sorted((host, step) for host in hosts for step in ("site/say hello", "site/write marker"))
    assert len(first["results"]) == 4
    # The type names the task's module as the playbook wrote it.
    assert {(result["step"], result["type"]) for result in first["results"]} == {
        ("site/say hello", "ansible:command"), ("site/write marker", "ansible:copy")
    }
    assert {result["status"] for result in first["results"]} == {"ok"}
    for host in hosts:
        hello = pairs[(host, "site/say hello")]
        assert hello["exit_code"] == 0
        assert hello["summary"] == f"changed: hello from {host}"
        assert hello["output"] == f"hello from {host}"
        assert hello["metrics"] == {"changed": 1.0}  # a command task always reports a change
        assert pairs[(host, "site/write marker")]["metrics"] == {"changed": 1.0}
        assert (written / f"{host}.txt").read_text() == f"marker of {host}\n"
    assert not (written / "lab3.txt").exists()

    second = run(maint_cli, directory, "site.yml", lab.inventory, "-l", "lab1,lab2", env=environment)
    assert second["exit_code"] == 0
    again = by_pair(second)
    assert {again[(host, "site/write marker")]["metrics"]["changed"] for host in hosts} == {0.0}
    assert {again[(host, "site/write marker")]["summary"] for host in hosts} == {"ok"}

    shown = maint_cli("runs", "show", first["id"], "--format", "json", cwd=directory)
    assert shown.returncode == 0, shown.stderr
    stored = json.loads(shown.stdout)
    assert stored["results"] == first["results"]
    assert stored["exit_code"] == 0

    records = Path(stored["options"]["records"])
    assert records == directory / ".maint" / "runs" / first["id"]
    data_dir = records / "ansible" / "site-site"
    artifacts = data_dir / "artifacts" / "artifacts"
    for name in ("command", "rc", "status", "stdout"):
        assert (artifacts / name).is_file(), name
    assert (artifacts / "status").read_text() == "successful"
    assert sorted((artifacts / "job_events").glob("*.json"))
    assert stat.S_IMODE(records.stat().st_mode) == 0o700
    # Only what maint created is made owner-only: the project and the directories above keep their modes.
    assert stat.S_IMODE(directory.stat().st_mode) == project_mode
    assert stat.S_IMODE(tmp_path.stat().st_mode) == tmp_mode
    for root, folders, files in os.walk(data_dir):
        for folder in folders:
            assert stat.S_IMODE((Path(root) / folder).stat().st_mode) == 0o700, Path(root) / folder
        for file in files:
            assert stat.S_IMODE((Path(root) / file).stat().st_mode) == 0o600, Path(root) / file
    command = json.loads((artifacts / "command").read_text())
    assert command["env"]["MAINT_TEST_DB_PASSWORD"] == "***"
    assert SECRET not in (artifacts / "command").read_text()


def test_an_ansible_step_between_native_steps_is_a_barrier(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path)
    tune = """
- hosts: all
  gather_facts: false
  tasks:
    - name: tagged task
      command: echo {{ greeting }} on {{ inventory_hostname }}
      tags: [selected]
    - name: untagged task
      command: echo this task has no tag
"""
    write(directory, "ansible/tune.yml", tune)
    book = """
name: book
steps:
  - id: before
    type: command
    command: sleep 0.2; echo before
  - id: tune
    type: ansible
    playbook: ansible/tune.yml
    extra_vars: {greeting: hi-from-maint}
    tags: [selected]
  - id: after
    type: command
    command: echo after
"""
    write(directory, "book.yml", book)
    document = run(maint_cli, directory, "book.yml", lab.inventory, "-l", "lab1,lab2,lab3")
    hosts = ["lab1", "lab2", "lab3"]
    steps = [result["step"] for result in document["results"]]
    # Results are stored as they arrive: every host's first step, then the playbook's tasks, then the last step.
    assert steps == ["before"] * 3 + ["tune/tagged task"] * 3 + ["after"] * 3
    assert {result["status"] for result in document["results"]} == {"ok"}
    native_first = [result for result in document["results"] if result["step"] == "before"]
    tasks = [result for result in document["results"] if result["step"].startswith("tune/")]
    native_last = [result for result in document["results"] if result["step"] == "after"]
    slack = dt.timedelta(milliseconds=2)  # stored start times are whole milliseconds
    ended = max(moment(result) + dt.timedelta(seconds=result["duration"]) for result in native_first)
    assert ended <= min(moment(result) for result in tasks) + slack
    assert max(moment(result) for result in tasks) <= min(moment(result) for result in native_last)
    assert all(result["type"].startswith("ansible:") for result in tasks)
    pairs = by_pair(document)
    for host in hosts:
        assert pairs[(host, "tune/tagged task")]["output"] == f"hi-from-maint on {host}"
    assert not any("untagged" in step for step in steps)


def test_a_failing_task_opens_a_ticket_resolved_when_it_passes(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path)
    flag = tmp_path / "repaired"
    repair = f"""
- hosts: all
  gather_facts: false
  tasks:
    - name: reach
      command: "true"
      changed_when: false
    - name: check repair
      command: cat {flag}
      changed_when: false
      when: inventory_hostname == 'lab2'
"""
    write(directory, "repair.yml", repair)
    first = run(maint_cli, directory, "repair.yml", lab.inventory, "-l", "lab1,lab2", expect=4)
    assert (first["status"], first["exit_code"]) == ("failed", 4)
    pairs = by_pair(first)
    failed = pairs[("lab2", "repair/check repair")]
    assert failed["status"] == "failed"
    assert failed["exit_code"] == 1
    assert failed["summary"] == f"failed: rc=1: cat: {flag}: No such file or directory"
    assert failed["output"] == f"[stderr]\ncat: {flag}: No such file or directory"
    assert pairs[("lab1", "repair/check repair")]["status"] == "skipped"
    assert {pairs[(host, "repair/reach")]["status"] for host in ("lab1", "lab2")} == {"ok"}
    assert first["tickets"]["actions"] == {"opened": 1}
    (ticket,) = tickets(maint_cli, directory)
    assert ticket["key"] == "lab2/repair/check repair"
    assert ticket["status"] == "open"

    flag.write_text("fixed\n")
    second = run(maint_cli, directory, "repair.yml", lab.inventory, "-l", "lab1,lab2")
    assert by_pair(second)[("lab2", "repair/check repair")]["summary"] == "ok: fixed"
    assert second["tickets"]["actions"] == {"resolved": 1}
    assert tickets(maint_cli, directory) == []
    resolved = tickets(maint_cli, directory, "--status", "resolved")
    assert [ticket["key"] for ticket in resolved] == ["lab2/repair/check repair"]


def test_an_unreachable_host_is_unreachable_with_one_ticket(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path)
    site = """
- hosts: all
  gather_facts: false
  tasks:
    - name: first
      command: "true"
    - name: second
      command: "true"
"""
    write(directory, "site.yml", site)
    with broken(lab, "lab3", "down"):
        document = run(maint_cli, directory, "site.yml", lab.inventory, "-l", "lab2,lab3", expect=5)
    assert (document["status"], document["exit_code"]) == ("unreachable", 5)
    down = [result for result in document["results"] if result["host"] == "lab3"]
    assert [(result["step"], result["status"]) for result in down] == [("site/first", "unreachable")]
    assert "Connection refused" in down[0]["summary"]
    assert {(result["step"], result["status"]) for result in document["results"] if result["host"] == "lab2"} == {
        ("site/first", "ok"), ("site/second", "ok")
    }  # fmt: skip
    (ticket,) = tickets(maint_cli, directory)
    assert ticket["key"] == "lab3/unreachable"


def test_check_mode_changes_nothing_and_records_the_diff(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path)
    target = tmp_path / "checked"
    target.mkdir()
    motd = f"""
- hosts: all
  gather_facts: false
  tasks:
    - name: motd
      copy:
        content: "welcome to {{{{ inventory_hostname }}}}\\n"
        dest: "{target}/{{{{ inventory_hostname }}}}.motd"
"""
    write(directory, "motd.yml", motd)
    document = run(maint_cli, directory, "motd.yml", lab.inventory, "-l", "lab1,lab2", "-C")
    assert document["options"]["check_mode"] is True
    for host in ("lab1", "lab2"):
        result = by_pair(document)[(host, "motd/motd")]
        assert (result["status"], result["summary"], result["metrics"]) == ("ok", "changed", {"changed": 1.0})
        assert "[diff]" in result["output"]
        assert f"+welcome to {host}" in result["output"]
    assert list(target.iterdir()) == []


def test_a_missing_ansible_playbook_is_bad_input_with_file_and_line(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path)
    book = """name: book
steps:
  - id: first
    type: command
    command: "true"
  - id: tune
    type: ansible
    playbook: ansible/missing.yml
"""
    write(directory, "book.yml", book)
    done = maint_cli("run", "book.yml", "-i", lab.inventory, "-l", "lab1", cwd=directory)
    assert done.returncode == 3
    assert "book.yml:6: step 'tune': Ansible playbook file ansible/missing.yml not found" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (directory / ".maint" / "runs").exists()


def test_an_ansible_playbook_that_does_not_parse_is_an_error_on_each_host(
    lab: Lab, maint_cli: Any, tmp_path: Path
) -> None:
    directory = project(tmp_path)
    write(directory, "ansible/broken.yml", "- hosts: all\n  tasks:\n    - name: unclosed\n      command: [echo\n")
    book = """
name: book
steps:
  - id: tune
    type: ansible
    playbook: ansible/broken.yml
"""
    write(directory, "book.yml", book)
    document = run(maint_cli, directory, "book.yml", lab.inventory, "-l", "lab1,lab2", expect=4)
    assert (document["status"], document["exit_code"]) == ("failed", 4)
    assert [(result["host"], result["step"], result["status"]) for result in document["results"]] == [
        ("lab1", "tune", "error"), ("lab2", "tune", "error")
    ]  # fmt: skip
    for result in document["results"]:
        assert result["summary"].startswith("ansible-playbook ended failed (rc ")
        assert "before any task ran here" in result["summary"]
        # The end of ansible-playbook's own output says what is wrong, and where.
        assert "YAML parsing failed" in result["output"]
        assert f"{directory / 'ansible' / 'broken.yml'}:5" in result["output"]


def test_host_keys_are_checked_in_ansible_steps(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    directory = project(tmp_path)
    empty = tmp_path / "empty_known_hosts"
    empty.touch()
    text = lab.inventory.read_text()
    assert str(lab.known_hosts) in text
    inventory = write(tmp_path, "inventory.ini", text.replace(str(lab.known_hosts), str(empty)))
    write(directory, "site.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: reach\n      ping:\n")
    # A fresh control path directory: no ssh master connection of an earlier run can stand in for the
    # key exchange of this one.
    environment = {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp")}
    document = run(maint_cli, directory, "site.yml", inventory, "-l", "lab6", "--no-inventory-cache",
                   expect=5, env=environment)  # fmt: skip
    (result,) = document["results"]
    assert (result["host"], result["step"], result["status"]) == ("lab6", "site/reach", "unreachable")
    assert "Host key verification failed" in result["summary"] + result["output"]
    assert empty.read_text() == ""  # the unknown key was not accepted into it either


def test_an_ansible_step_decrypts_vaulted_inventory_values_with_the_same_password(
    lab: Lab, maint_cli: Any, tmp_path: Path
) -> None:
    import hashlib
    import subprocess
    import sys

    directory = project(tmp_path)
    plaintext = "Vaulted-for-ansible-7Kq"
    write(directory, "pw", "correct horse battery\n")
    encrypted = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-vault"), "encrypt_string", "--vault-password-file",
         str(directory / "pw"), plaintext, "--name", "site_motto"], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    indented = "".join(f"    {line}\n" for line in encrypted.splitlines())
    from_file = "Vaulted-in-extra-vars-3Lm"
    write(directory, "vars.yml", subprocess.run(
        [str(Path(sys.executable).parent / "ansible-vault"), "encrypt_string", "--vault-password-file",
         str(directory / "pw"), from_file, "--name", "file_motto"], capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip
    vault = write(directory, "vault.yml", "all:\n  vars:\n" + indented)
    write(directory, "site.yml", """
- name: site
  hosts: all
  gather_facts: false
  tasks:
    - name: hash
      shell: "echo {{ site_motto }}; echo {{ site_motto }} | sha256sum"
    - name: hash the extra variable
      shell: "echo {{ file_motto | default('unset') }} | sha256sum"
""")
    done = maint_cli("run", "site.yml", "-i", lab.inventory, "-i", vault, "-l", "lab1", "--format", "json",
                     "-e", "@vars.yml", "--vault-password-file", directory / "pw", cwd=directory)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result, extra = json.loads(done.stdout)["results"]
    assert hashlib.sha256(f"{plaintext}\n".encode()).hexdigest() in result["output"]
    assert hashlib.sha256(f"{from_file}\n".encode()).hexdigest() in extra["output"]  # -e @file, vaulted
    assert plaintext not in done.stdout and "***" in result["output"]
    for secret in (plaintext, from_file):
        assert secret.encode() not in (directory / "maint.db").read_bytes()
        for path in (directory / ".maint" / "runs").rglob("*"):  # ansible-runner's events and stdout
            assert not path.is_file() or secret.encode() not in path.read_bytes(), path
    # A password typed at --ask-vault-pass: maint and ansible-playbook (answered by the runner) both use it.
    asked = maint_cli("run", "site.yml", "-i", lab.inventory, "-i", vault, "-l", "lab1", "--format", "json",
                      "--ask-vault-pass", cwd=directory, input="correct horse battery\n")  # fmt: skip
    assert asked.returncode == 0, asked.stdout + asked.stderr
    result, _ = json.loads(asked.stdout)["results"]
    assert hashlib.sha256(f"{plaintext}\n".encode()).hexdigest() in result["output"]
    for path in [directory / "maint.db", *(directory / ".maint").rglob("*")]:
        if path.is_file():
            assert b"correct horse battery" not in path.read_bytes(), path
