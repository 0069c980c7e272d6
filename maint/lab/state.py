"""A lab's directory and its state file ``lab.json``: checking the path, reading, writing and locking."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import re
from collections.abc import Iterator
from pathlib import Path

from maint.errors import LabError
from maint.files import write_atomic
from maint.lab.model import STATE_FILE, UP, Lab, LabAccount, LabHost

# Characters allowed in the lab directory's path: the path ends up in sshd_config, in sshd's -o
# options, in an INI inventory and inside ansible_ssh_common_args, which all split on whitespace and
# some of which expand % or strip quotes.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+@,:~-]+$")


def load(directory: Path) -> Lab:
    """The lab recorded in ``directory``/lab.json, as recorded (see :func:`status` for live states).

    Raises :class:`LabError` if there is no lab there or its lab.json cannot be read.
    """
    directory = _resolve(directory)
    lab = _load_or_none(directory)
    if lab is None:
        raise LabError(f"no lab in {directory}", hint=f"maint lab up --dir {directory}")
    return lab


def recorded_account(directory: Path) -> LabAccount | None:
    """The account ``lab up --user`` made for the lab in ``directory`` and ``down`` has not removed yet
    (None when there is none, or no lab); raises :class:`LabError` for an unreadable lab.json."""
    lab = _load_or_none(_resolve(directory))
    return None if lab is None else lab.account


def _resolve(directory: Path | str) -> Path:
    resolved = Path(directory).expanduser().resolve()
    if not _SAFE_PATH.match(str(resolved)):
        raise LabError(
            f"the lab directory {str(resolved)!r} has characters the lab cannot quote",
            hint="use a path of letters, digits and . _ - / + @ , : ~ only",
        )
    return resolved


def _save(lab: Lab) -> None:
    write_atomic(lab.state_file, json.dumps(lab.to_json(), indent=2) + "\n", 0o600)


def _load_or_none(directory: Path) -> Lab | None:
    path = directory / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise LabError(f"{path}: cannot read the lab state: {error}") from None
    try:
        return Lab(
            directory=directory,
            port=int(data["port"]),
            first_address=str(data["first_address"]),
            user=str(data["user"]),
            state=str(data["state"]),
            sshd=str(data["sshd"]),
            started=str(data.get("started", "")),
            hosts=tuple(
                LabHost(
                    name=str(item["name"]),
                    address=str(item["address"]),
                    port=int(item["port"]),
                    pid=None if item["pid"] is None else int(item["pid"]),
                    state=str(item["state"]),
                    state_dir=Path(item["state_dir"]),
                    faults=tuple(item.get("faults", ())),
                )
                for item in data["hosts"]
            ),
            account=None if data.get("account") is None else LabAccount.from_json(data["account"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise LabError(
            f"{path}: malformed lab state ({error!r})", hint=f"stop its sshd processes and remove {path}"
        ) from None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialize changes to one lab (two `maint lab break` at once must not lose an update)."""
    if not directory.exists():
        yield
        return
    with (directory / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _with_hosts(lab: Lab, hosts: list[LabHost]) -> Lab:
    return dataclasses.replace(lab, hosts=tuple(hosts))


def _running_lab(directory: Path) -> Lab:
    lab = load(directory)
    if lab.state != UP:
        raise LabError(f"the lab in {lab.directory} is not running", hint=f"maint lab up --dir {lab.directory}")
    return lab
