"""The lab's records: a lab and its hosts as ``lab.json`` holds them, and where each file of a lab lives."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from maint.errors import LabError

DEFAULT_DIRECTORY = Path(".maint/lab")
DEFAULT_PORT = 2222
DEFAULT_FIRST_ADDRESS = "127.0.0.2"
# About 4.7 MB of RSS per sshd: the cap stops a typo (--hosts 100000) from eating the machine.
MAX_HOSTS = 2000

UP = "up"
DOWN = "down"
HANG = "hang"
DEAD = "dead"

STATE_FILE = "lab.json"
STATE_VERSION = 1


class LabPortInUse(LabError):
    """An address:port the lab needs is already taken (another lab or another service)."""


@dataclasses.dataclass(frozen=True)
class LabHost:
    """One host of the lab.

    ``state`` is ``up``, ``down`` or ``hang`` as recorded, or ``dead`` (from :func:`status`) when its
    sshd is gone without the lab stopping it. ``pid`` is None while the host is down. ``faults`` are
    the names of the faults applied with :func:`break_host` and not fixed yet.
    """

    name: str
    address: str
    port: int
    pid: int | None
    state: str
    state_dir: Path
    faults: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        """``address:port``, as shown to people."""
        return f"{self.address}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        """The host as a JSON-ready dict (the shape of ``lab.json`` and ``maint lab status``)."""
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "pid": self.pid,
            "state": self.state,
            "state_dir": str(self.state_dir),
            "faults": list(self.faults),
        }


@dataclasses.dataclass(frozen=True)
class LabAccount:
    """The Unix account a lab made with ``lab up --user`` and logs in as (see :mod:`maint.lab.users`).

    ``uid`` tells the account the lab made from a later one of the same name; ``home_created`` says
    whether the lab made ``home`` (and so removes it); ``sudo`` is ``password``, ``nopasswd`` or
    ``none``; ``sudoers_file`` and ``password_file`` are the drop-in and the sudo password file the lab
    wrote (None when it wrote none).
    """

    name: str
    uid: int
    gid: int
    home: Path
    home_created: bool
    sudo: str
    requiretty: bool
    sudoers_file: Path | None
    password_file: Path | None

    def to_json(self) -> dict[str, Any]:
        """The account as a JSON-ready dict (``account`` in ``lab.json``)."""
        return {
            "name": self.name,
            "uid": self.uid,
            "gid": self.gid,
            "home": str(self.home),
            "home_created": self.home_created,
            "sudo": self.sudo,
            "requiretty": self.requiretty,
            "sudoers_file": None if self.sudoers_file is None else str(self.sudoers_file),
            "password_file": None if self.password_file is None else str(self.password_file),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabAccount:
        """The account recorded as ``data`` (see :meth:`to_json`); raises KeyError, TypeError, ValueError."""
        return cls(
            name=str(data["name"]),
            uid=int(data["uid"]),
            gid=int(data["gid"]),
            home=Path(data["home"]),
            home_created=bool(data["home_created"]),
            sudo=str(data["sudo"]),
            requiretty=bool(data["requiretty"]),
            sudoers_file=None if data["sudoers_file"] is None else Path(data["sudoers_file"]),
            password_file=None if data["password_file"] is None else Path(data["password_file"]),
        )


@dataclasses.dataclass(frozen=True)
class Lab:
    """A lab as recorded in its ``lab.json``: where it lives, how to log in, and its hosts.

    ``user`` is the login of every host: the user who started the lab, or ``account.name`` when
    ``lab up --user`` made an account for the lab.
    """

    directory: Path
    port: int
    first_address: str
    user: str
    state: str
    sshd: str
    started: str
    hosts: tuple[LabHost, ...]
    account: LabAccount | None = None

    @property
    def inventory(self) -> Path:
        """The Ansible INI inventory of the lab."""
        return self.directory / "inventory.ini"

    @property
    def known_hosts(self) -> Path:
        """known_hosts holding every host's key under ``[address]:port``."""
        return self.directory / "known_hosts"

    @property
    def key_file(self) -> Path:
        """The client's private key (its public half is ``key_file`` + ``.pub``)."""
        return self.directory / "id_ed25519"

    @property
    def config_file(self) -> Path:
        """The sshd_config shared by every host's sshd."""
        return self.directory / "sshd_config"

    @property
    def state_file(self) -> Path:
        """``lab.json``."""
        return self.directory / STATE_FILE

    @property
    def home(self) -> Path:
        """HOME of every session on the lab's hosts."""
        return self.directory / "home"

    @property
    def session_home(self) -> Path:
        """HOME of the sessions on the lab's hosts: the lab account's home, or :attr:`home`."""
        return self.home if self.account is None else self.account.home

    def host_key(self, name: str) -> Path:
        """The private host key of host ``name``."""
        return self.directory / "sshd" / f"{name}.key"

    def pid_file(self, name: str) -> Path:
        """The pid file sshd writes for host ``name`` once it listens."""
        return self.directory / "sshd" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        """The sshd log of host ``name``."""
        return self.directory / "sshd" / f"{name}.log"

    def host(self, name: str) -> LabHost:
        """The host called ``name``; raises :class:`LabError` naming the valid hosts."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(f"unknown lab host {name!r}: this lab has {_name_range(self.hosts)}")

    def replace_host(self, new: LabHost) -> Lab:
        """A copy of the lab with the host of the same name replaced by ``new``."""
        hosts = tuple(new if host.name == new.name else host for host in self.hosts)
        return dataclasses.replace(self, hosts=hosts)

    def to_json(self) -> dict[str, Any]:
        """The lab as a JSON-ready dict (the content of ``lab.json``)."""
        return {
            "version": STATE_VERSION,
            "directory": str(self.directory),
            "state": self.state,
            "port": self.port,
            "first_address": self.first_address,
            "user": self.user,
            "sshd": self.sshd,
            "config": str(self.config_file),
            "inventory": str(self.inventory),
            "known_hosts": str(self.known_hosts),
            "key_file": str(self.key_file),
            "started": self.started,
            "hosts": [host.to_json() for host in self.hosts],
            "account": None if self.account is None else self.account.to_json(),
        }


def _name_range(hosts: Iterable[LabHost]) -> str:
    names = [host.name for host in hosts]
    if len(names) <= 6:
        return ", ".join(names)
    return f"{names[0]}..{names[-1]}"
