"""``maint lab up --user``: a real Unix account logs in to real sshd hosts, with or without sudo. No mocks.

Every test removes the accounts, sudoers drop-ins and directories it made, even when it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from lab_accounts import account_exists, cleanup, private_base, user_lab

from maint import lab as lab_library
from maint.errors import ExitCode, LabError
from maint.lab import Lab, users
from maint.testing import broken, free_port, ssh_client, wait_until

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="creating the lab's users needs root"),
]

RunMaint = Callable[..., "subprocess.CompletedProcess[str]"]
SUDO = shutil.which("sudo", path="/usr/bin:/usr/sbin:/bin:/sbin")
needs_sudo = pytest.mark.skipif(SUDO is None, reason="sudo is not installed (scripts/setup --lab installs it)")


def run_as(lab: Lab, command: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``command`` on lab1, logged in as the lab's user (no tty)."""
    with ssh_client(lab, "lab1") as client:
        channel_in, stdout, stderr = client.exec_command(command)
        if stdin is not None:
            channel_in.write(stdin)
            channel_in.channel.shutdown_write()
        output, errors = stdout.read().decode(), stderr.read().decode()
        return stdout.channel.recv_exit_status(), output, errors


@needs_sudo
def test_sudo_password_logs_in_as_the_user_and_becomes_root_with_the_password() -> None:
    with user_lab("maintlab1", "127.0.11.2", sudo="password") as lab:
        account = lab.account
        assert account is not None and lab.user == "maintlab1"
        assert account.password_file == lab.directory / "become-password"
        assert account.password_file.stat().st_mode & 0o777 == 0o600
        assert account.password_file.stat().st_uid == os.geteuid()
        sudoers = Path("/etc/sudoers.d/maint-lab-maintlab1")
        assert sudoers.stat().st_mode & 0o777 == 0o440
        assert "maintlab1 ALL=(ALL:ALL) ALL" in sudoers.read_text()
        assert f"ansible_become_password=\"{{{{ lookup('file', '{account.password_file}') }}}}\"" in (
            lab.inventory.read_text()
        )
        assert run_as(lab, "id -un")[1] == "maintlab1\n"
        password = account.password_file.read_text()
        assert run_as(lab, "sudo -S -p '' id -un", stdin=password)[:2] == (0, "root\n")
        code, _, errors = run_as(lab, "sudo -n true")
        assert code != 0 and "password is required" in errors
    assert not account_exists("maintlab1")
    assert not sudoers.exists()
    assert "maintlab1:" not in Path("/etc/passwd").read_text()


@needs_sudo
def test_sudo_nopasswd_becomes_root_without_a_password() -> None:
    with user_lab("maintlab2", "127.0.12.2", sudo="nopasswd") as lab:
        assert lab.account is not None and lab.account.password_file is None
        assert run_as(lab, "sudo -n id -un")[:2] == (0, "root\n")
        assert "ansible_become_password" not in lab.inventory.read_text()
    assert not Path("/etc/sudoers.d/maint-lab-maintlab2").exists()


@needs_sudo
def test_requiretty_refuses_sudo_without_a_tty() -> None:
    with user_lab("maintlab4", "127.0.14.2", sudo="nopasswd", requiretty=True) as lab:
        assert "Defaults:maintlab4 requiretty" in Path("/etc/sudoers.d/maint-lab-maintlab4").read_text()
        code, _, errors = run_as(lab, "sudo -n true")
        assert code != 0
        assert "you must have a tty" in errors
    assert not Path("/etc/sudoers.d/maint-lab-maintlab4").exists()


@pytest.mark.skipif(SUDO is not None, reason="sudo is installed: the refusal is for machines without it")
def test_sudo_without_sudo_installed_is_refused_before_anything_is_made() -> None:
    with private_base() as base:
        try:
            with pytest.raises(LabError, match="needs sudo on this machine"):
                lab_library.up(base / "lab", 1, port=free_port(1, "127.0.16.2"), first_address="127.0.16.2",
                               user="maintlab7", sudo="password")  # fmt: skip
            assert not account_exists("maintlab7")
            assert not (base / "lab").exists()
        finally:
            cleanup("maintlab7")


