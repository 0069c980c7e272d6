"""The lab's own Unix account: ``maint lab up --user NAME`` logs in to every host as NAME instead of the
user who started the lab, the way maint meets a real fleet (a non-root login, sudo to become root).

What ``up`` makes, and ``down`` removes (nothing else, and never an account it did not make):

- the account (``useradd``: comment ``maint lab``, its own group, shell /bin/sh, password ``*`` so
  that key logins work with sshd's ``UsePAM no``), with its home ``LAB/users/NAME`` holding
  ``.ssh/authorized_keys`` for the lab's client key (owned by NAME, 0600 in a 0700 directory, as
  sshd's StrictModes wants);
- with ``--sudo password``: a random password, set with ``chpasswd`` and kept in
  ``LAB/become-password`` (0600, the lab owner's: the controller reads it, NAME does not need to);
- with ``--sudo password`` or ``nopasswd``: ``/etc/sudoers.d/maint-lab-NAME`` (0440, checked with
  ``visudo -cf`` before it is put in place), with ``Defaults:NAME requiretty`` for ``--requiretty``.

What NAME may reach (:func:`grant`): the lab directory and its ``sshd/`` become searchable, not
listable, by NAME's group (0710), so the checks reach the files named in the inventory; the hosts'
state directories (``LAB/hosts/``) are NAME's, because the checks write there (restic's lock files,
apt's working directories); the lab-wide read-only data (ClamAV database, apt repositories) gets
NAME's group with read access. The lab's private keys, its authorized_keys, ``lab.json``, the backup
password (read by maint on the controller and sent on stdin) and the sudo password stay 0600 and
the lab owner's. ``down`` gives the state directories back to the lab owner.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from maint.errors import LabError
from maint.files import write_atomic
from maint.lab.model import Lab, LabAccount, LabHost

SUDO_MODES = ("password", "nopasswd", "none")
COMMENT = "maint lab"
SHELL = "/bin/sh"
SUDOERS_DIR = Path("/etc/sudoers.d")
PASSWORD_FILE = "become-password"
# Lab-wide data the checks read on every host (maint.labfaults: antivirus, updates).
SHARED_READ = ("clamav-db", "apt-repo", "apt-repo-security")
# What useradd accepts on Debian, less what would need quoting in sshd_config and sudoers ('.', '$').
_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def check(name: str, sudo: str, requiretty: bool, previous: LabAccount | None) -> str | None:
    """Refuse what ``up --user`` cannot do, before anything is written; return visudo's path (None for
    ``--sudo none``).

    Raises :class:`LabError` (exit 3) when not running as root, for a name useradd or sudoers would
    not take, an unknown ``sudo``, ``requiretty`` without a sudoers entry, a missing visudo, and an
    account or group called ``name`` that this lab (``previous``, its recorded account) did not make.
    """
    if os.geteuid() != 0:
        raise LabError(
            f"creating the lab's user {name} needs root (useradd, sudoers): run `maint lab up --user` as root"
        )
    if not _NAME.match(name):
        raise LabError(f"--user {name!r} is not a valid user name", hint="lower-case letters, digits, _ and -")
    if sudo not in SUDO_MODES:
        raise LabError(f"--sudo must be one of {', '.join(SUDO_MODES)}, not {sudo!r}")
    if requiretty and sudo == "none":
        raise LabError("--requiretty needs a sudoers entry: use it with --sudo password or nopasswd")
    ours = previous is not None and previous.name == name and _is_ours(previous)
    if not ours:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            raise LabError(f"user {name} already exists and was not created by this lab", hint="pick another --user")
        with contextlib.suppress(KeyError):
            grp.getgrnam(name)
            raise LabError(f"group {name} already exists and was not created by this lab", hint="pick another --user")
    if sudo == "none":
        return None
    visudo = shutil.which("visudo", path=_SYSTEM_PATH)
    if visudo is None or not SUDOERS_DIR.is_dir():
        raise LabError(f"--sudo {sudo} needs sudo on this machine", hint="apt-get install sudo (scripts/setup --lab)")
    return visudo


def unreachable_parent(directory: Path) -> Path | None:
    """The first existing parent of ``directory`` that other users cannot search (no ``o+x``), or None."""
    for parent in reversed(directory.parents):
        try:
            mode = parent.stat().st_mode
        except FileNotFoundError:
            return None
        if not mode & 0o001:
            return parent
    return None


def create(directory: Path, name: str, sudo: str, requiretty: bool, visudo: str | None) -> LabAccount:
    """Make the account ``name`` for the lab in ``directory`` (see the module docstring); return its record.

    Call :func:`check` first. All or nothing: if a step fails, what was made is removed again and
    :class:`LabError` says which step failed and why.
    """
    home = directory / "users" / name
    _run(["useradd", "--comment", COMMENT, "--home-dir", str(home), "--no-create-home", "--shell", SHELL,
          "--user-group", "--password", "*", name], f"cannot create the lab's user {name}")  # fmt: skip
    entry = pwd.getpwnam(name)
    account = LabAccount(
        name=name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        home=home,
        home_created=True,
        sudo=sudo,
        requiretty=requiretty,
        sudoers_file=None if sudo == "none" else SUDOERS_DIR / f"maint-lab-{name}",
        password_file=directory / PASSWORD_FILE if sudo == "password" else None,
    )
    try:
        home.parent.mkdir(mode=0o755, exist_ok=True)
        if home.exists():  # left by a lab whose down did not finish: the lab's own directory
            shutil.rmtree(home)
        home.mkdir(mode=0o700)
        os.chown(home, account.uid, account.gid)
        if account.password_file is not None:
            password = secrets.token_urlsafe(18)
            write_atomic(account.password_file, password + "\n", 0o600)
            _run(["chpasswd"], f"cannot set the password of {name}", f"{name}:{password}\n")
        if account.sudoers_file is not None and visudo is not None:
            _install_sudoers(account, visudo)
    except BaseException:
        remove(account)
        raise
    return account


def sudoers_text(account: LabAccount) -> str:
    """The sudoers drop-in of ``account``: run anything as anyone, with or without its password."""
    lines = [f"# Written by `maint lab up --user {account.name}`; `maint lab down` removes it."]
    if account.requiretty:
        lines.append(f"Defaults:{account.name} requiretty")
    tag = "NOPASSWD: " if account.sudo == "nopasswd" else ""
    lines.append(f"{account.name} ALL=(ALL:ALL) {tag}ALL")
    return "\n".join(lines) + "\n"


def _install_sudoers(account: LabAccount, visudo: str) -> None:
    assert account.sudoers_file is not None
    # sudo skips names holding a dot in its include directory: the candidate is never read half-made.
    candidate = account.sudoers_file.with_name(f".{account.sudoers_file.name}.new")
    write_atomic(candidate, sudoers_text(account), 0o440)
    try:
        _run([visudo, "-cf", str(candidate)], f"visudo rejects the sudoers entry for {account.name}")
        os.replace(candidate, account.sudoers_file)
    finally:
        candidate.unlink(missing_ok=True)


def authorize(account: LabAccount, public_key: str) -> None:
    """Write ``public_key`` as the only line of the account's ``~/.ssh/authorized_keys`` (owned by it, 0600)."""
    ssh = account.home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    os.chmod(ssh, 0o700)
    os.chown(ssh, account.uid, account.gid)
    keys = ssh / "authorized_keys"
    write_atomic(keys, public_key + "\n", 0o600)
    os.chown(keys, account.uid, account.gid)


