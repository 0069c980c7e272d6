"""A dynamic inventory script that hangs: maint stops it and its children at inventory_timeout, exit 3."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cli_output import assert_one_line_error

from maint.testing import wait_until


def live_group_members(group: int) -> list[int]:
    """Processes (zombies aside) whose process group is ``group``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


@pytest.mark.parametrize("command", [("inventory", "list"), ("run", "health")])
def test_a_hanging_inventory_script_is_stopped_with_its_children(
    run_maint: Any, tmp_path: Path, command: tuple[str, ...]
) -> None:
    pid_file = tmp_path / "script.pid"
    script = tmp_path / "inventory.sh"
    # The script starts a child that would outlive it, then hangs itself.
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nsleep 3600 &\nsleep 3600\n")
    script.chmod(0o755)
    (tmp_path / "maint.yml").write_text("inventory_timeout: 1\n")
    started = time.monotonic()
    done = run_maint(*command, "-i", script, env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"})
    assert time.monotonic() - started < 30
    assert_one_line_error(done, 3, str(script), "did not finish within 1 s", "inventory_timeout in maint.yml")
    # The script ran in a process group of its own (its pid is the group's id), killed as a whole:
    # nothing of it is left once the kernel has delivered the signal.
    group = int(pid_file.read_text())
    wait_until(lambda: live_group_members(group) == [], 5, f"the script's process group {group} to end")


def test_a_script_within_its_timeout_is_read(run_maint: Any, tmp_path: Path) -> None:
    script = tmp_path / "inventory.sh"
    script.write_text(
        "#!/bin/sh\nsleep 0.2\n"
        """echo '{"web": {"hosts": ["web1"]}, "_meta": {"hostvars": {"web1": {"ansible_host": "127.0.0.1"}}}}'\n"""
    )
    script.chmod(0o755)
    (tmp_path / "maint.yml").write_text("inventory_timeout: 10s\n")
    done = run_maint("inventory", "list", "-i", script)
    assert done.returncode == 0, done.stderr
    assert "web1" in done.stdout
