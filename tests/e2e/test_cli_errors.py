"""Bad input through the real CLI: one line naming the file (and line), a documented exit code, no traceback.

A malformed playbook and an unknown option go through a real subprocess; the other cases, the same
error path with other messages, through ``maint.cli.main`` in-process (``maint_cli``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_output import assert_one_line_error

from maint.errors import ExitCode


def test_exit_codes_are_the_documented_ones() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "INTERNAL": 1, "USAGE": 2, "BAD_INPUT": 3, "FAILED": 4, "UNREACHABLE": 5,
        "ABORTED": 6, "NOT_STARTED": 7, "STORE_UNAVAILABLE": 8, "INTERRUPTED": 130,
    }  # fmt: skip


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.ini"
    path.write_text("[web]\nweb1 ansible_host=127.0.0.1 ansible_port=1\n")
    return path


def test_malformed_playbook(run_maint: Any, tmp_path: Path, inventory: Path) -> None:
    book = tmp_path / "bad.yml"
    book.write_text("steps:\n  - id: a\n    type: command\n    command: [unclosed\n")
    done = run_maint("run", book, "-i", inventory)
    assert_one_line_error(done, 3, f"{book}:5:", "invalid YAML")


def test_playbook_with_unknown_step_type(maint_cli: Any, tmp_path: Path, inventory: Path) -> None:
    book = tmp_path / "bad.yml"
    book.write_text("steps:\n  - id: a\n    type: disk.usgae\n")
    done = maint_cli("run", book, "-i", inventory)
    assert_one_line_error(done, 3, f"{book}:3:", "unknown type 'disk.usgae'", "did you mean 'disk.usage'?")


def test_unknown_playbook_name(maint_cli: Any, inventory: Path) -> None:
    assert_one_line_error(maint_cli("run", "helth", "-i", inventory), 3, "no playbook named 'helth'", "health")


def test_missing_inventory(maint_cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "nope.ini"
    assert_one_line_error(maint_cli("run", "health", "-i", missing), 3, str(missing))


def test_malformed_inventory(maint_cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text("[web]\nweb1 ansible_port=22\n[web:vars\nx=1\n")
    assert_one_line_error(maint_cli("run", "health", "-i", bad), 3, str(bad))


def test_no_host_matches(maint_cli: Any, inventory: Path) -> None:
    done = maint_cli("run", "health", "-i", inventory, "-l", "db*")
    assert_one_line_error(done, 3, "no hosts matched", "db*")


def test_bad_extra_vars_is_a_usage_error(maint_cli: Any, inventory: Path) -> None:
    done = maint_cli("run", "health", "-i", inventory, "-e", "oops")
    assert done.returncode == 2
    assert "KEY=VALUE" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_option_is_a_usage_error(run_maint: Any) -> None:
    done = run_maint("run", "health", "--frobnicate")
    assert done.returncode == 2
    assert "No such option" in done.stderr


def test_unknown_run_id(maint_cli: Any, tmp_path: Path) -> None:
    assert maint_cli("db", "upgrade", env={"MAINT_DB": f"sqlite:///{tmp_path / 'm.db'}"}).returncode == 0
    done = maint_cli("runs", "show", "nosuchrun", env={"MAINT_DB": f"sqlite:///{tmp_path / 'm.db'}"})
    assert_one_line_error(done, 3, "no run with id 'nosuchrun'")


def test_bad_store_url(maint_cli: Any, inventory: Path) -> None:
    done = maint_cli("runs", "list", "--db", "nosuchdb://x")
    assert done.returncode == 3
    assert "Traceback" not in done.stderr


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom maint.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\nassert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('paramiko', 'ansible', 'sqlalchemy', 'jinja2') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
