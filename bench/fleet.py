"""Fleet benchmark: maint against a plain paramiko script and ansible-playbook on one lab fleet.

One run starts a lab of N real sshd hosts on loopback (maint.lab), then times the same six read-only
commands per host with each tool, as a subprocess, against the same fleet:

- ``maint``: ``maint run PLAYBOOK -i LAB/inventory.ini -f 50 --format json`` (a playbook of six
  ``command`` steps written by the bench);
- ``maint-python``: the same run of one ``python`` step whose task (``maintfile.py`` in the bench directory,
  the run's project directory) makes the six commands as six ``c.run`` on the host's Fabric connection
  (``c.sudo`` with ``--become``): the cost of writing maintenance as Python rather than steps;
- ``paramiko``: bench/paramiko_baseline.py, a plain SSHClient script with 50 threads (the floor);
  ``paramiko-nodelay`` is the same script over TCP_NODELAY sockets (opt in with ``--only``);
- ``ansible``: ``ansible-playbook`` with forks 50, pipelining, no fact gathering.

With ``--become`` (as root only) the lab logs in as an account of its own, ``maintbench``, that becomes
root with sudo and a password (``LAB/become-password``; the inventory reads it with a ``lookup``), and
every tool runs the six commands as root: maint with ``-b`` (one escalated shell per host, one sudo
authentication), the paramiko script with ``--sudo-password-file`` (``sudo -S -p '' sh -c COMMAND`` per
command, the password written to each channel's stdin: one authentication per command), ansible-playbook
with ``--become`` (sudo per task, pipelining kept). ``test -d /etc`` is then ``test "$(id -u)" = 0``, so
a tool that did not become root misses one command per host and fails the count. The account is
removed with the lab.

For each tool: wall time, controller CPU (user+sys of the tool and every process it started, from
``os.wait4``), the lab's sshd CPU, the largest RSS of any one process of the tool, the exit code and
the number of commands that succeeded (6 x N expected; anything else fails the bench). The bench is a
child subreaper, so processes a tool leaves behind (ansible's ssh ControlPersist masters) come back to
it: they are stopped after the tool exits and their CPU counts for that tool. sshd session processes
that come to it (a non-root login's session outlives sshd's monitor process) are the lab's: they are
reaped once they end and count as sshd CPU.

    /work/main/.venv/bin/python bench/fleet.py --hosts 100
    /work/main/.venv/bin/python bench/fleet.py --hosts 1000 --only maint,paramiko
    /work/main/.venv/bin/python bench/fleet.py --hosts 100 --become

Only loopback addresses of the lab are ever dialled. Exit status: 0 if every tool ran every command,
1 if a tool failed or miscounted (its log is named), 2 for a usage error. Targets missed are shown,
not turned into an exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

# (step id, command, needs a shell): the six read-only commands every tool runs on every host.
COMMANDS: tuple[tuple[str, str, bool], ...] = (
    ("df", "df -P /", False),
    ("uptime", "uptime", False),
    ("loadavg", "cat /proc/loadavg", False),
    ("etc", "test -d /etc", False),
    ("packages", "dpkg -l | wc -l", True),
    ("kernel", "uname -r", False),
)
# Under --become the ``etc`` command gives way to one that fails unless it runs as root.
ROOT_CHECK = ("root", 'test "$(id -u)" = 0', True)
BENCH_ACCOUNT = "maintbench"
TOOLS = ("maint", "maint-python", "paramiko", "paramiko-nodelay", "ansible")
DEFAULT_TOOLS = ("maint", "maint-python", "paramiko", "ansible")
FORKS = 50
FIRST_PORT = 23000
BASELINE = Path(__file__).resolve().parent / "paramiko_baseline.py"
PR_SET_CHILD_SUBREAPER = 36
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclasses.dataclass(frozen=True)
class Target:
    """A ratio the bench reports, and the bound it should stay within."""

    label: str
    numerator: str
    denominator: str
    metric: str
    bound: float
    at_most: bool


TARGETS = (
    Target("maint wall / paramiko wall", "maint", "paramiko", "wall", 1.1, True),
    Target("maint CPU / paramiko CPU", "maint", "paramiko", "cpu", 1.5, True),
    Target("maint wall / paramiko-nodelay wall", "maint", "paramiko-nodelay", "wall", 1.1, True),
    Target("maint CPU / paramiko-nodelay CPU", "maint", "paramiko-nodelay", "cpu", 1.5, True),
    Target("ansible wall / maint wall", "ansible", "maint", "wall", 20.0, False),
    Target("maint-python wall / maint wall", "maint-python", "maint", "wall", 1.3, True),
)


class BenchError(Exception):
    """A tool failed, miscounted, or the bench could not run; the message says which and where to look."""


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One run of one tool. CPU in seconds; RSS in KiB; ``tree_rss`` only when sampled."""

    tool: str
    wall: float
    user: float
    system: float
    sshd_cpu: float
    max_rss: int
    tree_rss: int | None
    exit_code: int
    commands_ok: int
    hosts: int
    leftovers: int

    @property
    def cpu(self) -> float:
        """Controller CPU: user + system of the tool's whole process tree."""
        return self.user + self.system

    def to_json(self) -> dict[str, Any]:
        """The measurement as a JSON-ready dict (``cpu`` included)."""
        return {**dataclasses.asdict(self), "cpu": self.cpu}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        """The measurement of a :meth:`to_json` dict."""
        return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls)})


