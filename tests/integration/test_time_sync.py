"""time.sync against a real chronyd (started with -x: it never touches this machine's clock)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from maint.lab import Lab

pytestmark = pytest.mark.lab

SOCKET = Path("/run/chrony/chronyd.sock")


@pytest.fixture
def chronyd(tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """Start chronyd -x with a given configuration on chronyc's default socket; stop it afterwards."""
    if SOCKET.exists():
        pytest.skip("a chronyd of this machine already answers on /run/chrony: not touching it")
    SOCKET.parent.mkdir(mode=0o750, exist_ok=True)
    pidfile = tmp_path / "chronyd.pid"
    running: list[int] = []

    def start(extra: str) -> None:
        for pid in running:
            subprocess.run(["kill", str(pid)], check=False)
        running.clear()
        deadline = time.monotonic() + 10
        while SOCKET.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        config = tmp_path / "chrony.conf"
        config.write_text(f"pidfile {pidfile}\n{extra}\n")
        subprocess.run(["chronyd", "-x", "-u", "root", "-f", str(config)], check=True)
        while not SOCKET.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        running.append(int(pidfile.read_text()))

    try:
        yield start
    finally:
        for pid in running:
            subprocess.run(["kill", str(pid)], check=False)


def clock_result(maint_cli: Any, lab: Lab, tmp_path: Path) -> dict[str, Any]:
    book = tmp_path / "clock.yml"
    book.write_text("steps:\n  - id: clock\n    type: time.sync\n")
    done = maint_cli("run", book, "-i", lab.inventory, "-l", "lab1", "--format", "json",
                     env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"})  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)["results"][0]
    return result


def test_time_sync_with_a_real_chronyd(lab: Lab, maint_cli: Any, tmp_path: Path, chronyd: Any) -> None:
    chronyd("local stratum 8")
    synced = clock_result(maint_cli, lab, tmp_path)
    assert synced["status"] == "ok", synced
    assert synced["summary"].startswith("chrony synchronised")
    chronyd("")  # no source at all
    unsynced = clock_result(maint_cli, lab, tmp_path)
    assert unsynced["status"] == "failed"
    assert unsynced["summary"] == "chrony is not synchronised (leap status: Not synchronised)"
