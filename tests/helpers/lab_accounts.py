"""Labs logged into as a real account of their own (``maint lab up --user``), cleaned up whatever happens."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from maint.lab import Lab, users
from maint.testing import running_lab


def account_exists(name: str) -> bool:
    """Whether the Unix account ``name`` exists."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def private_base() -> Iterator[Path]:
    """A directory other users can search (pytest's own tmp_path is 0700): the lab's account must reach it."""
    base = Path(tempfile.mkdtemp(prefix="maint-lab-users-"))
    base.chmod(0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def cleanup(name: str) -> None:
    """Remove what a test's lab may have left of account ``name`` (only an account the lab made)."""
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(name)
        if entry.pw_gecos == users.COMMENT:
            subprocess.run(["userdel", name], capture_output=True, check=False)
    (users.SUDOERS_DIR / f"maint-lab-{name}").unlink(missing_ok=True)


@contextlib.contextmanager
def user_lab(
    name: str, first_address: str, sudo: str = "none", requiretty: bool = False, hosts: int = 1,
    base: Path | None = None,
) -> Iterator[Lab]:
    """A lab of ``hosts`` hosts logged into as the new account ``name``; always taken down and cleaned up. Its
    directory is ``base/NAME`` (several labs may share a base other users can search), else a private base's."""
    with contextlib.ExitStack() as stack:
        where = base if base is not None else stack.enter_context(private_base())
        try:
            with running_lab(
                where / name, hosts, first_address=first_address, user=name, sudo=sudo, requiretty=requiretty
            ) as lab:
                yield lab
        finally:
            cleanup(name)




@contextlib.contextmanager
def acceptance_lab(name: str, first_address: str, hosts: int) -> Iterator[tuple[Lab, tuple[str, ...]]]:
    """The lab of an acceptance test and the options its runs need: as root, logged into as the non-root
    account ``name`` that becomes root with sudo and a password (``-b``), as a real fleet is; otherwise (no
    useradd) as the user running the tests, with nothing to become."""
    if os.geteuid() != 0:
        with private_base() as base, running_lab(base / "lab", hosts, first_address=first_address) as lab:
            yield lab, ()
        return
    with user_lab(name, first_address, sudo="password", hosts=hosts) as lab:
        yield lab, ("-b",)
