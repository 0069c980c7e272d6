"""Faults: ways to break a lab host, in a registry, so later work adds faults (virus, disk-full,
service-down) by adding an entry to FAULTS, without touching break_host/fix_host.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from typing import Any

from maint.errors import LabError
from maint.lab.model import DOWN, HANG, UP, Lab, LabHost
from maint.lab.processes import (
    _is_our_sshd,
    _process_state,
    _signal_tree,
    _start_hosts,
    _stop_processes,
    _wait_for,
)


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
