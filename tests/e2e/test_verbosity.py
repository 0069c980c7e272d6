"""``-v``/``-vv``/``-vvv``, ``NO_COLOR`` and ``--no-color``: what a sysadmin sees when a step misbehaves."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from maint.lab import Lab

RunMaint = Callable[..., "subprocess.CompletedProcess[str]"]
SECRET = "s3cr3t-db-value"


def project(tmp_path: Path) -> Path:
    (tmp_path / "book.yml").write_text(
        "steps:\n  - id: hello\n    type: command\n    command: echo hello {{ db_password }}; echo oops >&2\n"
    )
    (tmp_path / "hosts.ini").write_text(f"[web]\nweb1 ansible_connection=local db_password={SECRET}\n")
    return tmp_path


def test_v_shows_each_steps_command_and_vv_its_output_secrets_masked(maint_cli: RunMaint, tmp_path: Path) -> None:
    directory = project(tmp_path)
    env = {"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"}
    quiet = maint_cli("run", "book.yml", "-i", "hosts.ini", cwd=directory, env=env)
    assert quiet.returncode == 0 and "$ echo" not in quiet.stderr
    one = maint_cli("run", "book.yml", "-i", "hosts.ini", "-v", cwd=directory, env=env)
    assert "web1 | hello | ok | hello ***\n  $ echo hello ***; echo oops >&2\n" in one.stderr
    assert "  | " not in one.stderr
    two = maint_cli("-vv", "run", "book.yml", "-i", "hosts.ini", cwd=directory, env=env)  # on the group too
    assert "  $ echo hello ***; echo oops >&2\n  | hello ***\n  | [stderr]\n  | oops\n" in two.stderr
    shown = maint_cli("runs", "show", "last", "-v", cwd=directory, env=env)
    assert "  $ echo hello ***; echo oops >&2" in shown.stdout
    document = json.loads(maint_cli("runs", "show", "last", "--format", "json", cwd=directory, env=env).stdout)
    assert document["results"][0]["command"] == "echo hello ***; echo oops >&2"
    for done in (quiet, one, two, shown):
        assert SECRET not in done.stdout + done.stderr
    assert SECRET.encode() not in (tmp_path / "maint.db").read_bytes()


def test_vvv_says_how_each_host_was_reached(lab: Lab, run_maint: RunMaint, tmp_path: Path) -> None:
    (tmp_path / "book.yml").write_text("steps:\n  - id: kernel\n    type: command\n    command: uname -r\n")
    done = run_maint("run", tmp_path / "book.yml", "-i", lab.inventory, "-l", "lab1", "-vvv",
                     env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    host = lab.host("lab1")
    assert f"maint: debug: lab1: connecting to {host.address}:{host.port} as {lab.user} (" in done.stderr
    assert f"maint: debug: host key of [{host.address}]:{host.port}: ssh-ed25519 SHA256:" in done.stderr
    assert f"maint: debug: logged in as {lab.user} with {lab.key_file}" in done.stderr
    assert "  $ uname -r\n  | " in done.stderr


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """What ``argv`` writes on stderr when stdout and stderr are a terminal (a pseudo-terminal here)."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(argv, stdout=terminal, stderr=terminal, stdin=subprocess.DEVNULL, env=env)
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other side closed: the process is done writing
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
    finally:
        os.close(controller)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize(("extra_env", "options", "coloured"), [
    ({}, [], True), ({"NO_COLOR": "1"}, [], False), ({}, ["--no-color"], False),
])  # fmt: skip
def test_colour_only_on_a_terminal_and_never_with_no_color(
    maint_bin: Path, tmp_path: Path, extra_env: dict[str, str], options: list[str], coloured: bool
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    argv = [str(maint_bin), *options, "run", str(tmp_path / "missing.yml"), "-i", "localhost,"]
    shown = _on_a_terminal(argv, {**env, **extra_env})
    assert "maint: error: playbook file" in shown
    assert ("\x1b[31m" in shown) is coloured
    piped = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert piped.returncode == 3 and "\x1b[" not in piped.stderr  # not a terminal: never colour