# ---------------------------------------------------------------------------------------------------
# Pure helpers: arguments, generated files, output parsing, aggregation, formatting


def parse_tools(text: str) -> tuple[str, ...]:
    """``maint,paramiko`` as a tuple of known tool names, in the order given, without duplicates."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in TOOLS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown tool(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(TOOLS)}"
        )
    return tuple(dict.fromkeys(names))


def positive(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def bench_commands(become: bool = False) -> tuple[tuple[str, str, bool], ...]:
    """The six (step id, command, needs a shell) of the bench; with ``become``, ``etc`` is the root check."""
    if not become:
        return COMMANDS
    return tuple(ROOT_CHECK if step == "etc" else (step, command, shell) for step, command, shell in COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of the bench."""
    parser = argparse.ArgumentParser(
        prog="fleet.py",
        description="Time maint, a plain paramiko script and ansible-playbook on one lab fleet of real sshd hosts.",
    )
    parser.add_argument("--hosts", type=positive, default=100, help="lab hosts (default 100)")
    parser.add_argument(
        "--repeat", type=positive, default=1, help="runs per tool, interleaved; the median is reported (default 1)"
    )
    parser.add_argument(
        "--only",
        type=parse_tools,
        default=DEFAULT_TOOLS,
        metavar="TOOLS",
        help=f"comma-separated tools among {', '.join(TOOLS)} (default {','.join(DEFAULT_TOOLS)})",
    )
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab and the bench directory in place")
    parser.add_argument("--port", type=int, help=f"lab port (default: the first free one from {FIRST_PORT} up)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument(
        "--settle",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="pause between runs, after the lab's connections have closed (default 2)",
    )
    parser.add_argument(
        "--dir", type=Path, help="bench directory: lab, playbooks, logs, store (default: a new temporary one)"
    )
    parser.add_argument(
        "--tree-rss",
        action="store_true",
        help="also sample the summed RSS of each tool's process tree (5 Hz /proc scan; costs some CPU)",
    )
    parser.add_argument(
        "--become",
        action="store_true",
        help=f"log in as the lab account {BENCH_ACCOUNT} and run every command as root through sudo with its "
        "password (needs root: the bench makes the account and removes it with the lab)",
    )
    return parser


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The bench's arguments; exits 2 (usage error) for bad ones, and for ``--become`` when not root."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.become and os.geteuid() != 0:
        parser.error(f"--become makes the lab account {BENCH_ACCOUNT} (useradd, sudoers): run the bench as root")
    return args


def maint_playbook(become: bool = False) -> str:
    """The maint playbook: the six commands as ``command`` steps (with ``become``, the root check in place of
    ``etc``; the escalation itself comes from ``-b``)."""
    document = {
        "name": "bench",
        "description": "Six read-only commands (fleet benchmark)",
        "hosts": "all",
        "steps": [{"id": step, "type": "command", "command": command} for step, command, _ in bench_commands(become)],
    }
    return yaml.safe_dump(document, sort_keys=False)


