"""Privilege escalation of native steps against real sshd, real sudo, su and doas, as a real non-root login.

Every test removes the accounts, sudoers and doas rules it made, even when it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_accounts import user_lab
from processes import processes_with, wait_until

from maint.become import Become, settings
from maint.executors import BecomeFailed
from maint.executors.ssh import SSHConnection, SSHExecutor
from maint.inventory import load_inventory
from maint.lab import Lab, users
from maint.testing import broken

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="creating the lab's users needs root"),
    pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed (scripts/setup --lab installs it)"),
]

RunMaint = Callable[..., "subprocess.CompletedProcess[str]"]
# The module's lab is made once per test worker: each gets an account of its own.
LOGIN = f"maintbecome1{os.environ.get('PYTEST_XDIST_WORKER', '')}"
OTHER = "maintbecome2"  # su's target: an account with a password of its own
LOCALE = "LANG=fr_FR.UTF-8 LC_ALL=fr_FR.UTF-8"  # a host speaking French


@pytest.fixture(scope="module")
def sudo_lab() -> Iterator[Lab]:
    """Two hosts logged into as LOGIN, who may sudo with a password (LAB/become-password)."""
    with user_lab(LOGIN, "127.0.21.2", sudo="password", hosts=2) as lab:
        yield lab


def password(lab: Lab) -> str:
    assert lab.account is not None and lab.account.password_file is not None
    return lab.account.password_file.read_text().rstrip("\n")


@contextlib.contextmanager
def connected(lab: Lab, name: str = "lab1") -> Iterator[SSHConnection]:
    host = load_inventory([str(lab.inventory)]).select(name)[0]
    connection = SSHExecutor().connect(host)
    try:
        yield connection
    finally:
        connection.close()


def become(**variables: Any) -> Become:
    found = settings({"ansible_become": True, **variables})
    assert found is not None
    return found


def wrapper(lab: Lab, name: str, body: str) -> str:
    """An executable script in the lab directory LOGIN may run (``ansible_become_exe``): ``body`` after the #!."""
    path = lab.directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_one_escalated_shell_per_session_as_the_user_asked_for(sudo_lab: Lab) -> None:
    root = become(ansible_become_password=password(sudo_lab))
    with connected(sudo_lab) as connection:
        first = connection.run("id -un; echo $$", 10, become=root)
        assert first.exit_code == 0, first
        name, shell = first.stdout.split()
        assert name == "root"
        # The same escalated shell runs the next step: one authentication per session, not per step.
        second = connection.run("echo $$; echo out; echo err >&2; exit 3", 10, become=root)
        assert (second.exit_code, second.stdout.split()[0], second.stderr) == (3, shell, "err\n")
        assert connection.run("id -un", 10).stdout == f"{LOGIN}\n"  # a step without become: the login user
        nobody = connection.run("id -un", 10, become=become(ansible_become_password=password(sudo_lab),
                                                            ansible_become_user="nobody"))  # fmt: skip
        assert nobody.stdout == "nobody\n"
        stdin = connection.run("cat; printf '%s' \"$HOME\"", 10, stdin="a 'quoted' $line\n", become=root)
        assert stdin.stdout == "a 'quoted' $line\n/root"


def test_a_step_ended_in_the_escalated_shell_leaves_no_process_behind(sudo_lab: Lab) -> None:
    root = become(ansible_become_password=password(sudo_lab))
    with connected(sudo_lab) as connection:
        timed_out = connection.run("sleep 2973.1 & sleep 2973.2", 0.5, become=root)
        assert timed_out.timed_out and "SIGTERM" in timed_out.ended
        wait_until(lambda: not processes_with("2973."), 10, "the step's processes (root's) to end")
        assert connection.run("id -un", 10, become=root).stdout == "root\n"  # the session goes on


