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
    hosts/labN/              the host's own data: later features keep backups, files and faults there
    sshd/labN.key, .pub      the host key of labN
    sshd/labN.pid, .log      sshd's pid file and its log (LogLevel ERROR)

Addresses run on across octets (127.0.0.255 is followed by 127.0.1.1) but skip every address whose last
octet is 0 or 255: they are valid on Linux loopback, yet read as network and broadcast addresses to
people and to some tools. The lab only ever binds and dials loopback addresses.

The lab is Linux-only: it reads /proc to tell its own sshd processes from anything else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from maint.errors import LabError
from maint.files import private_directory, write_atomic

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

# Characters allowed in the lab directory's path: the path ends up in sshd_config, in sshd's -o
# options, in an INI inventory and inside ansible_ssh_common_args, which all split on whitespace and
# some of which expand % or strip quotes.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+@,:~-]+$")

# Processes started by this Python process, by pid. A child that exits stays a zombie (and keeps its
# /proc entry) until its parent reaps it, so stopping our own children must go through Popen.wait().
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


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


# ---------------------------------------------------------------------------------------------------
# Faults: a registry, so later work adds faults (virus, disk-full, service-down) by adding an entry
# to FAULTS, without touching break_host/fix_host.


@dataclasses.dataclass(frozen=True)
class Fault:
    """A way to break a lab host.

    ``apply`` and ``undo`` are given the lab and the host and return the host record with its new
    ``pid`` and ``state`` (unchanged for a fault that plants files in ``state_dir``); they raise
    :class:`LabError` when they cannot. :func:`break_host` and :func:`fix_host` keep ``faults`` up to
    date and write lab.json.

    ``survives_restart`` says whether the fault is still there after the host's sshd restarts (``lab
    down`` then ``lab up``): a stopped or frozen process is not, a file planted in the host's state
    directory is.
    """

    description: str
    apply: Callable[[Lab, LabHost], LabHost]
    undo: Callable[[Lab, LabHost], LabHost]
    survives_restart: bool = True


def _break_down(lab: Lab, host: LabHost) -> LabHost:
    if host.pid is not None:
        _stop_processes([host.pid], lab.config_file)
    return dataclasses.replace(host, pid=None, state=DOWN)


def _fix_down(lab: Lab, host: LabHost) -> LabHost:
    return _start_hosts(lab, [host])[0]


def _break_hang(lab: Lab, host: LabHost) -> LabHost:
    # Freezing the listener leaves its socket open: the kernel still completes TCP handshakes into
    # the backlog, but no SSH banner ever comes. The per-connection children freeze too, as they would
    # on a hung machine.
    if host.pid is None or not _is_our_sshd(host.pid, lab.config_file):
        raise LabError(f"{host.name} has no running sshd to freeze", hint=f"maint lab fix {host.name}")
    _signal_tree(host.pid, signal.SIGSTOP)
    _wait_for(lambda: _process_state(host.pid) == "T", timeout=5.0)
    return dataclasses.replace(host, state=HANG)


def _fix_hang(lab: Lab, host: LabHost) -> LabHost:
    if host.pid is not None and _is_our_sshd(host.pid, lab.config_file):
        _signal_tree(host.pid, signal.SIGCONT)
    return dataclasses.replace(host, state=UP)


FAULTS: dict[str, Fault] = {  # the lab's own; fault modules add theirs, see faults()
    "down": Fault("sshd stopped: connections are refused", _break_down, _fix_down, survives_restart=False),
    "hang": Fault(
        "sshd frozen (SIGSTOP): TCP connects succeed, no SSH banner arrives",
        _break_hang,
        _fix_hang,
        survives_restart=False,
    ),
}


# ---------------------------------------------------------------------------------------------------
# Public API


