"""Every host check type, every outcome it can reach on a live host, over real SSH in one run.

Thresholds are set so that the same real host yields ok, warning, failed and error: this proves each
check can fail (and can pass) on real command output, not only on recorded samples.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab

pytestmark = pytest.mark.lab

STATE = "{{ maint_state_dir }}"
# (step id, type, params, expected status)
MATRIX: list[tuple[str, str, dict[str, Any], str]] = [
    ("disk-ok", "disk.usage", {"path": "/", "warn": 99, "critical": 100}, "ok"),
    ("disk-warning", "disk.usage", {"path": "/", "warn": 0, "critical": 100}, "warning"),
    ("disk-failed", "disk.usage", {"path": "/", "critical": 0}, "failed"),
    ("disk-error", "disk.usage", {"path": "/no/such/path"}, "error"),
    ("inodes-ok", "disk.inodes", {"path": "/", "warn": 99, "critical": 100}, "ok"),
    ("inodes-warning", "disk.inodes", {"path": "/", "warn": 0, "critical": 100}, "warning"),
    ("inodes-failed", "disk.inodes", {"path": "/", "critical": 0}, "failed"),
    ("inodes-error", "disk.inodes", {"path": "/no/such/path"}, "error"),
    ("age-ok", "file.age", {"path": f"{STATE}/matrix/fresh", "max_age": "1d"}, "ok"),
    ("age-warning", "file.age", {"path": f"{STATE}/matrix/old", "max_age": "7d", "warn_age": "1d"}, "warning"),
    ("age-failed", "file.age", {"path": f"{STATE}/matrix/old", "max_age": "1d"}, "failed"),
    ("age-error", "file.age", {"path": f"{STATE}/matrix/missing", "max_age": "1d", "missing": "error"}, "error"),
    ("mem-ok", "mem.available", {"warn_below": 0, "critical_below": 0}, "ok"),
    ("mem-warning", "mem.available", {"warn_below": 100, "critical_below": 0}, "warning"),
    ("mem-failed", "mem.available", {"critical_below": 100}, "failed"),
    ("reboot-ok", "reboot.required", {"path": f"{STATE}/matrix/missing"}, "ok"),
    ("reboot-warning", "reboot.required", {"path": f"{STATE}/matrix/reboot-required"}, "warning"),
    ("reboot-failed", "reboot.required", {"path": f"{STATE}/matrix/reboot-required", "status": "failed"}, "failed"),
    ("cert-ok", "cert.expiry", {"path": "{{ cert_path }}"}, "ok"),
    ("cert-warning", "cert.expiry", {"path": "{{ cert_path }}", "warn_days": 400}, "warning"),
    ("cert-failed", "cert.expiry", {"path": "{{ cert_path }}", "critical_days": 400}, "failed"),
    ("cert-error", "cert.expiry", {"path": f"{STATE}/matrix/missing.pem"}, "error"),
    ("process-ok", "process.running", {"pidfile": "{{ sshd_pidfile }}"}, "ok"),
    ("process-failed", "process.running", {"name": "maint-no-such-daemon"}, "failed"),
    ("process-error", "process.running", {"name": "sshd", "pidfile": "{{ sshd_pidfile }}"}, "error"),
    ("service-error", "service.active", {"name": "ssh"}, "error"),
    ("time-error", "time.sync", {}, "error"),
    ("logs-ok", "log.size", {"path": f"{STATE}/matrix", "max_size": "1G"}, "ok"),
    ("logs-warning", "log.size", {"path": f"{STATE}/matrix", "max_size": "1G", "warn_size": 1}, "warning"),
    ("logs-failed", "log.size", {"path": f"{STATE}/matrix", "max_size": 1}, "failed"),
    ("logs-error", "log.size", {"path": f"{STATE}/matrix/missing", "max_size": "1G"}, "error"),
    ("cleanup-ok", "log.cleanup", {"path": f"{STATE}/matrix", "pattern": "*.nothing"}, "ok"),
    ("cleanup-error", "log.cleanup", {"path": f"{STATE}/matrix/missing"}, "error"),
    ("command-ok", "command", {"command": "true"}, "ok"),
    ("command-warning", "command", {"command": "echo HIGH", "warn_stdout": "HIGH"}, "warning"),
    ("command-failed", "command", {"command": "false"}, "failed"),
    ("command-error", "command", {"command": "sleep 5", "timeout": 1}, "error"),
]


def test_every_check_reaches_every_outcome_on_a_live_host(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    matrix = Path(lab.host("lab4").state_dir) / "matrix"
    matrix.mkdir(exist_ok=True)
    (matrix / "fresh").write_text("x")
    (matrix / "old").write_text("x")
    old = time.time() - 3 * 86400
    os.utime(matrix / "old", (old, old))
    (matrix / "reboot-required").write_text("*** System restart required ***\n")
    steps = []
    for step_id, type_name, params, _ in MATRIX:
        lines = [f"  - id: {step_id}", f"    type: {type_name}"]
        lines += [f"    {key}: {json.dumps(value)}" for key, value in params.items()]
        steps.append("\n".join(lines))
    book = tmp_path / "matrix.yml"
    book.write_text("steps:\n" + "\n".join(steps) + "\n")
    done = maint_cli("run", book, "-i", lab.inventory, "-l", "lab4", "--format", "json",
                     env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"})  # fmt: skip
    document = json.loads(done.stdout)
    got = {result["step"]: (result["status"], result["summary"]) for result in document["results"]}
    wrong = {step: got[step] for step, _, _, status in MATRIX if got[step][0] != status}
    assert wrong == {}
    covered = {(type_name, status) for _, type_name, _, status in MATRIX}
    # Each type reaches failed (or, where the lab cannot show failure, error) and ok.
    for type_name in {type_name for _, type_name, _, _ in MATRIX} - {"service.active", "time.sync"}:
        assert (type_name, "ok") in covered
