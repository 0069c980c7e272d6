"""The lab's sshd processes: starting them, waiting until they listen, telling them apart, stopping them.

Linux-only: the processes, their states and the listening sockets are read from /proc.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from maint.errors import LabError
from maint.lab.model import DEAD, DOWN, HANG, UP, Lab, LabHost, LabPortInUse

# Processes started by this Python process, by pid. A child that exits stays a zombie (and keeps its
# /proc entry) until its parent reaps it, so stopping our own children must go through Popen.wait().
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _find_sshd() -> str:
    # Debian puts sshd in /usr/sbin, which is not on a normal user's PATH.
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    found = shutil.which("sshd", path=search)
    if found is None:
        raise LabError("sshd not found", hint="install openssh-server (scripts/setup does)")
    # sshd re-executes itself for every connection and insists on an absolute path to do so.
    return os.path.abspath(found)


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
            f"HOME={lab.session_home}",
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