def up(
    directory: Path,
    hosts: int,
    port: int = DEFAULT_PORT,
    first_address: str = DEFAULT_FIRST_ADDRESS,
    *,
    timeout: float | None = None,
) -> Lab:
    """Start a lab of ``hosts`` sshd hosts in ``directory`` and return it once every host listens.

    ``timeout`` (seconds) bounds the wait for all sshds to listen; the default grows with ``hosts``.
    Keys already in ``directory`` are reused, so known_hosts stays the same across ``down``/``up``.
    The start is all or nothing: if one sshd fails, the ones already started are stopped.

    Raises :class:`LabPortInUse` if an address:port is taken, :class:`LabError` if the arguments are
    invalid, a lab already runs in ``directory``, or an sshd does not start (naming its log).
    """
    directory = _resolve(directory)
    if not 1 <= hosts <= MAX_HOSTS:
        raise LabError(f"--hosts must be between 1 and {MAX_HOSTS}, not {hosts}")
    if not 1 <= port <= 65535:
        raise LabError(f"--port must be between 1 and 65535, not {port}")
    addresses = lab_addresses(first_address, hosts)
    sshd = _find_sshd()
    # Checked before anything is written, so a refused `up` leaves no directory behind.
    previous = _load_or_none(directory)
    if previous is not None:
        running = [host for host in previous.hosts if _alive(host, previous)]
        if running:
            raise LabError(
                f"a lab is already running in {directory} ({len(running)} of {len(previous.hosts)} "
                f"hosts up on port {previous.port})",
                hint=f"maint lab down --dir {directory}",
            )
    _check_free(addresses, port, directory)
    _make_private_dir(directory)
    with _locked(directory):
        if os.geteuid() == 0:
            # sshd running as root needs its privilege separation directory; containers often lack it.
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        carried = _surviving_faults(previous)
        lab = Lab(
            directory=directory,
            port=port,
            first_address=first_address,
            user=pwd.getpwuid(os.geteuid()).pw_name,
            state=UP,
            sshd=sshd,
            started=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            hosts=tuple(
                LabHost(
                    name=f"lab{index}",
                    address=address,
                    port=port,
                    pid=None,
                    state=DOWN,
                    state_dir=directory / "hosts" / f"lab{index}",
                    faults=carried.get(f"lab{index}", ()),
                )
                for index, address in enumerate(addresses, start=1)
            ),
        )
        _write_files(lab)
        try:
            # Recording the pids as soon as they exist lets `maint lab down` clean up after an `up`
            # that was killed while it waited.
            started = _start_hosts(
                lab, list(lab.hosts), timeout=timeout, spawned=lambda hosts: _save(_with_hosts(lab, hosts))
            )
        except BaseException:
            _save(dataclasses.replace(lab, state=DOWN))
            raise
        lab = _with_hosts(lab, started)
        _save(lab)
        return lab


def load(directory: Path) -> Lab:
    """The lab recorded in ``directory``/lab.json, as recorded (see :func:`status` for live states).

    Raises :class:`LabError` if there is no lab there or its lab.json cannot be read.
    """
    directory = _resolve(directory)
    lab = _load_or_none(directory)
    if lab is None:
        raise LabError(f"no lab in {directory}", hint=f"maint lab up --dir {directory}")
    return lab


def status(directory: Path) -> list[LabHost]:
    """Every host of the lab in ``directory`` with its live state.

    A host recorded up or hang whose sshd process is gone (or is no longer this lab's sshd) is ``dead``;
    one whose process is found stopped or running reports ``hang`` or ``up`` whatever was recorded.
    Raises :class:`LabError` if there is no lab in ``directory``.
    """
    lab = load(directory)
    return [_live(lab, host) for host in lab.hosts]


def down(directory: Path) -> int:
    """Stop every sshd of the lab in ``directory``; return how many were running.

    Only pids recorded in lab.json whose command line names this lab's sshd_config are signalled,
    together with their per-connection children. Idempotent: no lab, or a lab already down, gives 0.
    Faults that survive a restart stay recorded; the others (down, hang) are cleared.
    """
    directory = _resolve(directory)
    if not (directory / STATE_FILE).exists():
        return 0
    with _locked(directory):
        lab = load(directory)
        pids = [host.pid for host in lab.hosts if host.pid is not None]
        stopped = _stop_processes(pids, lab.config_file)
        hosts = tuple(
            dataclasses.replace(
                host,
                pid=None,
                state=DOWN,
                faults=_restart_survivors(host.faults),
            )
            for host in lab.hosts
        )
        _save(dataclasses.replace(lab, state=DOWN, hosts=hosts))
        return stopped


def break_host(directory: Path, host: str, fault: str) -> LabHost:
    """Apply ``fault`` (a name in :data:`FAULTS`) to ``host`` of the lab in ``directory``.

    Returns the updated host. Applying a fault the host already has does nothing; ``hang`` on a host
    that is down fails (there is no process to freeze). Raises :class:`LabError` for an unknown host or
    fault (listing the valid ones) or a lab that is not running.
    """
    with _locked(_resolve(directory)):
        lab = _running_lab(directory)
        target = lab.host(host)
        chosen = _fault(fault)
        if fault in target.faults:
            return target
        updated = chosen.apply(lab, target)
        updated = dataclasses.replace(updated, faults=(*target.faults, fault))
        _save(lab.replace_host(updated))
        return updated


