"""A local fleet of real OpenSSH hosts on loopback, for demos, tests and benchmarks.

``up`` starts one sshd per host (lab1..labN) on consecutive loopback addresses from 127.0.0.2, all on
the same port, and writes what a client needs to reach them: an Ansible INI inventory, a client key and
a known_hosts file. Every host is a real sshd, so the lab exercises real key exchange, authentication
and sessions; one process per host means a fault (``break_host``) hits exactly one host.

Layout of a lab directory (all paths absolute in every file written)::

    lab.json                 state: hosts, addresses, port, pids, states, faults (written atomically)
    inventory.ini            Ansible INI inventory of the lab
    id_ed25519, .pub         the client key; authorized_keys holds its public half
    known_hosts              ``[127.0.0.2]:2222 ssh-ed25519 ...`` for every host
    sshd_config              shared by every sshd; per-host values come with ``-o`` on the command line
    home/                    HOME of every lab session (keeps the invoking user's heavy ~/.bashrc out)
    users/NAME/              with ``up --user NAME``: the home of the lab's account (see ``users``)
    become-password          with ``up --user NAME --sudo password``: NAME's sudo password (0600)
    hosts/labN/              the host's own data: later features keep backups, files and faults there
    sshd/labN.key, .pub      the host key of labN
    sshd/labN.pid, .log      sshd's pid file and its log (LogLevel ERROR)

Addresses run on across octets (127.0.0.255 is followed by 127.0.1.1) but skip every address whose last
octet is 0 or 255: they are valid on Linux loopback, yet read as network and broadcast addresses to
people and to some tools. The lab only ever binds and dials loopback addresses.

The lab is Linux-only: it reads /proc to tell its own sshd processes from anything else.

The modules: ``model`` (the records and where a lab's files live), ``state`` (lab.json), ``files`` (keys,
known_hosts, sshd_config, inventory), ``addresses`` (loopback addresses and ports), ``processes`` (the
sshds), ``fault`` (the fault registry), ``users`` (the account of ``up --user``) and ``lifecycle``
(up, status, down, break, fix).
"""

from __future__ import annotations

from maint.lab.addresses import lab_addresses, port_is_free
from maint.lab.fault import FAULT_MODULES, FAULTS, Fault, fault_modules, faults
from maint.lab.lifecycle import break_host, down, fix_host, status, up
from maint.lab.model import (
    DEAD,
    DEFAULT_DIRECTORY,
    DEFAULT_FIRST_ADDRESS,
    DEFAULT_PORT,
    DOWN,
    HANG,
    MAX_HOSTS,
    STATE_FILE,
    STATE_VERSION,
    UP,
    Lab,
    LabAccount,
    LabHost,
    LabPortInUse,
)
from maint.lab.state import load, recorded_account
from maint.lab.users import SUDO_MODES

__all__ = [
    "DEAD",
    "DEFAULT_DIRECTORY",
    "DEFAULT_FIRST_ADDRESS",
    "DEFAULT_PORT",
    "DOWN",
    "FAULTS",
    "FAULT_MODULES",
    "HANG",
    "MAX_HOSTS",
    "STATE_FILE",
    "STATE_VERSION",
    "SUDO_MODES",
    "UP",
    "Fault",
    "Lab",
    "LabAccount",
    "LabHost",
    "LabPortInUse",
    "break_host",
    "down",
    "fault_modules",
    "faults",
    "fix_host",
    "lab_addresses",
    "load",
    "port_is_free",
    "recorded_account",
    "status",
    "up",
]