def test_sudo_none_through_the_cli_checks_reach_their_files_not_the_secrets(run_maint: RunMaint) -> None:
    name = "maintlab3"
    with private_base() as base:
        directory = base / "lab"
        try:
            port = free_port(1, "127.0.13.2")
            started = run_maint("lab", "up", "--hosts", "1", "--port", port, "--first-address", "127.0.13.2",
                                "--dir", directory, "--user", name, "--sudo", "none")  # fmt: skip
            assert started.returncode == 0, started.stderr
            assert f"made: user {name}" in started.stdout
            lab = lab_library.load(directory)
            assert lab.user == name and f"ansible_user={name}\n" in lab.inventory.read_text()
            home = directory / "users" / name
            keys = home / ".ssh" / "authorized_keys"
            # What sshd's StrictModes (on for a lab with an account) wants: the user's, not writable by others.
            for path, mode in ((home, 0o700), (keys.parent, 0o700), (keys, 0o600)):
                assert (path.stat().st_uid, path.stat().st_mode & 0o777) == (lab.account.uid, mode), path  # type: ignore[union-attr]
            code, output, _ = run_as(lab, 'id -un; echo "$HOME"')
            assert (code, output) == (0, f"{name}\n{home}\n")
            assert run_as(lab, "sudo -n true")[0] != 0
            assert not list(users.SUDOERS_DIR.glob(f"maint-lab-{name}*")) if users.SUDOERS_DIR.is_dir() else True
            state = lab.hosts[0].state_dir
            readable = ["service/sshd.pid", "tls/server.pem", "backup/data/README", "av/scan/notes.txt",
                        "apt/sources.list", "apt/dpkg/status"]  # fmt: skip
            script = " && ".join(f"test -r {state / path}" for path in readable)
            script += f" && test -r {directory / 'clamav-db' / 'lab.hsb'} && touch {state / 'apt' / 'probe'}"
            assert run_as(lab, script)[0] == 0
            for secret in ("id_ed25519", "backup-password", "authorized_keys", "lab.json", "sshd/lab1.key"):
                assert run_as(lab, f"cat {directory / secret}")[0] != 0, secret
        finally:
            stopped = run_maint("lab", "down", "--dir", directory)
            cleanup(name)
        assert stopped.returncode == 0, stopped.stderr
        assert f"removed user {name}" in stopped.stdout
        assert not account_exists(name)
        assert not (directory / "users" / name).exists()
        assert all(path.lstat().st_uid == os.geteuid() for path in (directory / "hosts").rglob("*"))
        assert lab_library.load(directory).account is None
        again = run_maint("lab", "down", "--dir", directory)
        assert again.returncode == 0 and "removed user" not in again.stdout


def test_an_account_the_lab_did_not_make_is_refused(run_maint: RunMaint) -> None:
    name = "maintlab5"
    subprocess.run(["useradd", "--no-create-home", name], check=True, capture_output=True)
    try:
        with private_base() as base:
            result = run_maint("lab", "up", "--hosts", "1", "--port", free_port(1, "127.0.15.2"),
                               "--first-address", "127.0.15.2", "--dir", base / "lab", "--user", name)  # fmt: skip
            assert result.returncode == ExitCode.BAD_INPUT
            assert f"user {name} already exists and was not created by this lab" in result.stderr
            assert len(result.stderr.strip().splitlines()) <= 2  # the error and its hint
            assert not (base / "lab").exists()
        assert account_exists(name)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def test_not_root_is_refused(maint_cli: RunMaint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = maint_cli("lab", "up", "--hosts", "1", "--port", free_port(1, "127.0.17.2"),
                       "--first-address", "127.0.17.2", "--dir", tmp_path / "lab", "--user", "maintlab8")  # fmt: skip
    assert result.returncode == ExitCode.BAD_INPUT
    assert "creating the lab's user maintlab8 needs root" in result.stderr
    assert not account_exists("maintlab8")
    assert not (tmp_path / "lab").exists()


def test_sudo_without_user_is_a_usage_error(maint_cli: RunMaint, tmp_path: Path) -> None:
    result = maint_cli("lab", "up", "--hosts", "1", "--dir", tmp_path / "lab", "--sudo", "nopasswd")
    assert result.returncode == ExitCode.USAGE
    assert "--sudo and --requiretty go with --user" in result.stderr


def _stand_in_sudo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str) -> tuple[Path, Path]:
    """An empty sudoers.d in ``tmp_path`` for :mod:`maint.lab.users`, and a "visudo" running ``script``."""
    sudoers_dir = tmp_path / "sudoers.d"
    sudoers_dir.mkdir()
    monkeypatch.setattr(users, "SUDOERS_DIR", sudoers_dir)
    visudo = tmp_path / "visudo"
    visudo.write_text("#!/bin/sh\n" + script)
    visudo.chmod(0o755)
    return sudoers_dir, visudo