def fix_host(directory: Path, host: str) -> LabHost:
    """Undo every fault of ``host`` (newest first) and make sure its sshd runs; return the host.

    A host whose sshd died unexpectedly is restarted too. Raises :class:`LabError` for an unknown host
    or a lab that is not running.
    """
    with _locked(_resolve(directory)):
        lab = _running_lab(directory)
        target = lab.host(host)
        for name in reversed(target.faults):
            target = _fault(name).undo(lab, target)
            target = dataclasses.replace(target, faults=target.faults[:-1])
            # Save after each undo so a failing undo does not forget the ones that worked.
            lab = lab.replace_host(target)
            _save(lab)
        if target.pid is None or not _alive(target, lab):
            target = _start_hosts(lab, [target])[0]
        elif _process_state(target.pid) == "T":
            _signal_tree(target.pid, signal.SIGCONT)  # frozen by hand, outside the lab
        target = dataclasses.replace(target, state=UP)
        _save(lab.replace_host(target))
        return target


def lab_addresses(first_address: str, count: int) -> list[str]:
    """``count`` loopback addresses from ``first_address`` on, skipping those ending in .0 or .255.

    Raises :class:`LabError` if ``first_address`` is not an IPv4 loopback address, ends in .0 or .255,
    or the range would leave 127.0.0.0/8.
    """
    try:
        current = ipaddress.IPv4Address(first_address)
    except ValueError:
        raise LabError(f"--first-address {first_address!r} is not an IPv4 address") from None
    if not current.is_loopback:
        raise LabError(
            f"--first-address {first_address} is not a loopback address",
            hint="the lab only uses 127.0.0.0/8",
        )
    if int(current) & 0xFF in (0, 255):
        raise LabError(f"--first-address {first_address} ends in .0 or .255, which the lab skips")
    addresses: list[str] = []
    while len(addresses) < count:
        if not current.is_loopback or current == ipaddress.IPv4Address("127.255.255.255"):
            raise LabError(f"{count} hosts from {first_address} do not fit in 127.0.0.0/8")
        if int(current) & 0xFF not in (0, 255):
            addresses.append(str(current))
        current += 1
    return addresses


def port_is_free(address: str, port: int) -> bool:
    """Whether nothing listens on ``address``:``port`` (a bind test); raises :class:`LabError` for an
    ``address`` that is not loopback or a port that cannot be bound for another reason.
    """
    if not ipaddress.ip_address(address).is_loopback:
        raise LabError(f"{address} is not a loopback address: the lab binds and dials loopback only")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR, as sshd sets it: TIME_WAIT leftovers of a previous lab do not count as taken,
        # a listening socket does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise LabError(f"cannot bind {address}:{port}: {error.strerror}") from None
    return True


# ---------------------------------------------------------------------------------------------------
# Files


def _resolve(directory: Path | str) -> Path:
    resolved = Path(directory).expanduser().resolve()
    if not _SAFE_PATH.match(str(resolved)):
        raise LabError(
            f"the lab directory {str(resolved)!r} has characters the lab cannot quote",
            hint="use a path of letters, digits and . _ - / + @ , : ~ only",
        )
    return resolved


def _make_private_dir(directory: Path) -> None:
    # The directory holds private keys; 0700 also keeps sshd's StrictModes logic out of the picture.
    # The parents it creates (.maint/ of the default .maint/lab) are owner-only too.
    private_directory(directory)


def _new_ed25519(comment: str) -> tuple[bytes, str]:
    """A new ed25519 key: (OpenSSH private key file content, public key line)."""
    # cryptography (a paramiko dependency) makes a key in microseconds; ssh-keygen takes a process
    # start per key, which adds up over 1000 hosts.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {comment}"


def _key_pair(private_path: Path, comment: str) -> str:
    """Reuse the key at ``private_path`` (and its .pub) or make one; return the public key line."""
    public_path = private_path.with_name(private_path.name + ".pub")
    if private_path.exists() and public_path.exists():
        return public_path.read_text().strip()
    private, public = _new_ed25519(comment)
    write_atomic(private_path, private, 0o600)
    write_atomic(public_path, public + "\n", 0o644)
    return public