def maint_python_playbook() -> str:
    """The maint playbook of ``maint-python``: one ``python`` step, the task of :func:`maintfile`."""
    document = {
        "name": "bench-python",
        "description": "Six read-only commands in one Python task (fleet benchmark)",
        "hosts": "all",
        "steps": [{"id": "six", "type": "python", "task": "maintfile.py:six"}],
    }
    return yaml.safe_dump(document, sort_keys=False)


def maintfile(become: bool = False) -> str:
    """The Python task of ``maint-python``: the six commands as six ``c.run`` (with ``become``, ``c.sudo``) on the
    host's Fabric connection; a command that fails raises, so an ok result means six commands ok."""
    call = "c.sudo" if become else "c.run"
    commands = ",\n".join(f"    {command!r}" for _, command, _ in bench_commands(become))
    return (
        '"""The fleet bench\'s Python task (written by bench/fleet.py)."""\n\n'
        f"COMMANDS = (\n{commands},\n)\n\n\n"
        "def six(c):\n"
        '    """Run the six commands of the bench."""\n'
        "    for command in COMMANDS:\n"
        f"        {call}(command, hide=True)\n"
    )


def ansible_playbook(become: bool = False) -> str:
    """The Ansible playbook: one play, no facts, the six commands as command/shell tasks (with ``become``,
    the root check in place of ``etc``; the escalation itself comes from ``--become``)."""
    tasks = [
        {"name": step, f"ansible.builtin.{'shell' if shell else 'command'}": command}
        for step, command, shell in bench_commands(become)
    ]
    play = {"name": "bench", "hosts": "all", "gather_facts": False, "tasks": tasks}
    return yaml.safe_dump([play], sort_keys=False)


def ansible_config(forks: int) -> str:
    """ansible.cfg for the bench (ANSIBLE_CONFIG points to it, so no other ansible.cfg is read)."""
    return (
        "[defaults]\n"
        f"forks = {forks}\n"
        "gathering = explicit\n"
        "host_key_checking = True\n"
        "retry_files_enabled = False\n"
        "nocolor = True\n"
        "\n[ssh_connection]\n"
        "pipelining = True\n"
    )


def ansible_environment(base: dict[str, str], work: Path, forks: int) -> dict[str, str]:
    """The environment of ansible-playbook: bench config, pipelining, forks, private temp and control paths.

    Host key checking stays on: the lab inventory passes its own UserKnownHostsFile and
    StrictHostKeyChecking=yes through ansible_ssh_common_args.
    """
    environment = {name: value for name, value in base.items() if not name.startswith("ANSIBLE_")}
    environment.update(
        {
            "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_FORKS": str(forks),
            "ANSIBLE_GATHERING": "explicit",
            "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
    )
    return environment


def count_maint(output: str) -> tuple[int, int]:
    """(results with status ok, hosts) from ``maint run --format json`` output."""
    document = json.loads(output)
    ok = sum(1 for result in document.get("results", []) if result.get("status") == "ok")
    return ok, len(document.get("hosts", []))


_BASELINE_LINE = re.compile(r"^baseline: commands_ok=(\d+) hosts_ok=(\d+) hosts=(\d+)", re.MULTILINE)


def count_baseline(output: str) -> tuple[int, int]:
    """(commands ok, hosts) from the baseline's summary line; (0, 0) without one."""
    match = _BASELINE_LINE.search(output)
    if match is None:
        return 0, 0
    return int(match.group(1)), int(match.group(3))


_RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.MULTILINE)


def count_recap(output: str) -> tuple[int, int]:
    """(tasks ok, hosts) from ansible-playbook's PLAY RECAP; hosts with failures or unreachable count 0."""
    _, _, recap = output.rpartition("PLAY RECAP")
    ok = hosts = 0
    for match in _RECAP_LINE.finditer(recap):
        counts = {key: int(value) for key, value in (item.split("=") for item in match.group(2).split())}
        hosts += 1
        if counts.get("failed", 0) == 0 and counts.get("unreachable", 0) == 0:
            ok += counts.get("ok", 0)
    return ok, hosts


