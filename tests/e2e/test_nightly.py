"""Acceptance: `maint run nightly` on a 20-host lab with one different fault on each of several hosts
reports exactly those (host, check) pairs as failed, and nothing once the lab is fixed. The lab is logged
into as a non-root account that becomes root with sudo and a password, as a real fleet is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lab_accounts import acceptance_lab

from maint import lab as lab_library
from maint import playbooks

pytestmark = pytest.mark.lab

# fault -> the nightly step that must find it
FOUND_BY = {
    "virus": "virus-scan",
    "disk-full": "root-disk",
    "cert-expiring": "tls-certificate",
    "service-down": "sshd-running",
    "stale-backup": "restic-backup",
    "corrupt-backup": "restic-backup",
    "pending-updates": "pending-updates",
}
CALM = ("-e", "health_load_warn=1000 health_load_critical=1000")


def test_nightly_reports_exactly_the_broken_pairs(run_maint: Any, tmp_path: Path) -> None:
    nightly_steps = {step.id for step in playbooks.load("nightly", tmp_path).steps}
    faults = [name for name in FOUND_BY if name in lab_library.faults() and FOUND_BY[name] in nightly_steps]
    assert len(faults) >= 4, faults
    env = {"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"}
    with acceptance_lab("maintaccept1", "127.0.30.2", 20) as (lab, become):
        broken_hosts = {}
        for index, fault in enumerate(faults):
            host = f"lab{2 + 3 * index}"
            lab_library.break_host(lab.directory, host, fault)
            broken_hosts[host] = fault
        done = run_maint("run", "nightly", "-i", lab.inventory, *become, *CALM, "--format", "json", env=env,
                         timeout=300)  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
        document = json.loads(done.stdout)
        failed = {(r["host"], r["step"]) for r in document["results"] if r["status"] not in ("ok", "skipped")}
        assert failed == {(host, FOUND_BY[fault]) for host, fault in broken_hosts.items()}, document["results"]
        assert done.returncode == 4
        assert len(document["results"]) == 20 * len(nightly_steps)
        for host in broken_hosts:
            lab_library.fix_host(lab.directory, host)
        again = run_maint("run", "nightly", "-i", lab.inventory, *become, *CALM, "--format", "json", env=env,
                          timeout=300)  # fmt: skip
        fixed = json.loads(again.stdout)
        assert [r for r in fixed["results"] if r["status"] not in ("ok", "skipped")] == []
        assert again.returncode == 0
