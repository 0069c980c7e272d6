"""The built-in Ansible playbooks on the lab, through `maint run` (real ansible-playbook via ansible-runner)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab
from maint.testing import broken

pytestmark = pytest.mark.lab


def run(maint_cli: Any, lab: Lab, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = maint_cli("run", *args, "-i", lab.inventory, "--format", "json", "--no-tickets",
                     env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"}, timeout=180)  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, document


def failed_hosts(document: dict[str, Any]) -> set[str]:
    return {result["host"] for result in document["results"] if result["status"] == "failed"}


def test_apt_security_fails_only_where_security_updates_are_pending(
    lab: Lab, maint_cli: Any, tmp_path: Path
) -> None:
    code, healthy = run(maint_cli, lab, tmp_path, "ansible/apt-security", "-l", "lab1,lab2")
    assert code == 0, healthy["results"]
    assert failed_hosts(healthy) == set()
    with broken(lab, "lab2", "pending-updates"):
        code, document = run(maint_cli, lab, tmp_path, "ansible/apt-security", "-l", "lab1,lab2")
    assert code == 4
    assert failed_hosts(document) == {"lab2"}
    (failure,) = [r for r in document["results"] if r["status"] == "failed"]
    assert "security update" in failure["summary"] and "maint-lab-secure" in failure["summary"]
    assert failure["step"].startswith("apt-security/")


def test_logrotate_passes_on_a_clean_lab_host(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    code, document = run(maint_cli, lab, tmp_path, "ansible/logrotate", "-l", "lab1")
    assert code == 0, document["results"]
    assert {result["host"] for result in document["results"]} == {"lab1"}
    assert any(result["status"] == "ok" for result in document["results"])
