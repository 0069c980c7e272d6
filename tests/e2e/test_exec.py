"""``maint exec`` and ``maint run --list-hosts`` as a user runs them: a subprocess against the sshd lab."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from maint.lab import Lab


def test_exec_runs_a_command_on_each_host_and_records_it(run_maint: Any, lab: Lab, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'maint.db'}"
    done = run_maint("exec", "lab[0:2]", "-i", lab.inventory, "--db", database, "--", "uname", "-r")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # The lab's hosts are this machine's sshd: each one answers with this kernel.
    hosts = sorted(line.split()[0] for line in lines[::2])
    assert len(hosts) == 3 and set(hosts) < {host.name for host in lab.hosts}
    assert sorted(zip(lines[::2], lines[1::2], strict=True)) == [
        (f"{host} | ok | rc=0 >>", platform.release()) for host in hosts
    ]
    failed = run_maint("exec", "lab1", "-i", lab.inventory, "--db", database, "--format", "json", "--",
                       "test -e /nonexistent || { echo missing >&2; exit 2; }")  # fmt: skip
    assert failed.returncode == 4, failed.stderr
    document = json.loads(failed.stdout)
    assert [(r["host"], r["status"], r["exit_code"], r["output"]) for r in document["results"]] == [
        ("lab1", "failed", 2, "[stderr]\nmissing")
    ]
    assert document["argv"][:2] == ["maint", "exec"] and document["playbooks"][0]["name"] == "exec"


def test_run_list_hosts_connects_to_nothing(run_maint: Any, lab: Lab, tmp_path: Path) -> None:
    listed = run_maint("run", "health", "-i", lab.inventory, "-l", "lab1:lab3", "--list-hosts")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["playbook: health (hosts: all)", "  hosts (2):", "    lab1", "    lab3"]
    assert not (tmp_path / ".maint" / "maint.db").exists()
