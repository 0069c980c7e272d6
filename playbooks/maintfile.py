"""This project's maintenance tasks in Python (docs/python-tasks.md): each function takes a fabric.Connection
to one host first and its playbook parameters as keyword arguments, and returns an Outcome."""

from __future__ import annotations

import shlex
from typing import Any

import maint
from maint.checks import Outcome, Status


@maint.task(check_mode=True)
def restic_password_file(
    c: Any, path: str = "/etc/restic/password", owner: str = "root", check: bool = False
) -> Outcome:
    """The host's restic repository password file is mode 0600 and owned by OWNER; a wrong mode or owner is fixed
    (in check mode: reported as failed, nothing changed)."""
    # As root the commands run as they are; as another login user through sudo (the host's become password).
    run = c.run if c.user == "root" else c.sudo
    quoted = shlex.quote(path)
    found = run(f"stat -c '%a %U' {quoted}", warn=True)
    if found.failed:
        reason = (found.stderr.strip().splitlines() or ["cannot stat it"])[-1]
        return Outcome(Status.FAILED, f"{path}: {reason}")
    mode, user = found.stdout.split()
    if mode == "600" and user == owner:
        return Outcome(Status.OK, f"{path} is 0600, owned by {owner}")
    wrong = f"{path} is 0{mode}, owned by {user}"
    if check:
        return Outcome(Status.FAILED, f"{wrong}: would make it 0600, owned by {owner}")
    run(f"chown {shlex.quote(owner)} {quoted}")
    run(f"chmod 0600 {quoted}")
    return Outcome(Status.OK, f"{wrong}: made it 0600, owned by {owner}", {"fixed": 1})
