"""The lab fleet against real sshd processes: start, log in, break, fix, stop. No mocks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest
from json_documents import validate

from maint import lab as lab_library
from maint.errors import ExitCode, LabError
from maint.lab import Lab, LabPortInUse
from maint.testing import broken, free_port, running_lab, ssh_client

pytestmark = pytest.mark.lab

RunMaint = Callable[..., "subprocess.CompletedProcess[str]"]


def run_on(lab: Lab, host: str, command: str) -> str:
    """The stdout of ``command`` on ``host``, checking that it exits 0."""
    with ssh_client(lab, host) as client:
        _, stdout, stderr = client.exec_command(command)
        output = stdout.read().decode()
        assert stdout.channel.recv_exit_status() == 0, stderr.read().decode()
    return output


def answers(lab: Lab, host: str) -> bool:
    return run_on(lab, host, "echo ok") == "ok\n"


def test_up_writes_keys_known_hosts_and_inventory(lab: Lab) -> None:
    assert lab.directory.is_absolute()
    assert [host.name for host in lab.hosts] == [f"lab{index}" for index in range(1, 7)]
    assert [host.address for host in lab.hosts] == [f"127.0.0.{index}" for index in range(2, 8)]
    assert lab.key_file.stat().st_mode & 0o777 == 0o600
    assert lab.key_file.with_name("id_ed25519.pub").read_text().startswith("ssh-ed25519 ")
    known = lab.known_hosts.read_text().splitlines()
    assert [line.split()[0] for line in known] == [f"[{host.address}]:{lab.port}" for host in lab.hosts]
    assert all(line.split()[1] == "ssh-ed25519" for line in known)
    assert len({line.split()[2] for line in known}) == 6, "every host has its own host key"
    for host in lab.hosts:
        assert host.state_dir == lab.directory / "hosts" / host.name
        assert host.state_dir.is_dir()
    inventory = lab.inventory.read_text()
    # Fault modules add their own host variables after these (cert_path, av_scan_paths, ...).
    assert f"lab1 ansible_host=127.0.0.2 ansible_port={lab.port} maint_state_dir={lab.directory}/hosts/lab1 " in (
        inventory
    )
    assert f"ansible_ssh_private_key_file={lab.key_file}\n" in inventory
    state = json.loads((lab.directory / "lab.json").read_text())
    assert state["state"] == "up"
    # Other tests may have taken a host down and back up (a new pid): the state names live sshd processes.
    for entry in state["hosts"]:
        assert b"sshd" in Path(f"/proc/{entry['pid']}/cmdline").read_bytes(), entry


def test_inventory_groups_as_ansible_reads_them(lab: Lab) -> None:
    ansible_inventory = Path(sys.executable).parent / "ansible-inventory"
    if not ansible_inventory.exists():
        pytest.skip("ansible-core is not installed in this environment")
    listed = subprocess.run(
        [str(ansible_inventory), "-i", str(lab.inventory), "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(listed.stdout)
    assert data["lab"]["hosts"] == [f"lab{index}" for index in range(1, 7)]
    assert data["web"]["hosts"] == ["lab1", "lab2", "lab3"]
    assert data["db"]["hosts"] == ["lab4", "lab5", "lab6"]
    assert data["odd"]["hosts"] == ["lab1", "lab3", "lab5"]
    assert data["even"]["hosts"] == ["lab2", "lab4", "lab6"]
    assert data["canary"]["hosts"] == ["lab1"]
    lab2 = data["_meta"]["hostvars"]["lab2"]
    assert lab2["ansible_host"] == "127.0.0.3"
    assert lab2["ansible_port"] == lab.port
    assert lab2["ansible_user"] == lab.user
    assert lab2["maint_state_dir"] == str(lab.directory / "hosts" / "lab2")
    assert lab2["ansible_ssh_common_args"] == (f"-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes")


def test_every_host_logs_in_with_the_lab_key_and_known_hosts(lab: Lab) -> None:
    for host in lab.hosts:
        output = run_on(lab, host.name, 'echo ok; echo "$HOME"; echo "$MAINT_LAB_HOST"')
        assert output.splitlines() == ["ok", str(lab.directory / "home"), host.name]


def test_unknown_host_key_is_rejected(lab: Lab, tmp_path: Path) -> None:
    # The known_hosts check is real: a lab whose file lacks the host's key refuses to connect.
    other = tmp_path / "known_hosts"
    other.write_text("".join(line + "\n" for line in lab.known_hosts.read_text().splitlines()[1:]))
    client = paramiko.SSHClient()
    client.load_host_keys(str(other))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect("127.0.0.2", port=lab.port, username=lab.user, key_filename=str(lab.key_file), timeout=5)
    client.close()


def test_break_down_refuses_connections_on_that_host_only(lab: Lab) -> None:
    with broken(lab, "lab2", "down") as host:
        assert host.state == "down" and host.pid is None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.3", lab.port), timeout=2).close()
        assert answers(lab, "lab1") and answers(lab, "lab3")
        states = {item.name: item.state for item in lab_library.status(lab.directory)}
        assert states == {"lab1": "up", "lab2": "down", "lab3": "up", "lab4": "up", "lab5": "up", "lab6": "up"}
    assert answers(lab, "lab2")
    assert lab_library.load(lab.directory).host("lab2").faults == ()


def test_break_hang_times_out_the_banner_on_that_host_only(lab: Lab) -> None:
    with broken(lab, "lab3", "hang") as host:
        assert host.state == "hang"
        # The kernel still completes the TCP handshake into the frozen sshd's backlog...
        socket.create_connection(("127.0.0.4", lab.port), timeout=2).close()
        # ...but no SSH banner ever arrives.
        with pytest.raises(paramiko.SSHException, match="banner"), ssh_client(lab, "lab3", timeout=0.5):
            pass
        assert answers(lab, "lab2") and answers(lab, "lab4")
        assert lab_library.status(lab.directory)[2].state == "hang"
    assert answers(lab, "lab3")
    assert lab_library.status(lab.directory)[2].state == "up"


def test_break_and_fix_through_the_cli(lab: Lab, run_maint: RunMaint) -> None:
    broke = run_maint("lab", "break", "lab4", "down", "--dir", lab.directory)
    assert broke.returncode == 0, broke.stderr
    shown = run_maint("lab", "status", "--dir", lab.directory)
    assert any(line.split()[:4] == ["lab4", f"127.0.0.5:{lab.port}", "-", "down"] for line in shown.stdout.splitlines())
    fixed = run_maint("lab", "fix", "lab4", "--dir", lab.directory)
    assert fixed.returncode == 0, fixed.stderr
    assert "lab4 is up" in fixed.stdout
    assert answers(lab, "lab4")


def test_status_json(lab: Lab, run_maint: RunMaint) -> None:
    result = run_maint("lab", "status", "--dir", lab.directory, "--format", "json")
    assert result.returncode == 0, result.stderr
    hosts = json.loads(result.stdout)
    recorded = lab_library.load(lab.directory)
    assert [host["name"] for host in hosts] == [host.name for host in recorded.hosts]
    assert [host["pid"] for host in hosts] == [host.pid for host in recorded.hosts]
    assert {host["state"] for host in hosts} == {"up"}
    assert hosts[0]["endpoint"] == f"127.0.0.2:{lab.port}"
    assert hosts[0]["faults"] == []
    validate(hosts, "lab-status")


def test_sshd_that_vanishes_is_dead_and_fix_restarts_it(lab: Lab) -> None:
    pid = lab_library.load(lab.directory).host("lab5").pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert _wait_until(lambda: lab_library.status(lab.directory)[4].state == "dead")
    fixed = lab_library.fix_host(lab.directory, "lab5")
    assert fixed.state == "up" and fixed.pid != pid
    assert answers(lab, "lab5")


def test_unknown_host_or_fault_lists_the_valid_ones(lab: Lab, run_maint: RunMaint) -> None:
    with pytest.raises(LabError, match="lab1, lab2, lab3, lab4, lab5, lab6"):
        lab_library.break_host(lab.directory, "lab7", "down")
    with pytest.raises(LabError, match=r"known faults are .*\bdown, hang\b"):
        lab_library.break_host(lab.directory, "lab1", "meteor")
    result = run_maint("lab", "break", "lab1", "meteor", "--dir", lab.directory)
    assert result.returncode == ExitCode.BAD_INPUT
    assert "unknown fault 'meteor'" in result.stderr
    result = run_maint("lab", "fix", "web1", "--dir", lab.directory)
    assert result.returncode == ExitCode.BAD_INPUT
    assert "unknown lab host 'web1'" in result.stderr
    assert {host.state for host in lab_library.status(lab.directory)} == {"up"}


def test_port_in_use_is_refused_without_leaving_a_directory(lab: Lab, tmp_path: Path) -> None:
    with pytest.raises(LabPortInUse, match=rf"127\.0\.0\.2:{lab.port} \(and 1 more\) is already in use"):
        lab_library.up(tmp_path / "other", 2, port=lab.port)
    assert not (tmp_path / "other").exists()


def test_second_up_in_a_running_lab_directory_is_refused(lab: Lab) -> None:
    with pytest.raises(LabError, match="already running") as raised:
        lab_library.up(lab.directory, 2, port=free_port(2, "127.0.5.2"), first_address="127.0.5.2")
    assert raised.value.hint == f"maint lab down --dir {lab.directory}"


def test_down_stops_only_its_own_sshds_and_is_idempotent(lab: Lab, tmp_path: Path) -> None:
    with running_lab(tmp_path / "first", 2) as first, running_lab(tmp_path / "second", 2) as second:
        assert lab_library.down(first.directory) == 2
        assert not any(Path(f"/proc/{host.pid}").exists() for host in first.hosts)
        assert {host.state for host in lab_library.status(first.directory)} == {"down"}
        assert {host.state for host in lab_library.status(second.directory)} == {"up"}
        assert answers(second, "lab1")
        assert lab_library.down(first.directory) == 0
        assert lab_library.down(tmp_path / "never-started") == 0
    assert {host.state for host in lab_library.status(lab.directory)} == {"up"}


def test_down_wakes_a_frozen_host_to_stop_it(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab", 2) as fleet:
        lab_library.break_host(fleet.directory, "lab2", "hang")
        pids = [host.pid for host in fleet.hosts]
        assert lab_library.down(fleet.directory) == 2
        assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
        # A restart clears the process faults.
        assert lab_library.load(fleet.directory).host("lab2").faults == ()


def test_cli_up_status_down(run_maint: RunMaint, tmp_path: Path) -> None:
    port = free_port(3, "127.0.7.2")
    started = run_maint("lab", "up", "--hosts", "3", "--port", port, "--first-address", "127.0.7.2")
    for _ in range(10):
        if "already in use" not in started.stderr:
            break
        # Another test session took the port between free_port and sshd's bind: take the next one.
        port = free_port(3, "127.0.7.2", start=port + 1)
        started = run_maint("lab", "up", "--hosts", "3", "--port", port, "--first-address", "127.0.7.2")
    try:
        assert started.returncode == 0, started.stderr
        assert "3 hosts up" in started.stdout
        directory = tmp_path / ".maint" / "lab"
        assert f"inventory: {directory}/inventory.ini" in started.stdout
        assert (tmp_path / ".maint").stat().st_mode & 0o777 == 0o700  # made by maint: owner-only
        again = run_maint("lab", "up", "--hosts", "3", "--port", port, "--first-address", "127.0.7.2")
        assert again.returncode == ExitCode.BAD_INPUT
        assert "already running" in again.stderr
        shown = run_maint("lab", "status", "--format", "json")
        assert [host["endpoint"] for host in json.loads(shown.stdout)] == [
            f"127.0.7.{index}:{port}" for index in (2, 3, 4)
        ]
    finally:
        stopped = run_maint("lab", "down")
    assert stopped.stdout == "lab: stopped 3 sshd processes\n"
    assert run_maint("lab", "down").stdout == "lab: nothing was running\n"


def test_addresses_skip_zero_and_broadcast_looking_ones() -> None:
    addresses = lab_library.lab_addresses("127.0.0.250", 8)
    assert addresses == [
        "127.0.0.250",
        "127.0.0.251",
        "127.0.0.252",
        "127.0.0.253",
        "127.0.0.254",
        "127.0.1.1",
        "127.0.1.2",
        "127.0.1.3",
    ]
    assert lab_library.lab_addresses("127.0.0.2", 1000)[-1] == "127.0.3.239"
    with pytest.raises(LabError, match="not a loopback address"):
        lab_library.lab_addresses("10.0.0.2", 1)
    with pytest.raises(LabError, match="do not fit"):
        lab_library.lab_addresses("127.255.255.250", 10)


def test_inventory_works_with_ansible(lab: Lab) -> None:
    ansible = shutil.which("ansible", path=str(Path(sys.executable).parent))
    if ansible is None:
        pytest.skip("ansible-core is not installed in this environment")
    result = subprocess.run(
        [ansible, "canary", "-i", str(lab.inventory), "-m", "raw", "-a", "echo $MAINT_LAB_HOST"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ANSIBLE_HOME": str(lab.directory / "ansible")},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lab1 | CHANGED | rc=0" in result.stdout
    assert "\nlab1\n" in result.stdout


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