def test_a_wrong_password_is_tried_once_and_the_connection_goes_on(sudo_lab: Lab) -> None:
    wrong = become(ansible_become_password="not-the-password")
    with connected(sudo_lab) as connection:
        started = time.monotonic()
        with pytest.raises(BecomeFailed, match=r"^sudo to root: the become password was not accepted") as caught:
            connection.run("id -un", 10, become=wrong)
        assert time.monotonic() - started < wrong.timeout
        assert "not-the-password" not in str(caught.value)
        started = time.monotonic()
        with pytest.raises(BecomeFailed, match="not accepted"):
            connection.run("id -un", 10, become=wrong)  # not tried again: one failed attempt per connection
        assert time.monotonic() - started < 0.5
        assert connection.run("id -un", 10).stdout == f"{LOGIN}\n"


def test_no_password_a_user_not_in_sudoers_and_a_prompt_that_never_comes(sudo_lab: Lab) -> None:
    with connected(sudo_lab) as connection:
        with pytest.raises(BecomeFailed, match=r"a password is required \(set ansible_become_password"):
            connection.run("id -un", 10, become=become())  # Ansible's flags: sudo -n
        with pytest.raises(BecomeFailed, match="asks for a password and none is set"):
            connection.run("id -un", 10, become=become(ansible_become_flags="-H -S"))
    drop_in = users.SUDOERS_DIR / f"maint-lab-{LOGIN}"
    kept = drop_in.read_bytes()
    drop_in.unlink()
    try:
        with connected(sudo_lab) as connection, pytest.raises(BecomeFailed) as caught:
            connection.run("id -un", 10, become=become(ansible_become_password=password(sudo_lab)))
        # sudo's own words (in the host's language) after maint's: the failure is the exit code, not the text.
        assert str(caught.value).startswith("sudo to root failed (exit 1): ")
        assert "sudoers" in str(caught.value)
    finally:
        drop_in.write_bytes(kept)
        drop_in.chmod(0o440)
    hangs = wrapper(sudo_lab, "hanging-sudo", "exec sleep 2974.5")
    slow = become(ansible_become_password=password(sudo_lab), ansible_become_exe=hangs, maint_become_timeout=1)
    with connected(sudo_lab) as connection:
        started = time.monotonic()
        with pytest.raises(BecomeFailed, match=r"no answer within 1s \(no password prompt"):
            connection.run("id -un", 10, become=slow)
        assert time.monotonic() - started < 3
        wait_until(lambda: not processes_with("2974.5"), 10, "the hanging escalation to be ended")
        assert connection.run("id -un", 10).stdout == f"{LOGIN}\n"


def test_a_run_stopped_during_authentication_ends_it_at_once(sudo_lab: Lab) -> None:
    hangs = wrapper(sudo_lab, "stalling-sudo", "exec sleep 2976.5")
    slow = become(ansible_become_password=password(sudo_lab), ansible_become_exe=hangs, maint_become_timeout=60)
    cancel = threading.Event()

    def stop_once_stalled() -> None:
        wait_until(lambda: processes_with("2976.5"), 10, "the escalation to start")
        cancel.set()

    stopper = threading.Thread(target=stop_once_stalled)
    stopper.start()
    with connected(sudo_lab) as connection:
        started = time.monotonic()
        result = connection.run("id -un", 60, cancel=cancel, become=slow)
        stopper.join()
        assert result.cancelled and result.exit_code is None and "stopped while sudo authenticated" in result.ended
        assert time.monotonic() - started < 5
        wait_until(lambda: not processes_with("2976.5"), 10, "the stopped escalation to be ended")


