"""What a lab does: start (``up``), report (``status``), stop (``down``), break and fix a host."""

from __future__ import annotations

import dataclasses
import datetime
import os
import pwd
import signal
from pathlib import Path

from maint.errors import LabError
from maint.lab import users
from maint.lab.addresses import _check_free, lab_addresses
from maint.lab.fault import _fault, _restart_survivors, _surviving_faults
from maint.lab.files import _make_private_dir, _write_files
from maint.lab.model import DEFAULT_FIRST_ADDRESS, DEFAULT_PORT, DOWN, MAX_HOSTS, STATE_FILE, UP, Lab, LabHost
from maint.lab.processes import _alive, _find_sshd, _live, _process_state, _signal_tree, _start_hosts, _stop_processes
from maint.lab.state import _load_or_none, _locked, _resolve, _running_lab, _save, _with_hosts, load


def up(
    directory: Path,
    hosts: int,
    port: int = DEFAULT_PORT,
    first_address: str = DEFAULT_FIRST_ADDRESS,
    *,
    timeout: float | None = None,
    user: str | None = None,
    sudo: str = "none",
    requiretty: bool = False,
) -> Lab:
    """Start a lab of ``hosts`` sshd hosts in ``directory`` and return it once every host listens.

    ``timeout`` (seconds) bounds the wait for all sshds to listen; the default grows with ``hosts``.
    Keys already in ``directory`` are reused, so known_hosts stays the same across ``down``/``up``.
    The start is all or nothing: if one sshd fails, the ones already started are stopped (and the
    account of ``user`` is removed).

    With ``user``, the lab makes that Unix account and every host is logged into as it, with ``sudo``
    (``password``, ``nopasswd`` or ``none``) and ``requiretty`` deciding its sudoers entry; see
    :mod:`maint.lab.users`. ``down`` removes the account. Without ``user`` the hosts are logged into
    as the user running maint.

    Raises :class:`LabPortInUse` if an address:port is taken, :class:`LabError` if the arguments are
    invalid, a lab already runs in ``directory``, an sshd does not start (naming its log), or the
    account cannot be made (not root, a name that exists and is not the lab's, no sudo installed).
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
    previous_account = None if previous is None else previous.account
    visudo = None
    if user is not None:
        visudo = users.check(user, sudo, requiretty, previous_account)
        blocked = users.unreachable_parent(directory)
        if blocked is not None:
            raise LabError(
                f"{user} could not reach the lab in {directory}: other users cannot search {blocked}",
                hint=f"pick a --dir under directories others can search, or chmod o+x {blocked}",
            )
    missing = [parent for parent in directory.parents if not parent.exists()]
    _make_private_dir(directory)
    if user is not None:
        # The lab made these parents: searchable by the lab's account, not listable.
        for parent in missing:
            os.chmod(parent, 0o711)
    with _locked(directory):
        if previous_account is not None:
            # The account of a lab whose down did not run: the lab's own, made again from scratch.
            users.remove(previous_account, previous)
        account = None if user is None else users.create(directory, user, sudo, requiretty, visudo)
        if os.geteuid() == 0:
            # sshd running as root needs its privilege separation directory; containers often lack it.
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        carried = _surviving_faults(previous)
        lab = Lab(
            directory=directory,
            port=port,
            first_address=first_address,
            user=pwd.getpwuid(os.geteuid()).pw_name if account is None else account.name,
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
            account=account,
        )
        try:
            # Recorded before anything else can fail, so that `maint lab down` removes the account.
            _save(dataclasses.replace(lab, state=DOWN))
            _write_files(lab)
            users.grant(lab)
            # Recording the pids as soon as they exist lets `maint lab down` clean up after an `up`
            # that was killed while it waited.
            started = _start_hosts(
                lab, list(lab.hosts), timeout=timeout, spawned=lambda hosts: _save(_with_hosts(lab, hosts))
            )
        except BaseException:
            _save(dataclasses.replace(lab, state=DOWN))
            if account is not None:
                # All or nothing for the account too; lab.json keeps it if even this fails.
                users.remove(account, lab)
                _save(dataclasses.replace(lab, state=DOWN, account=None))
            raise
        lab = _with_hosts(lab, started)
        _save(lab)
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
    Faults that survive a restart stay recorded; the others (down, hang) are cleared. The account
    ``up --user`` made is removed with what the lab made for it (:func:`maint.lab.users.remove`);
    removing it needs root (:class:`LabError` otherwise, before any sshd is stopped).
    """
    directory = _resolve(directory)
    if not (directory / STATE_FILE).exists():
        return 0
    with _locked(directory):
        lab = load(directory)
        if lab.account is not None and os.geteuid() != 0:
            raise LabError(f"removing the lab's user {lab.account.name} needs root: run `maint lab down` as root")
        pids = [host.pid for host in lab.hosts if host.pid is not None]
        stopped = _stop_processes(pids, lab.config_file)
        if lab.account is not None:
            users.remove(lab.account, lab)
        hosts = tuple(
            dataclasses.replace(
                host,
                pid=None,
                state=DOWN,
                faults=_restart_survivors(host.faults),
            )
            for host in lab.hosts
        )
        _save(dataclasses.replace(lab, state=DOWN, hosts=hosts, account=None))
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
        users.grant(lab, [updated])
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
        users.grant(lab, [target])
        if target.pid is None or not _alive(target, lab):
            target = _start_hosts(lab, [target])[0]
        elif _process_state(target.pid) == "T":
            _signal_tree(target.pid, signal.SIGCONT)  # frozen by hand, outside the lab
        target = dataclasses.replace(target, state=UP)
        _save(lab.replace_host(target))
        return target