def median_measurement(runs: Sequence[Measurement]) -> Measurement:
    """The median of each figure over ``runs`` of one tool (the lower median for an even count of CPU
    times); exit code and counts from the worst run."""
    if not runs:
        raise ValueError("no runs to summarize")
    tree = [run.tree_rss for run in runs if run.tree_rss is not None]
    worst = max(runs, key=lambda run: (run.exit_code != 0, -run.commands_ok))
    # user and sys come from the run of median CPU, so that user + sys is that median.
    median_cpu = sorted(runs, key=lambda run: run.cpu)[(len(runs) - 1) // 2]
    return Measurement(
        tool=runs[0].tool,
        wall=statistics.median(run.wall for run in runs),
        user=median_cpu.user,
        system=median_cpu.system,
        sshd_cpu=statistics.median(run.sshd_cpu for run in runs),
        max_rss=int(statistics.median(run.max_rss for run in runs)),
        tree_rss=int(statistics.median(tree)) if tree else None,
        exit_code=worst.exit_code,
        commands_ok=worst.commands_ok,
        hosts=worst.hosts,
        leftovers=max(run.leftovers for run in runs),
    )


def ratios(results: dict[str, Measurement], targets: Sequence[Target] = TARGETS) -> list[dict[str, Any]]:
    """Each of ``targets`` whose two tools were measured: label, value, bound, and whether it is met."""
    rows = []
    for target in targets:
        top, bottom = results.get(target.numerator), results.get(target.denominator)
        if top is None or bottom is None:
            continue
        denominator = getattr(bottom, target.metric)
        value = getattr(top, target.metric) / denominator if denominator > 0 else float("inf")
        met = value <= target.bound if target.at_most else value >= target.bound
        rows.append(
            {
                "label": target.label,
                "value": value,
                "bound": f"{'<=' if target.at_most else '>='} {target.bound:g}",
                "met": met,
            }
        )
    return rows


def format_table(results: Sequence[Measurement], expected: int) -> str:
    """A fixed-width table of the (median) figures, one line per tool."""
    with_tree = any(result.tree_rss is not None for result in results)
    header = ["tool", "wall s", "CPU s", "user s", "sys s", "sshd CPU s", "max RSS MB"]
    if with_tree:
        header.append("tree RSS MB")
    header += ["exit", "commands ok"]
    rows = [header]
    for result in results:
        row = [
            result.tool,
            f"{result.wall:.2f}",
            f"{result.cpu:.2f}",
            f"{result.user:.2f}",
            f"{result.system:.2f}",
            f"{result.sshd_cpu:.2f}",
            f"{result.max_rss / 1024:.1f}",
        ]
        if with_tree:
            row.append("-" if result.tree_rss is None else f"{result.tree_rss / 1024:.1f}")
        row += [str(result.exit_code), f"{result.commands_ok}/{expected}"]
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_ratios(rows: Sequence[dict[str, Any]], results: dict[str, Measurement]) -> str:
    """The ratio lines (value, target, met or MISSED) and maint's peak RSS."""
    lines = []
    width = max([len(row["label"]) for row in rows] + [len("maint peak RSS")])
    for row in rows:
        verdict = "met" if row["met"] else "MISSED"
        lines.append(f"{row['label'].ljust(width)}  {row['value']:6.2f}   (target {row['bound']}: {verdict})")
    if "maint" in results:
        lines.append(f"{'maint peak RSS'.ljust(width)}  {results['maint'].max_rss / 1024:6.1f} MB")
    return "\n".join(lines)


def interleaved(tools: Sequence[str], repeat: int) -> list[str]:
    """The order of runs: every tool once per round, each round starting one tool later."""
    order: list[str] = []
    for round_index in range(repeat):
        shift = round_index % len(tools)
        order += list(tools[shift:]) + list(tools[:shift])
    return order


# ---------------------------------------------------------------------------------------------------
# Processes: /proc, the subreaper, one measured run


def proc_table() -> dict[int, list[str]]:
    """Every process as pid -> the fields of /proc/PID/stat after the command name (state first)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        table[int(entry.name)] = stat[stat.rindex(")") + 2 :].split()
    return table


def _ppid(fields: list[str]) -> int:
    return int(fields[1])


def sshd_cpu(listeners: Sequence[int], table: dict[int, list[str]] | None = None) -> float:
    """CPU seconds of the lab's sshd listeners and every connection process they reaped."""
    table = proc_table() if table is None else table
    ticks = 0
    for pid in listeners:
        fields = table.get(pid)
        if fields is not None:
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def wait_drained(listeners: Sequence[int], timeout: float = 30.0) -> None:
    """Wait until no lab sshd listener has a connection process left (so their CPU is accounted)."""
    wanted = set(listeners)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_ppid(fields) in wanted for fields in proc_table().values()):
            return
        time.sleep(0.05)