def test_sudo_in_french_with_a_password_and_without(sudo_lab: Lab) -> None:
    french = wrapper(sudo_lab, "french-sudo", f"export {LOCALE}; exec sudo \"$@\"")
    with connected(sudo_lab) as connection:
        ok = connection.run("id -un", 10, become=become(ansible_become_password=password(sudo_lab),
                                                        ansible_become_exe=french))  # fmt: skip
        assert ok.stdout == "root\n"
    with connected(sudo_lab) as connection, pytest.raises(BecomeFailed, match="not accepted"):
        connection.run("id -un", 10, become=become(ansible_become_password="faux", ansible_become_exe=french))
    with connected(sudo_lab) as connection, pytest.raises(BecomeFailed) as caught:
        connection.run("id -un", 10, become=become(ansible_become_exe=french, ansible_become_flags="-H -S -n"))
    assert "de saisir un mot de passe" in str(caught.value)  # sudo spoke French; maint went by the exit code


@contextlib.contextmanager
def sudoers_rule(name: str, text: str) -> Iterator[None]:
    path = users.SUDOERS_DIR / name
    path.write_text(text)
    path.chmod(0o440)
    try:
        subprocess.run(["visudo", "-cf", str(path)], check=True, capture_output=True)
        yield
    finally:
        path.unlink(missing_ok=True)


def test_a_cached_sudo_ticket_needs_no_prompt(sudo_lab: Lab) -> None:
    # A ticket for every terminal of the user (timestamp_type=global): sudo then asks nothing, and maint must
    # recognise the success without ever having seen a prompt (the wrong password given is never needed).
    with sudoers_rule("maint-test-ticket", f"Defaults:{LOGIN} timestamp_type=global, timestamp_timeout=5\n"):
        try:
            with connected(sudo_lab) as connection:
                validated = connection.run("sudo -S -p '' -v && echo ticket", 10, stdin=password(sudo_lab) + "\n")
                assert validated.stdout == "ticket\n", validated
            with connected(sudo_lab) as connection:
                cached = connection.run("id -un", 10, become=become(ansible_become_password="unused-wrong"))
                assert cached.stdout == "root\n"
        finally:
            with connected(sudo_lab) as connection:
                connection.run("sudo -K", 10)


def test_requiretty_gets_a_terminal_with_a_password_and_with_nopasswd() -> None:
    with user_lab("maintbecome3", "127.0.22.2", sudo="password", requiretty=True) as lab:
        root = become(ansible_become_password=password(lab))
        with connected(lab) as connection:
            result = connection.run("id -un; echo $$; echo err >&2; exit 2", 10, become=root)
            assert (result.exit_code, result.stdout.split()[0], result.stderr) == (2, "root", "err\n")
            again = connection.run("echo $$; cat", 10, stdin="line 1\n\ttab\x03\x04 ctrl\n", become=root)
            assert again.stdout.split("\n", 1) == [result.stdout.split()[1], "line 1\n\ttab\x03\x04 ctrl\n"]
            big = connection.run("head -c 300000 /dev/zero | tr '\\0' x", 10, become=root)
            assert big.stdout == "x" * 300000
            timed_out = connection.run("sleep 2975.1 & sleep 2975.2", 0.5, become=root)
            assert timed_out.timed_out
            wait_until(lambda: not processes_with("2975."), 10, "the step's processes to end on a terminal session")
            assert connection.run("tty; id -un", 10, become=root).stdout == "not a tty\nroot\n"
    with user_lab("maintbecome4", "127.0.23.2", sudo="nopasswd", requiretty=True) as lab, connected(lab) as connection:
        assert connection.run("id -un", 10, become=become()).stdout == "root\n"


@contextlib.contextmanager
def second_account(name: str, secret: str) -> Iterator[None]:
    """A Unix account ``name`` with password ``secret`` (marked as the lab's, so cleanup removes it)."""
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-c", users.COMMENT, name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{secret}\n", text=True, check=True)
        yield
    finally:
        # -f: a session of the account's may still be going away (its terminal hung up).
        subprocess.run(["userdel", "-f", name], capture_output=True, check=False)