def grant(lab: Lab, hosts: list[LabHost] | None = None) -> None:
    """Let the lab's account reach what the checks on ``hosts`` (default: all) read and write.

    Called by ``up`` and after every fault applied or undone (those write new files as the lab owner).
    Does nothing for a lab without an account.
    """
    account = lab.account
    if account is None:
        return
    for directory in (lab.directory, lab.directory / "sshd"):
        os.chown(directory, -1, account.gid)
        os.chmod(directory, 0o710)
    hosts_dir = lab.directory / "hosts"
    os.chown(hosts_dir, -1, account.gid)
    os.chmod(hosts_dir, hosts_dir.stat().st_mode & 0o777 | 0o010)
    for name in SHARED_READ:
        _give(lab.directory / name, -1, account.gid, group_read=True)
    for host in lab.hosts if hosts is None else hosts:
        _give(host.state_dir, account.uid, account.gid)


def remove(account: LabAccount, lab: Lab | None = None) -> None:
    """Remove what :func:`create` made for ``account``; with ``lab``, give the lab's files back to its owner.

    Idempotent. Only an account that still has the recorded uid and the lab's comment is deleted, after
    its processes (lab sessions) are killed. Raises :class:`LabError` when not root or userdel fails.
    """
    if os.geteuid() != 0:
        raise LabError(f"removing the lab's user {account.name} needs root: run `maint lab down` as root")
    if lab is not None:
        owner, group = os.geteuid(), os.getegid()
        for directory in (lab.directory, lab.directory / "sshd"):
            if directory.is_dir():
                os.chown(directory, -1, group)
                os.chmod(directory, 0o700)
        if (lab.directory / "hosts").is_dir():
            os.chown(lab.directory / "hosts", -1, group)
        for name in SHARED_READ:
            _give(lab.directory / name, -1, group)
        for host in lab.hosts:
            _give(host.state_dir, owner, group)
    if account.sudoers_file is not None:
        account.sudoers_file.unlink(missing_ok=True)
    if account.password_file is not None:
        account.password_file.unlink(missing_ok=True)
    if _is_ours(account):
        _kill_processes(account.uid)
        _run(["userdel", account.name], f"cannot remove the lab's user {account.name}")
    if account.home_created:
        shutil.rmtree(account.home, ignore_errors=True)


def _is_ours(account: LabAccount) -> bool:
    try:
        entry = pwd.getpwnam(account.name)
    except KeyError:
        return False
    return entry.pw_uid == account.uid and entry.pw_gecos == COMMENT


def _give(root: Path, uid: int, gid: int, group_read: bool = False) -> None:
    """chown ``root`` and everything under it (symbolic links themselves, not their targets)."""
    if not root.exists():
        return
    for directory, directories, files in os.walk(root):
        os.lchown(directory, uid, gid)
        if group_read:
            os.chmod(directory, os.stat(directory).st_mode & 0o777 | 0o050)
        for name in directories + files:
            path = os.path.join(directory, name)
            os.lchown(path, uid, gid)
            if group_read and not os.path.islink(path) and name in files:
                os.chmod(path, os.stat(path).st_mode & 0o777 | 0o040)


def _kill_processes(uid: int) -> None:
    """SIGKILL every process whose real uid is ``uid`` (userdel refuses a user with processes)."""
    for _ in range(50):
        found = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                status = Path(entry.path, "status").read_text()
            except OSError:
                continue
            uids = next((line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")), [])
            if uids and int(uids[0]) == uid:
                found = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)
        if not found:
            return
        time.sleep(0.02)


def _run(command: list[str], failure: str, stdin: str | None = None) -> None:
    environment = {"PATH": _SYSTEM_PATH, "LC_ALL": "C"}
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, env=environment, check=False)
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or [f"exit {done.returncode}"])
        raise LabError(f"{failure}: {detail[-1]}")