def is_lab_sshd(pid: int) -> bool:
    """Whether process ``pid`` is an sshd (``sshd``, ``sshd-session``): the lab's, as no tool starts one."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("sshd")
    except OSError:
        return False


def reap_lab_sessions(keep: set[int]) -> float:
    """Reap the lab's sshd processes the bench adopted (``keep``: its own children, such as the
    listeners); return their CPU seconds, with the CPU of the processes they reaped.

    With a non-root login, sshd runs a session in an unprivileged child of its root monitor; the monitor
    may exit first, and that child, which ran the session's commands (sudo and its shells), then comes to
    the subreaper bench instead of the listener. Its CPU is the hosts', not the tool's.
    """
    me = os.getpid()
    total = 0.0
    for pid, fields in proc_table().items():
        if _ppid(fields) == me and pid not in keep and is_lab_sshd(pid):
            usage = _reap(pid)
            if usage is not None:
                total += usage.ru_utime + usage.ru_stime
    return total


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux prctl); False if unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class TreeSampler:
    """Samples the summed RSS of a process and its descendants (plus orphans adopted by the bench)."""

    def __init__(self, root: int, ignore: set[int], interval: float = 0.2) -> None:
        self.root = root
        self.ignore = ignore
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-rss", daemon=True)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> int:
        """Stop sampling; return the peak in KiB."""
        self._stop.set()
        self._thread.join()
        return self.peak

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            table = proc_table()
            children: dict[int, list[int]] = {}
            for pid, fields in table.items():
                children.setdefault(_ppid(fields), []).append(pid)
            roots = [self.root] + [pid for pid in children.get(me, []) if pid not in self.ignore]
            seen: set[int] = set()
            stack = list(roots)
            while stack:
                pid = stack.pop()
                if pid in seen or pid not in table:
                    continue
                seen.add(pid)
                stack += children.get(pid, [])
            total = sum(int(table[pid][21]) for pid in seen) * PAGE_SIZE // 1024  # rss in pages
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)


@dataclasses.dataclass(frozen=True)
class ProcessRun:
    """What one measured subprocess did: exit code, wall, CPU and RSS including its leftovers."""

    exit_code: int
    wall: float
    user: float
    system: float
    max_rss: int
    tree_rss: int | None
    leftovers: int


def run_measured(
    command: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdout: Path,
    stderr: Path,
    keep: set[int],
    sample_tree: bool = False,
) -> ProcessRun:
    """Run ``command`` to completion and account for its whole process tree.

    Wall time runs from the start until the command exits. Processes it left behind (adopted by the
    subreaper bench; ``keep`` are the bench's own children, such as the lab's sshds) are then stopped
    with SIGTERM and reaped, and their CPU and RSS are added. Adopted sshd processes are the lab's and are
    left to :func:`reap_lab_sessions`.
    """
    me = os.getpid()
    before = {pid for pid, fields in proc_table().items() if _ppid(fields) == me} | keep
    sampler = None
    with stdout.open("wb") as out, stderr.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        if sample_tree:
            sampler = TreeSampler(process.pid, before)
            sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    user, system, max_rss = usage.ru_utime, usage.ru_stime, usage.ru_maxrss
    tree_rss = sampler.stop() if sampler is not None else None
    leftovers = [
        pid
        for pid, fields in proc_table().items()
        if _ppid(fields) == me and pid not in before and not is_lab_sshd(pid)
    ]
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in leftovers:
        rusage = _reap(pid)
        if rusage is not None:
            user += rusage.ru_utime
            system += rusage.ru_stime
            max_rss = max(max_rss, rusage.ru_maxrss)
    return ProcessRun(process.returncode, wall, user, system, max_rss, tree_rss, len(leftovers))


def _reap(pid: int, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            reaped, _, usage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if reaped:
            return usage
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------------------
# The bench


@dataclasses.dataclass
class Bench:
    """Everything one bench invocation needs: its directory, lab, tools and options.

    With ``become``, the lab logs in as an account that becomes root with sudo and the password in
    ``lab.account.password_file``, and every tool runs the commands as root.
    """

    work: Path
    lab: Any
    bin_dir: Path
    sample_tree: bool
    settle: float = 0.0
    runs: int = 0
    become: bool = False

    @property
    def hosts(self) -> int:
        """Number of lab hosts."""
        return len(self.lab.hosts)

    @property
    def listeners(self) -> list[int]:
        """pids of the lab's sshd listeners."""
        return [host.pid for host in self.lab.hosts if host.pid is not None]

    def prepare(self) -> None:
        """Write the playbooks, the baseline's targets, ansible.cfg and the directories the tools use."""
        (self.work / "logs").mkdir(exist_ok=True)
        (self.work / "ansible" / "tmp").mkdir(parents=True, exist_ok=True)
        (self.work / "ansible" / "cp").mkdir(parents=True, exist_ok=True)
        (self.work / "bench.yml").write_text(maint_playbook(self.become))
        (self.work / "bench-python.yml").write_text(maint_python_playbook())
        (self.work / "maintfile.py").write_text(maintfile(self.become))
        (self.work / "site.yml").write_text(ansible_playbook(self.become))
        (self.work / "ansible" / "ansible.cfg").write_text(ansible_config(FORKS))
        targets = {
            "user": self.lab.user,
            "key_file": str(self.lab.key_file),
            "known_hosts": str(self.lab.known_hosts),
            "hosts": [{"name": host.name, "address": host.address, "port": host.port} for host in self.lab.hosts],
        }
        (self.work / "targets.json").write_text(json.dumps(targets, indent=1))

    def command(self, tool: str) -> tuple[list[str], dict[str, str]]:
        """The command line and environment of ``tool``."""
        environment = dict(os.environ)
        if tool in ("maint", "maint-python"):
            book = "bench.yml" if tool == "maint" else "bench-python.yml"
            command = [
                str(self._binary("maint")), "run", str(self.work / book), "-i", str(self.lab.inventory),
                "-f", str(FORKS), "--db", f"sqlite:///{self.work / 'bench.db'}", "--format", "json",
            ]  # fmt: skip
            if self.become:
                command.append("-b")  # the password comes from the inventory's ansible_become_password
            return command, environment
        if tool in ("paramiko", "paramiko-nodelay"):
            command = [sys.executable, str(BASELINE), str(self.work / "targets.json"), "--threads", str(FORKS)]
            if tool == "paramiko-nodelay":
                command.append("--nodelay")
            if self.become:
                command += ["--sudo-password-file", str(self._password_file())]
            return command, environment
        if tool == "ansible":
            command = [
                str(self._binary("ansible-playbook")), "-i", str(self.lab.inventory), str(self.work / "site.yml"),
                "--forks", str(FORKS),
            ]  # fmt: skip
            if self.become:
                command.append("--become")  # sudo, with the inventory's ansible_become_password
            return command, ansible_environment(environment, self.work / "ansible", FORKS)
        raise ValueError(f"unknown tool {tool!r}")

    def count(self, tool: str, output: str) -> tuple[int, int]:
        """(commands ok, hosts) from what ``tool`` printed on stdout; raises ValueError on unreadable output."""
        if tool == "maint":
            return count_maint(output)
        if tool == "maint-python":
            ok, hosts = count_maint(output)
            return ok * len(bench_commands(self.become)), hosts  # one result per host: all six or an error
        if tool == "ansible":
            return count_recap(output)
        return count_baseline(output)

    def _password_file(self) -> Path:
        account = self.lab.account
        if account is None or account.password_file is None:
            raise BenchError("--become needs a lab whose account has a sudo password; this lab has none")
        return Path(account.password_file)

    def _binary(self, name: str) -> Path:
        path = self.bin_dir / name
        if not path.exists():
            found = shutil.which(name)
            if found is None:
                raise BenchError(f"{name} not found next to {sys.executable} nor on PATH")
            path = Path(found)
        return path

    def measure(self, tool: str) -> Measurement:
        """Run ``tool`` once on the fleet, check it ran every command, and return its figures."""
        self.runs += 1
        stem = self.work / "logs" / f"{self.runs:02d}-{tool}"
        stdout, stderr = stem.with_suffix(".out"), stem.with_suffix(".err")
        command, environment = self.command(tool)
        wait_drained(self.listeners)
        # The end of one tool's run (sshd exits, killed ssh masters, freed memory) must not land in the next.
        time.sleep(self.settle)
        reap_lab_sessions(set(self.listeners))
        sshd_before = sshd_cpu(self.listeners)
        process = run_measured(
            command,
            cwd=self.work,
            env=environment,
            stdout=stdout,
            stderr=stderr,
            keep=set(self.listeners),
            sample_tree=self.sample_tree,
        )
        wait_drained(self.listeners)
        sshd_after = sshd_cpu(self.listeners) + reap_lab_sessions(set(self.listeners))
        output = stdout.read_text(errors="replace")
        try:
            commands_ok, hosts = self.count(tool, output)
        except (ValueError, KeyError) as error:
            commands_ok, hosts = 0, 0
            print(f"bench: cannot read {tool}'s output ({error}); see {stdout}", file=sys.stderr)
        result = Measurement(
            tool=tool,
            wall=process.wall,
            user=process.user,
            system=process.system,
            sshd_cpu=sshd_after - sshd_before,
            max_rss=process.max_rss,
            tree_rss=process.tree_rss,
            exit_code=process.exit_code,
            commands_ok=commands_ok,
            hosts=hosts,
            leftovers=process.leftovers,
        )
        expected = len(bench_commands(self.become)) * self.hosts
        if process.exit_code != 0 or commands_ok != expected or hosts != self.hosts:
            tail = "\n".join(stderr.read_text(errors="replace").splitlines()[-15:])
            raise BenchError(
                f"{tool} failed: exit code {process.exit_code}, {commands_ok}/{expected} commands ok on "
                f"{hosts}/{self.hosts} hosts\n  command: {' '.join(command)}\n  stdout: {stdout}\n"
                f"  stderr: {stderr}\n{tail}"
            )
        return result