def test_su_asks_on_a_terminal_in_english_and_in_french(sudo_lab: Lab) -> None:
    secret = "su-Secret-42"
    french = wrapper(sudo_lab, "french-su", f"export {LOCALE}; exec su \"$@\"")

    def su(**variables: Any) -> Become:
        return become(ansible_become_method="su", ansible_become_user=OTHER, **variables)

    with second_account(OTHER, secret):
        with connected(sudo_lab) as connection:
            result = connection.run("id -un; echo err >&2", 10, become=su(ansible_become_password=secret))
            assert (result.stdout, result.stderr) == (f"{OTHER}\n", "err\n")
            # Only the French prompt is accepted here: the run would time out if su had asked in English.
            in_french = su(ansible_become_password=secret, ansible_become_exe=french,
                           ansible_su_prompt_l10n="Mot de passe", maint_become_timeout=5)  # fmt: skip
            assert connection.run("id -un", 10, become=in_french).stdout == f"{OTHER}\n"
        with connected(sudo_lab) as connection, pytest.raises(BecomeFailed) as caught:
            connection.run("id -un", 10, become=su(ansible_become_password="nope", maint_become_timeout=10))
        # su does not ask twice: it ends, and says so in its own words.
        assert str(caught.value).startswith(f"su to {OTHER} failed (exit 1)"), caught.value
        with connected(sudo_lab) as connection, pytest.raises(BecomeFailed, match="no answer within 1s"):
            unknown = su(ansible_become_password=secret, ansible_su_prompt_l10n="Kennwort", maint_become_timeout=1)
            connection.run("id -un", 10, become=unknown)


def test_doas_without_a_password() -> None:
    doas = shutil.which("doas")
    if doas is None:
        pytest.skip("doas is not installed (scripts/setup --test installs it)")
    config = Path("/etc/doas.conf")
    if config.exists():
        pytest.skip("/etc/doas.conf exists: this test does not change a machine's own doas rules")
    with user_lab("maintbecome5", "127.0.24.2") as lab, connected(lab) as connection:
        with pytest.raises(BecomeFailed, match=r"^doas to root failed \(exit 1\)"):
            connection.run("id -un", 10, become=become(ansible_become_method="doas"))
        config.write_text("permit nopass maintbecome5 as root\n")
        config.chmod(0o600)
        try:
            with connected(lab) as again:
                assert again.run("id -un", 10, become=become(ansible_become_method="doas")).stdout == "root\n"
        finally:
            config.unlink()


def _sample_secrets(secret: bytes, stop: threading.Event, found: list[str], counted: list[int]) -> None:
    """Until ``stop``: read every process's command line and environment, noting where ``secret`` shows."""
    while not stop.is_set():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            for name in ("cmdline", "environ"):
                with contextlib.suppress(OSError):
                    if secret in (entry / name).read_bytes():
                        found.append(f"{entry.name}/{name}")
        counted[0] += 1


