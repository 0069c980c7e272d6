"""The fleet bench's pure helpers: arguments, generated playbooks, output parsing, ratios and tables."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import yaml

from maint import playbooks

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve string annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fleet = _load("fleet")
baseline = _load("paramiko_baseline")


def measurement(tool: str, wall: float, cpu: float, **changes: object) -> Any:
    values: dict[str, object] = {
        "tool": tool,
        "wall": wall,
        "user": cpu * 0.75,
        "system": cpu * 0.25,
        "sshd_cpu": 1.0,
        "max_rss": 51200,
        "tree_rss": None,
        "exit_code": 0,
        "commands_ok": 600,
        "hosts": 100,
        "leftovers": 0,
    }
    values.update(changes)
    return fleet.Measurement(**values)


def test_defaults() -> None:
    args = fleet.build_parser().parse_args([])
    assert (args.hosts, args.repeat, args.only, args.port, args.json, args.keep_lab, args.dir, args.settle) == (
        100,
        1,
        ("maint", "maint-python", "paramiko", "ansible"),
        None,
        False,
        False,
        None,
        2.0,
    )


def test_only_keeps_order_and_drops_duplicates() -> None:
    args = fleet.build_parser().parse_args(["--only", "paramiko, maint,paramiko", "--hosts", "1000"])
    assert args.only == ("paramiko", "maint")
    assert args.hosts == 1000


@pytest.mark.parametrize("argv", [["--only", "maint,fabric"], ["--only", ","], ["--hosts", "0"], ["--repeat", "x"]])
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        fleet.build_parser().parse_args(argv)
    assert caught.value.code == 2
    assert "fleet.py: error:" in capsys.readouterr().err


def test_maint_playbook_loads_with_six_command_steps(tmp_path: Path) -> None:
    path = tmp_path / "bench.yml"
    path.write_text(fleet.maint_playbook())
    book = playbooks.load(str(path), tmp_path)
    assert [step.id for step in book.steps] == ["df", "uptime", "loadavg", "etc", "packages", "kernel"]
    data = yaml.safe_load(path.read_text())
    assert [step["type"] for step in data["steps"]] == ["command"] * 6
    assert [step["command"] for step in data["steps"]] == list(baseline.COMMANDS)


def test_ansible_playbook_is_one_play_without_facts() -> None:
    (play,) = yaml.safe_load(fleet.ansible_playbook())
    assert play["hosts"] == "all"
    assert play["gather_facts"] is False
    modules = [next(key for key in task if key != "name") for task in play["tasks"]]
    commands = [task[module] for task, module in zip(play["tasks"], modules, strict=True)]
    assert commands == list(baseline.COMMANDS)
    # The pipe needs a shell; the others run without one.
    assert modules.count("ansible.builtin.shell") == 1
    assert play["tasks"][modules.index("ansible.builtin.shell")]["ansible.builtin.shell"] == "dpkg -l | wc -l"


def test_ansible_environment_is_private_and_pipelined(tmp_path: Path) -> None:
    env = fleet.ansible_environment({"PATH": "/bin", "ANSIBLE_PIPELINING": "False", "ANSIBLE_X": "1"}, tmp_path, 50)
    assert env["PATH"] == "/bin"
    assert "ANSIBLE_X" not in env
    assert env["ANSIBLE_PIPELINING"] == "True"
    assert env["ANSIBLE_FORKS"] == "50"
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_CONFIG"] == str(tmp_path / "ansible.cfg")
    assert env["ANSIBLE_LOCAL_TEMP"].startswith(str(tmp_path))
    assert env["ANSIBLE_SSH_CONTROL_PATH_DIR"].startswith(str(tmp_path))
    assert "pipelining = True" in fleet.ansible_config(50)


def test_counts_from_tool_output() -> None:
    maint_output = json.dumps(
        {
            "hosts": ["lab1", "lab2"],
            "results": [{"status": "ok"}] * 11 + [{"status": "failed"}],
        }
    )
    assert fleet.count_maint(maint_output) == (11, 2)
    assert fleet.count_baseline("noise\nbaseline: commands_ok=594 hosts_ok=99 hosts=100 nodelay=False\n") == (594, 100)
    assert fleet.count_baseline("Traceback ...") == (0, 0)
    tail = "skipped=0    rescued=0    ignored=0\n"
    recap = (
        "TASK [kernel] ***\nok: [lab1]\n\nPLAY RECAP *****\n"
        f"lab1                       : ok=6    changed=6    unreachable=0    failed=0    {tail}"
        f"lab2                       : ok=3    changed=3    unreachable=0    failed=1    {tail}"
        f"lab3                       : ok=0    changed=0    unreachable=1    failed=0    {tail}"
    )
    assert fleet.count_recap(recap) == (6, 3)
    assert fleet.count_recap("no recap at all") == (0, 0)


def test_median_and_ratios() -> None:
    runs = [measurement("maint", wall, 1.0) for wall in (3.0, 1.0, 2.0)]
    median = fleet.median_measurement(runs)
    assert median.wall == 2.0
    assert median.cpu == pytest.approx(1.0)
    results = {
        "maint": median,
        "paramiko": measurement("paramiko", 2.0, 0.5),
        "ansible": measurement("ansible", 50.0, 20.0),
    }
    rows = {row["label"]: row for row in fleet.ratios(results)}
    assert set(rows) == {"maint wall / paramiko wall", "maint CPU / paramiko CPU", "ansible wall / maint wall"}
    assert rows["maint wall / paramiko wall"]["value"] == pytest.approx(1.0)
    assert rows["maint wall / paramiko wall"]["met"] is True
    assert rows["maint CPU / paramiko CPU"]["value"] == pytest.approx(2.0)
    assert rows["maint CPU / paramiko CPU"]["met"] is False
    assert rows["ansible wall / maint wall"] == {
        "label": "ansible wall / maint wall",
        "value": 25.0,
        "bound": ">= 20",
        "met": True,
    }
    text = fleet.format_ratios(list(rows.values()), results)
    assert "MISSED" in text
    assert "maint peak RSS" in text and "50.0 MB" in text


def test_median_cpu_keeps_user_and_sys_of_one_run() -> None:
    runs = [
        measurement("maint", 1.0, 0.0, user=0.9, system=0.1),
        measurement("maint", 1.0, 0.0, user=0.2, system=1.8),
        measurement("maint", 1.0, 0.0, user=1.0, system=0.5),
    ]
    median = fleet.median_measurement(runs)
    assert (median.user, median.system) == (1.0, 0.5)


def test_median_reports_the_worst_exit_code() -> None:
    runs = [measurement("paramiko", 1.0, 1.0), measurement("paramiko", 1.0, 1.0, exit_code=1, commands_ok=590)]
    worst = fleet.median_measurement(runs)
    assert (worst.exit_code, worst.commands_ok) == (1, 590)


def test_table_lines_up() -> None:
    table = fleet.format_table([measurement("maint", 1.234, 0.8), measurement("paramiko-nodelay", 10.0, 12.5)], 600)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["tool", "wall", "s"]
    assert lines[1].split() == ["maint", "1.23", "0.80", "0.60", "0.20", "1.00", "50.0", "0", "600/600"]
    assert lines[2].split()[:3] == ["paramiko-nodelay", "10.00", "12.50"]
    assert len({line.index("600/600") for line in lines[1:]}) == 1


def test_measurement_round_trips_through_json() -> None:
    original = measurement("maint", 1.5, 0.9, tree_rss=70000)
    data = json.loads(json.dumps(original.to_json()))
    assert data["cpu"] == pytest.approx(0.9)
    assert fleet.Measurement.from_json(data) == original


def test_runs_are_interleaved() -> None:
    assert fleet.interleaved(("a", "b", "c"), 2) == ["a", "b", "c", "b", "c", "a"]


def test_baseline_targets_from_lab_json_or_arguments(tmp_path: Path) -> None:
    lab_json = tmp_path / "lab.json"
    lab_json.write_text(
        json.dumps(
            {
                "user": "root",
                "key_file": "/k",
                "known_hosts": "/kh",
                "hosts": [{"name": "lab1", "address": "127.0.0.2", "port": 2222}],
            }
        )
    )
    parser = baseline.build_parser()
    (target,) = baseline.parse_targets(parser.parse_args([str(lab_json)]), parser)
    assert (target.address, target.port, target.user, target.host_key_name) == (
        "127.0.0.2",
        2222,
        "root",
        "[127.0.0.2]:2222",
    )
    args = parser.parse_args(["--user", "u", "--key", "k", "--known-hosts", "kh", "127.0.0.3:22", "127.0.0.4"])
    targets = baseline.parse_targets(args, parser)
    assert [(t.address, t.port, t.host_key_name) for t in targets] == [
        ("127.0.0.3", 22, "127.0.0.3"),
        ("127.0.0.4", 22, "127.0.0.4"),
    ]
    with pytest.raises(argparse.ArgumentTypeError):
        baseline.parse_endpoint("127.0.0.2:ssh")
    with pytest.raises(SystemExit):
        parser.parse_args([])


def test_become_is_off_by_default_and_needs_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fleet.build_parser().parse_args([]).become is False
    monkeypatch.setattr(fleet.os, "geteuid", lambda: 0)
    assert fleet.parse_arguments(["--become", "--hosts", "10"]).become is True
    monkeypatch.setattr(fleet.os, "geteuid", lambda: 1000)
    assert fleet.parse_arguments(["--hosts", "10"]).become is False
    with pytest.raises(SystemExit) as caught:
        fleet.parse_arguments(["--become"])
    assert caught.value.code == 2
    assert "--become makes the lab account maintbench" in capsys.readouterr().err


def test_become_commands_check_root_in_place_of_etc() -> None:
    assert fleet.bench_commands() == fleet.COMMANDS
    commands = fleet.bench_commands(become=True)
    assert [step for step, _, _ in commands] == ["df", "uptime", "loadavg", "root", "packages", "kernel"]
    assert commands[3] == ("root", 'test "$(id -u)" = 0', True)
    assert [command for _, command, _ in commands] == list(baseline.commands(True))
    assert baseline.commands(False) == baseline.COMMANDS
    assert baseline.commands(True)[3] == 'test "$(id -u)" = 0'


def test_become_playbooks_run_the_root_check(tmp_path: Path) -> None:
    path = tmp_path / "bench.yml"
    path.write_text(fleet.maint_playbook(become=True))
    book = playbooks.load(str(path), tmp_path)
    assert [step.id for step in book.steps] == ["df", "uptime", "loadavg", "root", "packages", "kernel"]
    data = yaml.safe_load(path.read_text())
    # The escalation comes from -b on the command line, not from the playbook.
    assert "become" not in data
    assert data["steps"][3] == {"id": "root", "type": "command", "command": 'test "$(id -u)" = 0'}
    (play,) = yaml.safe_load(fleet.ansible_playbook(become=True))
    assert "become" not in play
    # The command module would not expand $(...): the root check needs a shell.
    assert play["tasks"][3] == {"name": "root", "ansible.builtin.shell": 'test "$(id -u)" = 0'}
    assert yaml.safe_load(fleet.ansible_playbook())[0]["tasks"][3] == {
        "name": "etc",
        "ansible.builtin.command": "test -d /etc",
    }


def _bench(tmp_path: Path, become: bool, password_file: Path | None = None) -> Any:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("maint", "ansible-playbook"):
        (bin_dir / name).touch()
    account = None if password_file is None else SimpleNamespace(password_file=password_file)
    lab = SimpleNamespace(inventory=tmp_path / "lab" / "inventory.ini", account=account, hosts=())
    return fleet.Bench(work=tmp_path, lab=lab, bin_dir=bin_dir, sample_tree=False, become=become)


def test_become_command_lines(tmp_path: Path) -> None:
    password = tmp_path / "lab" / "become-password"
    bench = _bench(tmp_path, True, password)
    maint, _ = bench.command("maint")
    assert maint[-1] == "-b"
    paramiko, _ = bench.command("paramiko")
    assert paramiko[-2:] == ["--sudo-password-file", str(password)]
    nodelay, _ = bench.command("paramiko-nodelay")
    assert "--nodelay" in nodelay and nodelay[-2:] == ["--sudo-password-file", str(password)]
    baseline.build_parser().parse_args(paramiko[2:])  # the baseline takes what the bench passes
    ansible, environment = bench.command("ansible")
    assert ansible[-1] == "--become"
    assert environment["ANSIBLE_PIPELINING"] == "True"
    plain = _bench(tmp_path, False)
    for tool in fleet.TOOLS:
        command, _ = plain.command(tool)
        assert not {"-b", "--become", "--sudo-password-file"} & set(command)
    with pytest.raises(fleet.BenchError, match="sudo password"):
        _bench(tmp_path, True).command("paramiko")


def test_baseline_sudo_command_reads_the_password_on_stdin() -> None:
    assert baseline.sudo_command("uptime") == "sudo -S -p '' sh -c uptime"
    assert baseline.sudo_command("dpkg -l | wc -l") == "sudo -S -p '' sh -c 'dpkg -l | wc -l'"
    for command in baseline.commands(True):
        assert shlex.split(baseline.sudo_command(command)) == ["sudo", "-S", "-p", "", "sh", "-c", command]


def test_baseline_sudo_password_option(tmp_path: Path) -> None:
    password = tmp_path / "become-password"
    password.write_text("s3cret\n")
    args = baseline.build_parser().parse_args(["lab.json", "--sudo-password-file", str(password)])
    assert args.sudo_password_file == str(password)
    assert baseline.build_parser().parse_args(["lab.json"]).sudo_password_file is None
    assert baseline.read_password(str(password)) == "s3cret"
    assert fleet.count_baseline("baseline: commands_ok=60 hosts_ok=10 hosts=10 nodelay=False sudo=True\n") == (60, 10)


class _Channel:
    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.log = log

    def shutdown_write(self) -> None:
        self.log.append(("eof", ""))

    def recv_exit_status(self) -> int:
        return 0


class _Stream:
    def __init__(self, channel: _Channel) -> None:
        self.channel = channel

    def write(self, data: str) -> None:
        self.channel.log.append(("stdin", data))

    def flush(self) -> None:
        pass

    def read(self) -> bytes:
        return b""


class _Client:
    log: list[tuple[str, str]] = []

    def get_host_keys(self) -> Any:
        return SimpleNamespace(add=lambda *args: None)

    def set_missing_host_key_policy(self, policy: object) -> None:
        pass

    def connect(self, *args: object, **kwargs: object) -> None:
        pass

    def exec_command(self, command: str, timeout: float) -> tuple[_Stream, _Stream, _Stream]:
        self.log.append(("exec", command))
        channel = _Channel(self.log)
        return _Stream(channel), _Stream(channel), _Stream(channel)

    def close(self) -> None:
        pass


def test_baseline_runs_one_sudo_per_command_with_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    paramiko = pytest.importorskip("paramiko")
    monkeypatch.setattr(paramiko, "SSHClient", _Client)
    _Client.log = []
    target = baseline.Target("127.0.0.2", 2222, "maintbench", "/k", "/kh")
    host_keys = SimpleNamespace(lookup=lambda name: {})
    assert baseline.check_host(target, host_keys, False, "s3cret") == 6
    expected: list[tuple[str, str]] = []
    for command in baseline.commands(True):
        expected += [("exec", baseline.sudo_command(command)), ("stdin", "s3cret\n"), ("eof", "")]
    assert _Client.log == expected
    _Client.log = []
    assert baseline.check_host(target, host_keys, False) == 6
    assert _Client.log == [("exec", command) for command in baseline.COMMANDS]


def test_only_sshd_processes_are_the_labs() -> None:
    assert fleet.is_lab_sshd(os.getpid()) is False
    assert fleet.is_lab_sshd(2**22 + 1) is False  # above the kernel's pid limit: never a process


def test_the_python_runner_makes_the_six_commands_in_one_task() -> None:
    book = yaml.safe_load(fleet.maint_python_playbook())
    assert book["steps"] == [{"id": "six", "type": "python", "task": "maintfile.py:six"}]
    namespace: dict[str, object] = {}
    exec(compile(fleet.maintfile(), "maintfile.py", "exec"), namespace)
    calls: list[tuple[str, str]] = []

    class Connection:
        def run(self, command: str, hide: bool) -> None:
            calls.append(("run", command))

        def sudo(self, command: str, hide: bool) -> None:
            calls.append(("sudo", command))

    namespace["six"](Connection())  # type: ignore[operator]
    assert calls == [("run", command) for _, command, _ in fleet.bench_commands()]
    calls.clear()
    exec(compile(fleet.maintfile(become=True), "maintfile.py", "exec"), namespace)
    namespace["six"](Connection())  # type: ignore[operator]
    assert calls == [("sudo", command) for _, command, _ in fleet.bench_commands(become=True)]