@contextlib.contextmanager
def lab_fleet(directory: Path, hosts: int, port: int | None, keep: bool, *, become: bool = False) -> Iterator[Any]:
    """Start the lab (on ``port``, or the first free port from FIRST_PORT up) and take it down after.

    With ``become``, the lab logs in as its own account BENCH_ACCOUNT, which becomes root with sudo and
    a password; taking the lab down removes the account.
    """
    from maint import lab as lab_library
    from maint.testing import free_port

    account: dict[str, Any] = {"user": BENCH_ACCOUNT, "sudo": "password"} if become else {}
    start = FIRST_PORT
    while True:
        chosen = port if port is not None else free_port(hosts, start=start)
        try:
            fleet = lab_library.up(directory, hosts, port=chosen, **account)
            break
        except lab_library.LabPortInUse:
            if port is not None:
                raise
            start = chosen + 1
    try:
        yield fleet
    finally:
        if keep:
            print(f"bench: lab left running; stop it with: maint lab down --dir {directory}", file=sys.stderr)
        else:
            lab_library.down(directory)


def run_bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Start the lab, measure every tool ``args.repeat`` times, and return the report document."""
    subreaper = become_subreaper()
    load_before = os.getloadavg()[0]
    if args.become and args.dir is None:
        # The lab's account must reach the lab below the bench's own temporary directory (made 0700).
        work.chmod(0o711)
    with lab_fleet(work / "lab", args.hosts, args.port, args.keep_lab, become=args.become) as fleet:
        bench = Bench(
            work=work,
            lab=fleet,
            bin_dir=Path(sys.executable).parent,
            sample_tree=args.tree_rss,
            settle=args.settle,
            become=args.become,
        )
        bench.prepare()
        print(
            f"bench: lab of {bench.hosts} hosts up on port {fleet.port}, logged into as {fleet.user}"
            f"{', becoming root with sudo and a password' if args.become else ''}; tools {', '.join(args.only)}; "
            f"repeat {args.repeat}",
            file=sys.stderr,
        )
        runs = measure_all(bench, args.only, args.repeat)
        port = fleet.port
    medians = {tool: median_measurement(tool_runs) for tool, tool_runs in runs.items()}
    return {
        "hosts": args.hosts,
        "commands_per_host": len(COMMANDS),
        "forks": FORKS,
        "repeat": args.repeat,
        "become": BENCH_ACCOUNT if args.become else None,
        "port": port,
        "directory": str(work),
        "subreaper": subreaper,
        "paramiko_variant": "plain SSHClient (no TCP_NODELAY), known_hosts parsed once and shared",
        "cpu_count": os.cpu_count(),
        # Other work on the machine competes with the fleet for the same cores: read figures taken
        # under load with care.
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "median": {tool: result.to_json() for tool, result in medians.items()},
        "runs": {tool: [run.to_json() for run in tool_runs] for tool, tool_runs in runs.items()},
        "ratios": ratios(medians),
    }


def render(report: dict[str, Any]) -> str:
    """The human-readable report: header, table, ratios."""
    medians = {tool: Measurement.from_json(data) for tool, data in report["median"].items()}
    expected = report["hosts"] * report["commands_per_host"]
    lines = [
        f"fleet bench: {report['hosts']} hosts x {report['commands_per_host']} commands, forks/threads "
        f"{report['forks']}, {report['cpu_count']} CPUs, "
        + ("median of " + str(report["repeat"]) + " runs" if report["repeat"] > 1 else "1 run")
        + " per tool",
        f"1-minute load average: {report['load_average']['before']:.2f} before, "
        f"{report['load_average']['after']:.2f} after (which includes the bench's own runs)",
    ]
    if report.get("become"):
        lines.append(
            f"as {report['become']}, becoming root with sudo and a password: maint -b (one sudo per host), "
            "paramiko sudo -S per command, ansible --become (sudo per task)"
        )
    if "paramiko" in medians:
        lines.append(f"paramiko: {report['paramiko_variant']}")
    if "paramiko-nodelay" in medians:
        lines.append("paramiko-nodelay: the same script over sockets with TCP_NODELAY set (sock=)")
    lines += ["", format_table(list(medians.values()), expected), ""]
    if "ansible" in medians:
        lines.append(
            f"(ansible: max RSS is its largest single process; it runs up to {report['forks']} forks"
            " plus one ssh per host)"
        )
    lines.append(format_ratios(report["ratios"], medians))
    return "\n".join(lines)


def measure_all(bench: Bench, tools: Sequence[str], repeat: int) -> dict[str, list[Measurement]]:
    """Measure each tool ``repeat`` times, interleaved, saying each figure on stderr as it comes."""
    runs: dict[str, list[Measurement]] = {tool: [] for tool in tools}
    for tool in interleaved(tools, repeat):
        result = bench.measure(tool)
        runs[tool].append(result)
        print(
            f"bench: {tool}: wall {result.wall:.2f} s, CPU {result.cpu:.2f} s, sshd CPU {result.sshd_cpu:.2f} s, "
            f"max RSS {result.max_rss / 1024:.1f} MB",
            file=sys.stderr,
        )
    return runs


def run_main(
    args: argparse.Namespace,
    prefix: str,
    bench: Callable[[argparse.Namespace, Path], dict[str, Any]],
    show: Callable[[dict[str, Any]], str],
) -> int:
    """Run ``bench`` in a work directory (a temporary one unless --dir), print its report, return the exit status.

    The work directory is removed after a good run unless --keep-lab; after a failure it is kept and named.
    """
    own_dir = args.dir is None
    work = Path(tempfile.mkdtemp(prefix=prefix)) if own_dir else args.dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    from maint.errors import MaintError

    failed = True
    try:
        report = bench(args, work)
        failed = False
    except (BenchError, MaintError) as error:
        print(f"bench: FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        if own_dir and not failed and not args.keep_lab:
            shutil.rmtree(work, ignore_errors=True)
            report["directory"] = None
        else:
            print(f"bench: files kept in {work}", file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else show(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the bench; see the module docstring for the exit status."""
    return run_main(parse_arguments(argv), "maint-bench-", run_bench, render)


if __name__ == "__main__":
    sys.exit(main())