def test_the_builtin_playbooks_run_as_the_login_user_with_become_and_the_password_shows_nowhere(
    sudo_lab: Lab, maint_cli: RunMaint, run_maint: RunMaint, tmp_path: Path
) -> None:
    store = tmp_path / "maint.db"
    env = {"MAINT_DB": f"sqlite:///{store}"}
    calm = ("-e", "health_load_warn=1000 health_load_critical=1000")
    secret = password(sudo_lab).encode()
    stop, found, counted = threading.Event(), [], [0]
    sampler = threading.Thread(target=_sample_secrets, args=(secret, stop, found, counted))
    sampler.start()
    try:
        # A real subprocess, as a sysadmin runs it, for the sampled run.
        done = run_maint("run", "nightly", "-i", sudo_lab.inventory, "-b", "--format", "json", "--no-tickets", *calm,
                         env=env, timeout=300)  # fmt: skip
    finally:
        stop.set()
        sampler.join()
    assert done.returncode == 0, done.stdout + done.stderr
    assert counted[0] > 0 and found == []
    results = json.loads(done.stdout)["results"]
    # (The lab's hosts share this machine's clock: its time-sync check is off there.)
    assert {(r["status"], r["step"]) for r in results if r["status"] != "ok"} == {("skipped", "clock")}, results
    with broken(sudo_lab, "lab1", "stale-backup"), broken(sudo_lab, "lab2", "virus"):
        faulty = maint_cli("run", "nightly", "-i", sudo_lab.inventory, "-b", "--format", "json", "--no-tickets",
                           *calm, env=env, timeout=300)  # fmt: skip
        failed = {(r["host"], r["step"]) for r in json.loads(faulty.stdout)["results"] if r["status"] == "failed"}
        assert failed == {("lab1", "restic-backup"), ("lab2", "virus-scan")}
        with broken(sudo_lab, "lab2", "pending-updates"):
            applied = maint_cli("run", "updates-apply", "-i", sudo_lab.inventory, "-l", "lab2", "-b", "--format",
                                "json", env=env, timeout=300)  # fmt: skip
            result = json.loads(applied.stdout)["results"][0]
            assert (applied.returncode, result["status"]) == (0, "ok"), result
            assert result["summary"].startswith("upgraded 2 packages")
    book = tmp_path / "who.yml"
    book.write_text("steps:\n  - id: who\n    type: command\n    command: id -un\n"
                    "  - id: login\n    type: command\n    command: id -un\n    become: false\n")  # fmt: skip
    who = maint_cli("run", book, "-i", sudo_lab.inventory, "-l", "lab1", "-b", "--format", "json", env=env)
    assert [r["summary"] for r in json.loads(who.stdout)["results"]] == ["root", LOGIN]
    assert secret not in store.read_bytes()
    shown = maint_cli("runs", "show", "--format", "json", env=env)
    assert secret.decode() not in shown.stdout


def test_ask_become_pass_serves_native_and_ansible_steps(sudo_lab: Lab, maint_cli: RunMaint, tmp_path: Path) -> None:
    # An inventory without the password: it comes from -K (stdin here), for maint's steps and for ansible-playbook.
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "".join(line for line in sudo_lab.inventory.read_text().splitlines(keepends=True)
                if not line.startswith("ansible_become_password"))
    )  # fmt: skip
    (tmp_path / "ansible").mkdir()
    (tmp_path / "ansible" / "whoami.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: root here\n      ansible.builtin.shell: test \"$(id -un)\" = root\n      changed_when: false\n"
    )
    (tmp_path / "book.yml").write_text(
        "steps:\n  - id: who\n    type: command\n    command: id -un\n"
        "  - id: play\n    type: ansible\n    playbook: ansible/whoami.yml\n"
    )
    secret = password(sudo_lab)
    env = {"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"}
    done = maint_cli("run", "book.yml", "-i", inventory, "-l", "lab1", "-b", "-K", "--format", "json",
                     cwd=tmp_path, env=env, input=secret + "\n", timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["step"]: r for r in json.loads(done.stdout)["results"]}
    assert results["who"]["summary"] == "root"
    assert results["play/root here"]["status"] == "ok", results
    state = Path(os.environ["XDG_STATE_HOME"])  # the records of Ansible steps are kept in the state directory
    written = [path for base in (tmp_path, state) for path in base.rglob("*") if path.is_file()]
    assert any(path.name == "stdout" for path in written)  # ansible-runner's record of the step is among them
    assert [path for path in written if secret.encode() in path.read_bytes()] == []
    without = maint_cli("run", "book.yml", "-i", inventory, "-l", "lab1", "-b", "--format", "json", cwd=tmp_path,
                        env=env, timeout=120)  # fmt: skip
    results = {r["step"]: r for r in json.loads(without.stdout)["results"]}
    assert results["who"]["status"] == "error" and "a password is required" in results["who"]["summary"]
    assert results["play/root here"]["status"] in ("failed", "error")
