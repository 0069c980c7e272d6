"""Host health checks over real SSH on the lab, with the lab faults that each one must find."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab
from maint.testing import broken

pytestmark = pytest.mark.lab

CALM = ("-e", "health_load_warn=1000 health_load_critical=1000")


def run_json(maint_cli: Any, tmp_path: Path, *args: Any) -> tuple[int, dict[str, Any]]:
    done = maint_cli(*args, "--format", "json", env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"})
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout.startswith("{"), done.stderr
    return done.returncode, json.loads(done.stdout)


def problems(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["host"], r["step"]): r["status"] for r in document["results"] if r["status"] not in ("ok", "skipped")}


def test_health_finds_exactly_the_broken_pairs(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    code, healthy = run_json(maint_cli, tmp_path, "run", "health", "-i", lab.inventory, *CALM)
    assert code == 0, problems(healthy)
    statuses = {(r["step"], r["status"]) for r in healthy["results"]}
    assert ("clock", "skipped") in statuses  # the lab's hosts declare time_sync_managed=false
    assert ("tls-certificate", "ok") in statuses
    with ExitStack() as faults:
        faults.enter_context(broken(lab, "lab2", "disk-full"))
        faults.enter_context(broken(lab, "lab3", "cert-expiring"))
        faults.enter_context(broken(lab, "lab5", "service-down"))
        code, document = run_json(maint_cli, tmp_path, "run", "health", "-i", lab.inventory, *CALM)
    assert code == 4
    assert problems(document) == {
        ("lab2", "root-disk"): "failed",
        ("lab3", "tls-certificate"): "failed",
        ("lab5", "sshd-running"): "failed",
    }
    summaries = {(r["host"], r["step"]): r["summary"] for r in document["results"]}
    assert "expires in 3 days" in summaries[("lab3", "tls-certificate")]
    assert "999999999" in summaries[("lab5", "sshd-running")]
    code, fixed = run_json(maint_cli, tmp_path, "run", "health", "-i", lab.inventory, *CALM)
    assert code == 0, problems(fixed)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[int]:
    """openssl s_server on 127.0.0.1 with a certificate valid for 20 days."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "20", "-subj", "/CN=tls-test"],
        check=True, capture_output=True,
    )  # fmt: skip
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key", str(key), "-www"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_checks_of_each_type_on_a_live_host(lab: Lab, maint_cli: Any, tmp_path: Path, tls_server: int) -> None:
    state = Path(lab.host("lab1").state_dir)
    logs = state / "logs"
    logs.mkdir(exist_ok=True)
    old = logs / "app.log.1.gz"
    old.write_bytes(b"x" * 300_000)
    past = time.time() - 10 * 86400
    os.utime(old, (past, past))
    (logs / "app.log").write_bytes(b"y" * 1000)
    (state / "reboot-required").write_text("*** System restart required ***\n")
    (state / "reboot-required.pkgs").write_text("linux-image-amd64\n")
    book = tmp_path / "book.yml"
    book.write_text(
        "steps:\n"
        f"  - id: live-cert\n    type: cert.expiry\n    address: 127.0.0.1:{tls_server}\n"
        "  - id: logs-before\n    type: log.size\n    path: '{{ maint_state_dir }}/logs'\n    max_size: 100K\n"
        "  - id: cleanup\n    type: log.cleanup\n    path: '{{ maint_state_dir }}/logs'\n    older_than: 7d\n"
        "  - id: logs-after\n    type: log.size\n    path: '{{ maint_state_dir }}/logs'\n    max_size: 100K\n"
        "  - id: reboot\n    type: reboot.required\n    path: '{{ maint_state_dir }}/reboot-required'\n"
        "  - id: sshd-by-name\n    type: process.running\n    name: sshd\n"
        "  - id: no-such-process\n    type: process.running\n    name: maint-no-such-daemon\n"
        "  - id: unit\n    type: service.active\n    name: ssh\n"
        "  - id: inodes\n    type: disk.inodes\n    path: /\n"
        "  - id: memory\n    type: mem.available\n    warn_below: 0\n    critical_below: 0\n",
    )
    try:
        code, document = run_json(maint_cli, tmp_path, "run", book, "-i", lab.inventory, "-l", "lab1")
    finally:
        (state / "reboot-required").unlink()
        (state / "reboot-required.pkgs").unlink()
    results = {r["step"]: r for r in document["results"]}
    assert code == 4
    assert results["live-cert"]["status"] == "warning"
    assert "CN = tls-test" in results["live-cert"]["summary"]
    assert 18 <= results["live-cert"]["metrics"]["days_left"] <= 20
    assert results["logs-before"]["status"] == "failed"
    assert results["cleanup"]["summary"].startswith("removed 1 files, 293.0 KiB freed")
    assert not old.exists()
    assert results["logs-after"]["status"] == "ok"
    assert results["reboot"]["status"] == "warning"
    assert results["reboot"]["summary"] == "reboot pending (asked by linux-image-amd64)"
    assert results["sshd-by-name"]["status"] == "ok"
    assert results["no-such-process"]["status"] == "failed"
    # This machine runs no systemd: the unit check says so instead of passing.
    assert results["unit"]["status"] == "error"
    assert "process.running" in results["unit"]["summary"]
    assert results["inodes"]["status"] == "ok"
    assert results["memory"]["metrics"]["total_bytes"] > 0


def test_check_mode_changes_nothing(lab: Lab, maint_cli: Any, tmp_path: Path) -> None:
    logs = Path(lab.host("lab2").state_dir) / "old-logs"
    logs.mkdir(exist_ok=True)
    old = logs / "x.gz"
    old.write_text("old")
    past = time.time() - 30 * 86400
    os.utime(old, (past, past))
    book = tmp_path / "book.yml"
    book.write_text(
        "steps:\n"
        "  - id: size\n    type: log.size\n    path: '{{ maint_state_dir }}/old-logs'\n    max_size: 1M\n"
        "  - id: cleanup\n    type: log.cleanup\n    path: '{{ maint_state_dir }}/old-logs'\n"
    )
    code, document = run_json(maint_cli, tmp_path, "run", book, "-i", lab.inventory, "-l", "lab2", "--check")
    results = {r["step"]: r for r in document["results"]}
    assert code == 0
    assert results["size"]["status"] == "ok"
    assert results["cleanup"]["status"] == "skipped"
    assert results["cleanup"]["summary"] == "check mode: log.cleanup changes the host and has no dry run"
    assert old.exists()
    assert document["options"]["check_mode"] is True
    old.unlink()