def test_password_and_drop_in_are_made_and_removed_with_a_stand_in_visudo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Runs where sudo is missing too: everything of --sudo password but sudo itself (chpasswd, the
    # password file, the drop-in checked by "visudo" and renamed into place, and their removal).
    sudoers_dir, visudo = _stand_in_sudo(
        monkeypatch, tmp_path, f"echo \"$2\" >> {tmp_path / 'checked'}\ngrep -q 'ALL=(ALL:ALL) ALL' \"$2\"\n"
    )
    with private_base() as base:
        directory = base / "lab"
        directory.mkdir()
        try:
            account = users.create(directory, "maintlab6", "password", True, str(visudo))
            checked = (tmp_path / "checked").read_text().split()
            assert checked == [str(sudoers_dir / ".maint-lab-maintlab6.new")]
            drop_in = sudoers_dir / "maint-lab-maintlab6"
            assert account.sudoers_file == drop_in
            assert drop_in.stat().st_mode & 0o777 == 0o440
            lines = drop_in.read_text().splitlines()[1:]
            assert lines == ["Defaults:maintlab6 requiretty", "maintlab6 ALL=(ALL:ALL) ALL"]
            assert [path.name for path in sudoers_dir.iterdir()] == ["maint-lab-maintlab6"]
            assert (directory / "become-password").stat().st_mode & 0o777 == 0o600
            assert len((directory / "become-password").read_text().strip()) >= 20
            shadow = [entry.split(":") for entry in Path("/etc/shadow").read_text().splitlines()]
            assert next(fields[1] for fields in shadow if fields[0] == "maintlab6").startswith("$"), "a password hash"
            users.remove(account)
            assert not account_exists("maintlab6")
            assert not drop_in.exists() and not (directory / "become-password").exists()
            assert not account.home.exists()
            users.remove(account)  # idempotent
        finally:
            cleanup("maintlab6")


def test_a_drop_in_visudo_rejects_is_not_installed_and_the_account_is_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sudoers_dir, visudo = _stand_in_sudo(monkeypatch, tmp_path, "echo \"$2: syntax error near line 2\" >&2\nexit 1\n")
    with private_base() as base:
        directory = base / "lab"
        directory.mkdir()
        try:
            with pytest.raises(LabError, match=r"visudo rejects the sudoers entry for maintlab9: .*syntax error"):
                users.create(directory, "maintlab9", "nopasswd", False, str(visudo))
            assert list(sudoers_dir.iterdir()) == []
            assert not account_exists("maintlab9")
        finally:
            cleanup("maintlab9")


def _failures(maint_cli: RunMaint, lab: Lab, tmp_path: Path) -> set[tuple[str, str]]:
    # The lab's hosts are this machine, whose load the test suite makes: the load check must not judge it.
    done = maint_cli("run", "nightly", "-i", lab.inventory, "--format", "json", "--no-tickets",
                     "-e", "health_load_warn=1000 health_load_critical=1000",
                     env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"}, timeout=300)  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    results = json.loads(done.stdout)["results"]
    assert {result["status"] for result in results} <= {"ok", "failed", "skipped"}, results
    return {(result["host"], result["step"]) for result in results if result["status"] == "failed"}


def test_the_nightly_checks_run_as_the_user_and_find_the_faults(maint_cli: RunMaint, tmp_path: Path) -> None:
    # sshd-running passes as a non-root login too: root's sshd is alive in /proc though kill -0 is refused.
    with user_lab("maintlab10", "127.0.18.2", hosts=2) as lab:
        assert _failures(maint_cli, lab, tmp_path) == set()
        # Faults write new files as root (a stale restic repository, apt sources): the user gets them too.
        with broken(lab, "lab1", "stale-backup"), broken(lab, "lab2", "pending-updates"), broken(lab, "lab2", "virus"):
            found = _failures(maint_cli, lab, tmp_path)
        assert found == {("lab1", "restic-backup"), ("lab2", "pending-updates"), ("lab2", "virus-scan")}
        assert _failures(maint_cli, lab, tmp_path) == set()


def test_up_again_after_a_lab_that_was_not_taken_down_makes_the_account_again() -> None:
    with user_lab("maintlab11", "127.0.19.2") as lab:
        first = lab.account
        assert first is not None and lab.hosts[0].pid is not None
        os.kill(lab.hosts[0].pid, signal.SIGKILL)
        wait_until(lambda: lab_library.status(lab.directory)[0].state == "dead", 5, "lab1's sshd to die")
        port = free_port(1, "127.0.19.2")
        again = lab_library.up(lab.directory, 1, port=port, first_address="127.0.19.2", user="maintlab11")
        assert again.account is not None and account_exists("maintlab11")
        assert run_as(again, "id -un")[1] == "maintlab11\n"
    assert not account_exists("maintlab11")


def test_a_lab_directory_other_users_cannot_reach_is_refused(tmp_path: Path) -> None:
    # pytest's temporary directories are 0700: the lab's account could not reach its files there.
    blocked = next(parent for parent in reversed(tmp_path.parents) if not parent.stat().st_mode & 0o001)
    message = f"maintlab12 could not reach the lab in {tmp_path}/lab: other users cannot search {blocked}"
    with pytest.raises(LabError, match=re.escape(message)):
        lab_library.up(tmp_path / "lab", 1, port=free_port(1, "127.0.20.2"), first_address="127.0.20.2",
                       user="maintlab12")  # fmt: skip
    assert not account_exists("maintlab12")
    assert not (tmp_path / "lab").exists()


def test_an_up_that_fails_removes_the_account_it_made() -> None:
    with private_base() as base:
        directory = base / "lab"
        directory.mkdir()
        (directory / "sshd").write_text("a file where the lab wants its sshd directory\n")
        try:
            with pytest.raises(FileExistsError):
                lab_library.up(directory, 1, port=free_port(1, "127.0.21.2"), first_address="127.0.21.2",
                               user="maintlab13")  # fmt: skip
            assert not account_exists("maintlab13")
            assert not (directory / "users" / "maintlab13").exists()
            assert lab_library.load(directory).account is None
        finally:
            cleanup("maintlab13")


def test_down_of_a_lab_with_an_account_is_refused_when_not_root(
    maint_cli: RunMaint, monkeypatch: pytest.MonkeyPatch
) -> None:
    with user_lab("maintlab14", "127.0.22.2") as lab:
        with monkeypatch.context() as patch:
            patch.setattr(os, "geteuid", lambda: 1000)
            result = maint_cli("lab", "down", "--dir", lab.directory)
        assert result.returncode == ExitCode.BAD_INPUT
        assert "removing the lab's user maintlab14 needs root" in result.stderr
        assert {host.state for host in lab_library.status(lab.directory)} == {"up"}
        assert account_exists("maintlab14")
    assert not account_exists("maintlab14")
