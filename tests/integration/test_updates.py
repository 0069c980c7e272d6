"""The updates playbooks over real SSH on the lab: each host's private apt world, real apt and dpkg.

Every apt and dpkg call here works on the host's ``STATE/apt`` (``apt_state_dir``); the machine's
own package database, apt lists and logs must not change, which each test checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab
from maint.labfaults import updates as lab_updates
from maint.testing import broken

pytestmark = pytest.mark.lab

# What apt and dpkg write on the machine when they act on its own packages.
MACHINE_FILES = (
    Path("/var/lib/dpkg/status"),
    Path("/var/lib/apt/extended_states"),
    Path("/var/log/apt/history.log"),
    Path("/var/log/dpkg.log"),
)


def digests() -> dict[Path, str | None]:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None for path in MACHINE_FILES}


@pytest.fixture(autouse=True)
def machine_untouched() -> Iterator[None]:
    before = digests()
    yield
    assert digests() == before, "apt or dpkg changed the machine's own package state"


def run_json(maint_cli: Any, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = maint_cli("run", *args, "--format", "json", env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"})
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def by_host(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["host"]: result for result in document["results"]}


def installed(lab: Lab, host: str) -> dict[str, str]:
    """Package -> version in the host's private dpkg status file."""
    versions: dict[str, str] = {}
    name = ""
    for line in (lab_updates.state_dir(lab.host(host)) / "dpkg" / "status").read_text().splitlines():
        if line.startswith("Package: "):
            name = line.removeprefix("Package: ")
        elif line.startswith("Version: "):
            versions[name] = line.removeprefix("Version: ")
    return versions


def test_healthy_lab_has_no_pending_updates(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    code, document = run_json(maint_cli, tmp_path, "updates-check", "-i", str(lab.inventory))
    assert code == 0, document
    assert len(document["results"]) == len(lab.hosts)
    for result in document["results"]:
        assert result["status"] == "ok", result
        assert result["summary"] == "no updates pending"
        assert result["metrics"] == {"pending": 0, "security": 0, "held": 0, "kept_back": 0}


def test_pending_updates_fault_fails_with_one_security_update(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    with broken(lab, "lab2", "pending-updates"):
        code, document = run_json(maint_cli, tmp_path, "updates-check", "-i", str(lab.inventory), "-l", "lab1,lab2")
        assert code == 4
        results = by_host(document)
        assert results["lab1"]["status"] == "ok"
        pending = results["lab2"]
        assert pending["status"] == "failed"
        assert pending["metrics"] == {"pending": 2, "security": 1, "held": 0, "kept_back": 0}
        assert "maint-lab-secure 1.0 -> 1.1" in pending["summary"]
        assert "maint-lab-tool 1.0 -> 1.1" in pending["summary"]

        # Without the security threshold the same host is only a warning.
        code, document = run_json(
            maint_cli, tmp_path, "updates-check", "-i", str(lab.inventory), "-l", "lab2",
            "-e", "updates_security_critical=''",
        )  # fmt: skip
        assert code == 0
        assert by_host(document)["lab2"]["status"] == "warning"
    code, document = run_json(maint_cli, tmp_path, "updates-check", "-i", str(lab.inventory), "-l", "lab2")
    assert code == 0
    assert by_host(document)["lab2"]["metrics"]["pending"] == 0


def test_apply_dry_run_changes_nothing(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    state = lab_updates.state_dir(lab.host("lab3"))
    with broken(lab, "lab3", "pending-updates"):
        status_before = (state / "dpkg" / "status").read_bytes()
        code, document = run_json(
            maint_cli, tmp_path, "updates-apply", "-i", str(lab.inventory), "-l", "lab3", "-e", "updates_dry_run=true"
        )
        assert code == 0, document
        result = by_host(document)["lab3"]
        assert result["status"] == "ok"
        assert result["metrics"] == {"upgraded": 0, "pending": 2, "reboot_required": 0}
        assert result["summary"].startswith("dry run: would upgrade 2 packages (1 security)")
        assert (state / "dpkg" / "status").read_bytes() == status_before
        assert not (state / "root").exists()


def test_apply_upgrades_the_private_dpkg_database(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    host = lab.host("lab4")
    state = lab_updates.state_dir(host)
    with broken(lab, "lab4", "pending-updates"):
        # Security updates only: the normal one stays pending.
        code, document = run_json(
            maint_cli, tmp_path, "updates-apply", "-i", str(lab.inventory), "-l", "lab4",
            "-e", "updates_security_only=true",
        )  # fmt: skip
        assert code == 0, document
        result = by_host(document)["lab4"]
        assert result["metrics"] == {"upgraded": 1, "security": 1, "remaining": 0, "reboot_required": 1}
        assert result["summary"] == "upgraded 1 package: maint-lab-secure 1.0 -> 1.1; reboot required"
        assert installed(lab, "lab4") == {"maint-lab-tool": "1.0", "maint-lab-secure": "1.1"}
        code, document = run_json(maint_cli, tmp_path, "updates-check", "-i", str(lab.inventory), "-l", "lab4")
        assert by_host(document)["lab4"]["status"] == "warning"
        assert by_host(document)["lab4"]["metrics"]["security"] == 0

        code, document = run_json(maint_cli, tmp_path, "updates-apply", "-i", str(lab.inventory), "-l", "lab4")
        assert code == 0, document
        result = by_host(document)["lab4"]
        assert result["summary"] == "upgraded 1 package: maint-lab-tool 1.0 -> 1.1; reboot required"
        assert installed(lab, "lab4") == {"maint-lab-tool": "1.1", "maint-lab-secure": "1.1"}
        # The packages' files landed under the host's package root, apt's history in its log dir.
        shipped = state / "root" / "usr" / "share" / "maint-lab" / "maint-lab-tool.version"
        assert shipped.read_text() == "maint-lab-tool 1.1\n"
        assert lab_updates.reboot_file(host).exists()
        assert "maint-lab-tool" in (state / "log" / "history.log").read_text()
        assert not Path("/usr/share/maint-lab").exists()

        code, document = run_json(maint_cli, tmp_path, "updates-check", "-i", str(lab.inventory), "-l", "lab4")
        assert code == 0
        assert by_host(document)["lab4"]["metrics"]["pending"] == 0
    # Fixing the fault restores the healthy host: 1.0 installed, nothing pending, no reboot needed.
    assert installed(lab, "lab4") == {"maint-lab-tool": "1.0", "maint-lab-secure": "1.0"}
    assert not lab_updates.reboot_file(host).exists()


def test_update_lists_runs_apt_get_update_on_the_private_state(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    with broken(lab, "lab5", "pending-updates"):
        code, document = run_json(
            maint_cli, tmp_path, "updates-check", "-i", str(lab.inventory), "-l", "lab5", "-e", "apt_update_lists=true"
        )
        assert code == 4, document
        assert by_host(document)["lab5"]["metrics"]["pending"] == 2


def test_state_dir_without_apt_conf_is_an_error(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    code, document = run_json(
        maint_cli, tmp_path, "updates-check", "-i", str(lab.inventory), "-l", "lab6",
        "-e", f"apt_state_dir={tmp_path / 'nowhere'}",
    )  # fmt: skip
    assert code == 4
    result = by_host(document)["lab6"]
    assert result["status"] == "error"
    assert "state_dir needs its apt.conf" in result["summary"]
