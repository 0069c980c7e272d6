"""Malformed host patterns and timeouts through the real CLI: exit 3 naming the pattern or file:line for
a file, exit 2 for a command-line option, one line, no traceback.

The many malformed patterns of a limit or a playbook go through ``maint.cli.main`` in-process
(``maint_cli``); the rest are real subprocesses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_output import assert_one_line_error

BAD_PATTERNS = ["web:&", ":", "&", "!", "web[", "web[1:", "~[", "web,,db", "", "web:!", "~(", "web[]", "&&"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hosts.ini").write_text("[web]\nweb1 ansible_host=127.0.0.1 ansible_port=1\n[db]\ndb1\n")
    return tmp_path


@pytest.mark.parametrize("pattern", BAD_PATTERNS)
def test_a_malformed_limit_is_bad_input_naming_it(maint_cli: Any, project: Path, pattern: str) -> None:
    for command in (("inventory", "list"), ("run", "health")):
        done = maint_cli(*command, "-i", "hosts.ini", "-l", pattern, env={"MAINT_DB": f"sqlite:///{project}/m.db"})
        assert_one_line_error(done, 3, f"invalid limit pattern {pattern!r}")


@pytest.mark.parametrize("pattern", ["web:&", "web[", "~["])
def test_a_malformed_pattern_in_a_playbook_names_its_file_and_line(maint_cli: Any, project: Path, pattern: str) -> None:
    book = project / "book.yml"
    book.write_text(f"name: book\nhosts: '{pattern}'\nsteps:\n  - id: a\n    type: command\n    command: 'true'\n")
    done = maint_cli("run", book, "-i", "hosts.ini")
    assert_one_line_error(done, 3, f"{book}:2:", f"invalid host pattern {pattern!r}")


def test_malformed_patterns_in_maint_yml_name_their_line(run_maint: Any, project: Path) -> None:
    config = project / "maint.yml"
    config.write_text("windows:\n  nightly:\n    cron: '0 2 * * *'\n    duration: 1h\n    hosts: 'web:&'\n")
    assert_one_line_error(run_maint("config", "validate"), 3, f"{config}:5:", "windows.nightly.hosts", "'web:&'")
    config.write_text("tickets:\n  quiet:\n    - hosts: '!'\n      reason: CHG-1\n")
    assert_one_line_error(run_maint("runs", "list"), 3, f"{config}:3:", "tickets.quiet[0].hosts", "'!'")


def test_inventory_host_with_a_malformed_pattern(run_maint: Any, project: Path) -> None:
    assert_one_line_error(run_maint("inventory", "host", "-i", "hosts.ini", "&"), 3, "invalid host pattern '&'")


@pytest.mark.parametrize(
    "arguments",
    [("run", "health", "--timeout", "-5"), ("run", "health", "--timeout", "0"), ("run", "health", "--timeout", "nan"),
     ("run", "health", "--connect-timeout", "0"), ("run", "health", "--connect-timeout", "-1"),
     ("tickets", "sync", "--within", "0")],
)  # fmt: skip
def test_a_timeout_option_that_is_not_positive_is_a_usage_error(
    run_maint: Any, project: Path, arguments: tuple[str, ...]
) -> None:
    done = run_maint(*arguments, "-i", "hosts.ini") if arguments[0] == "run" else run_maint(*arguments)
    assert done.returncode == 2, done.stderr
    assert f"Invalid value for '{arguments[-2]}'" in done.stderr
    assert "there is no 'no limit'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("where", "value"), [("playbook", "-3"), ("playbook", "0"), ("step", "-3"), ("step", ".inf")])
def test_a_timeout_in_a_playbook_that_is_not_positive_names_file_and_line(
    run_maint: Any, project: Path, where: str, value: str
) -> None:
    book = project / "book.yml"
    playbook_timeout = f"timeout: {value}\n" if where == "playbook" else ""
    step_timeout = f"    timeout: {value}\n" if where == "step" else ""
    book.write_text(f"name: book\n{playbook_timeout}steps:\n  - id: a\n    type: command\n    command: 'true'\n"
                    f"{step_timeout}")  # fmt: skip
    line = 2 if where == "playbook" else 6
    done = run_maint("run", book, "-i", "hosts.ini")
    assert_one_line_error(done, 3, f"{book}:{line}:", "'timeout'", "there is no 'no limit'")


@pytest.mark.parametrize("option", ["tickets:\n  timeout: 0\n", "inventory_timeout: -3\n"])
def test_a_timeout_in_maint_yml_that_is_not_positive_names_its_line(run_maint: Any, project: Path, option: str) -> None:
    config = project / "maint.yml"
    config.write_text(option)
    line = option.count("\n")
    assert_one_line_error(run_maint("config", "validate"), 3, f"{config}:{line}:", "there is no 'no limit'")