def _sshd_quote(value: str) -> str:
    # Paths are restricted to _SAFE_PATH, so double quotes are enough to keep sshd from splitting.
    return f'"{value}"'


def _sshd_config(lab: Lab) -> str:
    return f"""\
# Written by `maint lab up`; shared by every sshd of this lab. Per-host values (ListenAddress,
# PidFile, SetEnv with HOME and the host's identity) come with -o on each sshd's command line: sshd
# keeps the first value it sees for an option, and command-line options come first.
AddressFamily inet
AuthorizedKeysFile {_sshd_quote(str(lab.directory / "authorized_keys"))}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
UsePAM no
# The lab's files may sit under a world-writable directory such as /tmp.
StrictModes no
PermitRootLogin prohibit-password
# The default 10:30:100 drops handshakes when a run opens many connections at once.
MaxStartups 1000:30:2000
MaxSessions 100
LogLevel ERROR
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
Subsystem sftp internal-sftp
"""


def _inventory(lab: Lab) -> str:
    names = [host.name for host in lab.hosts]
    half = (len(names) + 1) // 2
    groups = {
        "web": names[:half],
        "db": names[half:],
        "odd": names[0::2],
        "even": names[1::2],
        "canary": names[:1],
    }
    lines = [
        f"# Written by `maint lab up`: {len(names)} loopback sshd hosts of the lab in {lab.directory}.",
        "# Rewritten on every `maint lab up`; edit a copy.",
        "[lab]",
    ]
    modules = [module for module in fault_modules() if hasattr(module, "host_vars")]
    for host in lab.hosts:
        extra: dict[str, str] = {}
        for module in modules:
            extra.update(module.host_vars(lab, host))
        pairs = "".join(f" {key}={value}" for key, value in extra.items())
        lines.append(
            f"{host.name} ansible_host={host.address} ansible_port={host.port} maint_state_dir={host.state_dir}{pairs}"
        )
    lines += [
        "",
        "[lab:vars]",
        f"ansible_user={lab.user}",
        f"ansible_ssh_private_key_file={lab.key_file}",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes'",
        "ansible_python_interpreter=/usr/bin/python3",
    ]
    for group, members in groups.items():
        lines += ["", f"[{group}]", *members]
    return "\n".join(lines) + "\n"


