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
class Lab:
    """A lab as recorded in its ``lab.json``: where it lives, how to log in, and its hosts."""

    directory: Path
    port: int
    first_address: str
    user: str
    state: str
    sshd: str
    started: str
    hosts: tuple[LabHost, ...]

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
        }


def _name_range(hosts: Iterable[LabHost]) -> str:
    names = [host.name for host in hosts]
    if len(names) <= 6:
        return ", ".join(names)
    return f"{names[0]}..{names[-1]}"
