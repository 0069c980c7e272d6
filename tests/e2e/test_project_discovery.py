"""A sysadmin's layout, as a real subprocess against the lab: maint.yml at the repository's root, ansible.cfg in a
subdirectory naming the inventory relative to itself and the login user and key; `maint run` from the
subdirectory finds all of it, and keeps its state beside maint.yml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from maint.lab import Lab

CALM = ("-e", "health_load_warn=1000 health_load_critical=1000")


def test_run_from_a_subdirectory_with_maint_yml_above_and_ansible_cfg_here(
    lab: Lab, run_maint: Any, tmp_path: Path
) -> None:
    project = tmp_path / "fleet"
    (project / ".git").mkdir(parents=True)
    (project / "maint.yml").write_text("tickets: {enabled: false}\n")
    # The lab's inventory without a login user and key: ansible.cfg's remote_user and private_key_file give them.
    (project / "lab").mkdir()
    lines = Path(lab.inventory).read_text().splitlines()
    kept = [line for line in lines if not line.startswith(("ansible_user=", "ansible_ssh_private_key_file="))]
    assert len(kept) == len(lines) - 2
    (project / "lab" / "inventory.ini").write_text("\n".join(kept) + "\n")
    ops = project / "ops"
    ops.mkdir(mode=0o755)
    (ops / "ansible.cfg").write_text(
        f"[defaults]\ninventory = ../lab/inventory.ini\nremote_user = {lab.user}\nprivate_key_file = {lab.key_file}\n"
        "forks = 2\n"
    )
    environment = {"MAINT_INVENTORY": "", "ANSIBLE_CONFIG": ""}
    done = run_maint("run", "health", "-l", "lab1", *CALM, "--format", "json", cwd=ops, env=environment)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert {result["host"] for result in document["results"]} == {"lab1"}
    assert {result["status"] for result in document["results"]} <= {"ok", "skipped"}, document["results"]
    # The state is beside maint.yml, not in the directory maint ran in.
    assert (project / ".maint" / "maint.db").is_file()
    assert any((project / ".maint" / "cache").iterdir())
    assert not (ops / ".maint").exists()
    listed = run_maint("runs", "list", "--format", "json", cwd=project / "lab")
    assert [run["id"] for run in json.loads(listed.stdout)] == [document["id"]]