def _known_hosts_entry(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def _write_files(lab: Lab) -> None:
    (lab.directory / "sshd").mkdir(mode=0o700, exist_ok=True)
    lab.home.mkdir(mode=0o700, exist_ok=True)
    client_public = _key_pair(lab.key_file, f"maint-lab@{lab.directory}")
    write_atomic(lab.directory / "authorized_keys", client_public + "\n", 0o600)
    known: list[str] = []
    for host in lab.hosts:
        host.state_dir.mkdir(parents=True, exist_ok=True)
        public = _key_pair(lab.host_key(host.name), host.name)
        key_type, key_data = public.split()[:2]
        known.append(f"{_known_hosts_entry(host.address, host.port)} {key_type} {key_data}")
    write_atomic(lab.known_hosts, "\n".join(known) + "\n")
    for module in fault_modules():
        if hasattr(module, "prepare"):
            module.prepare(lab, list(lab.hosts))
    write_atomic(lab.config_file, _sshd_config(lab))
    write_atomic(lab.inventory, _inventory(lab))


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


# Modules that add faults (and the healthy state those faults break) to the lab. Each defines
# ``FAULTS: dict[str, Fault]`` and may define ``host_vars(lab, host) -> dict[str, str]`` (inventory
# variables, e.g. where the host's backup repository is) and ``prepare(lab, hosts)`` (called by
# ``lab up`` after the state directories exist; it must stay cheap for a 1000-host lab).
FAULT_MODULES: tuple[str, ...] = (
    "maint.labfaults.host",
    "maint.labfaults.antivirus",
    "maint.labfaults.backups",
    "maint.labfaults.updates",
)


def fault_modules() -> list[Any]:
    """The imported fault modules, in FAULT_MODULES order."""
    import importlib

    return [importlib.import_module(name) for name in FAULT_MODULES]


def faults() -> dict[str, Fault]:
    """Every fault: the lab's own (down, hang) and those of the fault modules."""
    merged = dict(FAULTS)
    for module in fault_modules():
        merged.update(getattr(module, "FAULTS", {}))
    return merged


def _fault(name: str) -> Fault:
    known = faults()
    try:
        return known[name]
    except KeyError:
        raise LabError(f"unknown fault {name!r}: known faults are {', '.join(sorted(known))}") from None


def _restart_survivors(names: tuple[str, ...]) -> tuple[str, ...]:
    # A name no longer registered cannot be undone either: it is dropped.
    known = faults()
    return tuple(name for name in names if name in known and known[name].survives_restart)


def _surviving_faults(previous: Lab | None) -> dict[str, tuple[str, ...]]:
    if previous is None:
        return {}
    return {host.name: _restart_survivors(host.faults) for host in previous.hosts}


def _name_range(hosts: Iterable[LabHost]) -> str:
    names = [host.name for host in hosts]
    if len(names) <= 6:
        return ", ".join(names)
    return f"{names[0]}..{names[-1]}"


# ---------------------------------------------------------------------------------------------------
# Processes


def _find_sshd() -> str:
    # Debian puts sshd in /usr/sbin, which is not on a normal user's PATH.
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    found = shutil.which("sshd", path=search)
    if found is None:
        raise LabError("sshd not found", hint="install openssh-server (scripts/setup does)")
    # sshd re-executes itself for every connection and insists on an absolute path to do so.
    return os.path.abspath(found)


def _check_free(addresses: list[str], port: int, directory: Path) -> None:
    taken = [address for address in addresses if not port_is_free(address, port)]
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise LabPortInUse(
            f"{taken[0]}:{port}{more} is already in use: another lab or service listens there",
            hint=f"stop that lab with `maint lab down --dir ITS_DIR`, or pick another port: "
            f"maint lab up --dir {directory} --port {port + 1000}",
        )


def _start_timeout(count: int) -> float:
    return 10.0 + 0.05 * count


def _start_hosts(
    lab: Lab,
    hosts: list[LabHost],
    timeout: float | None = None,
    spawned: Callable[[list[LabHost]], None] | None = None,
) -> list[LabHost]:
    """Start one sshd per host, wait until each listens, and return the hosts with pid and state up.

    All processes are spawned first and waited for afterwards, so their start-up overlaps; ``spawned``
    is called with the hosts and their pids in between. If one fails or the wait times out, every
    process started here is stopped and :class:`LabError` names the host and its log.
    """
    processes: list[tuple[LabHost, subprocess.Popen[bytes]]] = []
    try:
        for host in hosts:
            processes.append((host, _spawn(lab, host)))
        if spawned is not None:
            spawned([dataclasses.replace(host, pid=process.pid, state=UP) for host, process in processes])
        _wait_listening(lab, processes, _start_timeout(len(hosts)) if timeout is None else timeout)
    except BaseException:
        # Includes KeyboardInterrupt: a half-started lab must not be left behind.
        _stop_processes([process.pid for _, process in processes], lab.config_file)
        raise
    return [dataclasses.replace(host, pid=process.pid, state=UP) for host, process in processes]


def _spawn(lab: Lab, host: LabHost) -> subprocess.Popen[bytes]:
    pid_file = lab.pid_file(host.name)
    pid_file.unlink(missing_ok=True)
    set_env = " ".join(
        [
            f"HOME={lab.home}",
            f"MAINT_LAB_HOST={host.name}",
            f"MAINT_LAB_STATE_DIR={host.state_dir}",
        ]
    )
    command = [
        lab.sshd,
        # -f first: its path identifies the lab's sshd in /proc/PID/cmdline, and sshd's process title
        # (which replaces the command line) is truncated at the end if anywhere.
        "-f",
        str(lab.config_file),
        "-D",
        "-h",
        str(lab.host_key(host.name)),
        "-E",
        str(lab.log_file(host.name)),
        "-o",
        f"ListenAddress={host.address}:{host.port}",
        "-o",
        f"PidFile={pid_file}",
        "-o",
        f"SetEnv={set_env}",
    ]
    with lab.log_file(host.name).open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            # Its own session: a Ctrl-C in the terminal that started the lab must not stop the lab.
            start_new_session=True,
        )
    _CHILDREN[process.pid] = process
    return process


