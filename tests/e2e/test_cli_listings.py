"""The listing commands: playbooks, step types, runs on an empty store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_playbooks_list_and_show(run_maint: Any, tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "mine.yml").write_text(
        "description: Our own\nsteps:\n  - id: a\n    type: command\n    command: 'true'\n"
    )
    listed = json.loads(run_maint("playbooks", "list", "--format", "json", cwd=tmp_path).stdout)
    by_name = {item["name"]: item for item in listed}
    assert by_name["health"]["builtin"] is True
    assert by_name["mine"] == {
        "schema_version": 1, "name": "mine", "path": str(tmp_path / "playbooks" / "mine.yml"), "builtin": False,
        "description": "Our own", "steps": ["a"],
    }  # fmt: skip
    text = run_maint("playbooks", "list", cwd=tmp_path).stdout
    assert text.splitlines()[0].split() == ["NAME", "SOURCE", "STEPS", "DESCRIPTION"]
    shown = run_maint("playbooks", "show", "health", cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.startswith("name: health")


def test_checks_list(run_maint: Any) -> None:
    listed = json.loads(run_maint("checks", "list", "--format", "json").stdout)
    types = {item["type"]: item for item in listed}
    assert {"command", "disk.usage", "file.age", "cert.expiry", "av.clamav"} <= set(types)
    assert types["disk.usage"]["params"]["critical"] == {"required": False, "default": 90.0,
                                                         "help": "failed at or above this used percentage"}
    assert types["command"]["params"]["expect_rc"]["default"] == [0]


def test_runs_list_on_an_empty_store(run_maint: Any, tmp_path: Path) -> None:
    environment = {"MAINT_DB": f"sqlite:///{tmp_path / 'x.db'}"}
    done = run_maint("runs", "list", "--format", "json", env=environment)
    assert done.returncode == 0
    assert json.loads(done.stdout) == []  # no store at all: the same empty list, and it is not created
    assert done.stderr == f"maint: no store at {tmp_path / 'x.db'} ($MAINT_DB): nothing recorded yet\n"
    assert not (tmp_path / "x.db").exists()
    assert run_maint("db", "upgrade", env=environment).returncode == 0
    done = run_maint("runs", "list", "--format", "json", env=environment)
    assert done.returncode == 0
    assert json.loads(done.stdout) == []