def _wait_listening(lab: Lab, processes: list[tuple[LabHost, subprocess.Popen[bytes]]], timeout: float) -> None:
    """Wait until every sshd has written its pid file and the kernel lists its socket as listening.

    sshd writes its pid file only after its listen socket is bound; the LISTEN entry in
    /proc/net/tcp means the kernel accepts TCP connections there. Probing with a real connect would
    cost every sshd a fork and re-exec (~7 ms of CPU) and an error line in its log.
    """
    deadline = time.monotonic() + timeout
    pending = list(processes)
    while pending:
        listening = _listening_sockets()
        still: list[tuple[LabHost, subprocess.Popen[bytes]]] = []
        for host, process in pending:
            if process.poll() is not None:
                _raise_start_failure(lab, host, f"sshd exited with status {process.returncode}")
            ready = (host.address, host.port) in listening and _read_pid(lab.pid_file(host.name)) == process.pid
            if not ready:
                still.append((host, process))
        pending = still
        if not pending:
            return
        if time.monotonic() > deadline:
            host = pending[0][0]
            _raise_start_failure(
                lab, host, f"sshd did not listen within {timeout:.0f} s ({len(pending)} hosts still waiting)"
            )
        time.sleep(0.01)


def _raise_start_failure(lab: Lab, host: LabHost, reason: str) -> None:
    log = lab.log_file(host.name)
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    if any("Address already in use" in line for line in lines[-3:]):
        # Another process took the address between the bind test and sshd's bind; running_lab
        # retries on another port when it sees LabPortInUse.
        raise LabPortInUse(
            f"{host.endpoint} is already in use: the sshd of {host.name} could not bind it",
            hint=f"pick another port (sshd log: {log})",
        )
    last = f": {lines[-1]}" if lines else ""
    raise LabError(f"{host.name} ({host.endpoint}) did not start: {reason}{last}", hint=f"sshd log: {log}")


def _listening_sockets() -> set[tuple[str, int]]:
    """(address, port) of every IPv4 TCP socket in LISTEN state, from /proc/net/tcp."""
    result: set[tuple[str, int]] = set()
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            address_hex, port_hex = fields[1].split(":")
            # The kernel prints the address as a native-endian 32-bit number.
            address = socket.inet_ntoa(struct.pack("=I", int(address_hex, 16)))
            result.add((address, int(port_hex, 16)))
    return result


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _process_state(pid: int | None) -> str | None:
    """The state letter of ``pid`` (R, S, T, Z, ...) from /proc, or None if there is no such process."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may contain spaces; the state follows the last ')'.
    return stat[stat.rindex(")") + 2]


def _is_our_sshd(pid: int, config_file: Path) -> bool:
    """Whether ``pid`` is a live process whose command line names this lab's sshd_config."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]
        return False
    if _process_state(pid) in (None, "Z", "X"):
        return False
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(config_file).encode() in command_line


def _alive(host: LabHost, lab: Lab) -> bool:
    return host.pid is not None and _is_our_sshd(host.pid, lab.config_file)


def _live(lab: Lab, host: LabHost) -> LabHost:
    if lab.state != UP or host.state == DOWN:
        return host
    if not _alive(host, lab):
        return dataclasses.replace(host, state=DEAD)
    return dataclasses.replace(host, state=HANG if _process_state(host.pid) == "T" else UP)


def _children(pids: Iterable[int]) -> dict[int, list[int]]:
    """The direct children of each of ``pids`` (sshd's per-connection processes), from /proc."""
    wanted = set(pids)
    result: dict[int, list[int]] = {pid: [] for pid in wanted}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent in wanted:
            result[parent].append(int(entry.name))
    return result


def _signal_tree(pid: int, signal_number: int) -> None:
    """Send ``signal_number`` to an sshd listener and its per-connection children."""
    for target in [pid, *_children([pid])[pid]]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal_number)


def _stop_processes(pids: list[int], config_file: Path, timeout: float = 5.0) -> int:
    """Stop those of ``pids`` that are this lab's sshd, with their children; return how many.

    SIGTERM first, then SIGCONT so a frozen (hang) sshd wakes up to the pending SIGTERM without first
    serving the connections queued while it was frozen. SIGKILL after ``timeout`` seconds.
    """
    ours = [pid for pid in pids if _is_our_sshd(pid, config_file)]
    if not ours:
        return 0
    children = _children(ours)
    targets = ours + [child for pid in ours for child in children[pid]]
    for signal_number in (signal.SIGTERM, signal.SIGCONT):
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal_number)
    if not _wait_for(lambda: not any(_running(pid) for pid in ours), timeout):
        for pid in ours:
            if _running(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: not any(_running(pid) for pid in ours), timeout)
    for pid in ours:
        _CHILDREN.pop(pid, None)
    return len(ours)


def _running(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    return _process_state(pid) not in (None, "Z", "X")


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
