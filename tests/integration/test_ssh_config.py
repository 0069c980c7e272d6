"""The native SSH executor with OpenSSH client configuration, against real sshd: ssh_config aliases, jump hosts,
ProxyCommand, password logins and user certificates. No mocks.

The jump host tests prove that the target is reached through the jump hosts only: an iptables rule on lo
rejects TCP to the target from every process but those of the jump host's login user (its sshd forwards as
that user), and the test first shows a direct connection refused. Two labs with an account each give two
users, so that a two-hop chain can be proved hop by hop.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
from lab_accounts import user_lab

from maint.executors import Unreachable
from maint.executors.ssh import SSHConnection, SSHExecutor
from maint.inventory import Host
from maint.lab import Lab
from maint.testing import broken, free_port, wait_until

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab's accounts and the iptables rules need root"),
]

IPTABLES = shutil.which("iptables", path="/usr/sbin:/sbin:/usr/bin:/bin")
needs_iptables = pytest.mark.skipif(IPTABLES is None, reason="iptables is not installed (scripts/setup --lab does)")
# The module's labs are made once per test worker: each gets accounts of its own.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
JUMP_USER, FIRST_HOP_USER = f"maintjumpa{_WORKER}", f"maintjumpb{_WORKER}"
TARGET_ADDRESS = "127.0.30.9"
PASSWORD = "correct horse battery 9"


def host(alias: str, config: Path, *extra_args: str, port: int | None = None, **variables: Any) -> Host:
    """A host the way the inventory makes one for ``ansible_host=ALIAS ansible_ssh_common_args='-F CONFIG ...'``."""
    return Host(
        name="web1", address=alias, port=port or 22, user=None, key_file=None, known_hosts=None,
        strict_host_key_checking=True, vars=variables, port_set=port is not None,
        ssh_args=(" ".join([f"-F {config}", *extra_args]),),
    )  # fmt: skip


def run(connection: SSHConnection, command: str) -> str:
    result = connection.run(command, timeout=10)
    assert result.exit_code == 0, result
    return result.stdout.strip()


@contextlib.contextmanager
def connected(alias: str, config: Path, *extra_args: str, **variables: Any) -> Iterator[SSHConnection]:
    connection = SSHExecutor(connect_timeout=5).connect(host(alias, config, *extra_args, **variables))
    try:
        yield connection
    finally:
        connection.close()


# --- an alias in an ssh_config file, on the session's lab -------------------------------------------------


@pytest.fixture
def lab_config(lab: Lab, tmp_path: Path) -> Path:
    first = lab.hosts[0]
    path = tmp_path / "ssh_config"
    path.write_text(
        f"""\
Host web-alias
    HostName {first.address}
    Port {first.port}
    User {lab.user}
    IdentityFile {lab.key_file}

Host wrong-port
    HostName {first.address}
    Port 1
    User {lab.user}
    IdentityFile {lab.key_file}

Host agent-only
    HostName {first.address}
    Port {first.port}
    User {lab.user}
    IdentityFile {tmp_path / "wrong_key"}

Host *
    UserKnownHostsFile {lab.known_hosts}
    StrictHostKeyChecking yes
"""
    )
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "wrong_key")], check=True)
    return path


def test_an_alias_with_hostname_port_user_and_identity_file_reaches_the_lab_host(lab: Lab, lab_config: Path) -> None:
    with connected("web-alias", lab_config) as connection:
        assert run(connection, "echo $MAINT_LAB_HOST; id -un") == f"lab1\n{lab.user}"


def test_the_inventorys_port_comes_before_the_configs(lab: Lab, lab_config: Path) -> None:
    with pytest.raises(Unreachable, match=r"^connection to 127\.0\.0\.2:1 refused$"):
        SSHExecutor(connect_timeout=5).connect(host("wrong-port", lab_config))
    connection = SSHExecutor(connect_timeout=5).connect(host("wrong-port", lab_config, port=lab.port))
    try:
        assert run(connection, "echo $MAINT_LAB_HOST") == "lab1"
    finally:
        connection.close()


@pytest.fixture
def agent(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real ssh-agent holding the lab's key, as $SSH_AUTH_SOCK."""
    socket_path = tmp_path / "agent.sock"
    process = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        wait_until(socket_path.exists, 10, "ssh-agent's socket")
        environment = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(["ssh-add", "-q", str(lab.key_file)], env=environment, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        yield
    finally:
        process.terminate()
        process.wait(5)


@pytest.mark.usefixtures("agent")
def test_identities_only_leaves_the_agent_out(lab_config: Path, tmp_path: Path) -> None:
    # The configured key is not authorised; the agent's key is.
    with connected("agent-only", lab_config) as connection:
        assert run(connection, "echo $MAINT_LAB_HOST") == "lab1"
    with pytest.raises(Unreachable, match=rf"authentication as \w+ failed \(tried {tmp_path}/wrong_key; "):
        SSHExecutor(connect_timeout=5).connect(host("agent-only", lab_config, "-o IdentitiesOnly=yes"))


def test_an_unknown_alias_names_the_config_and_the_fix(lab_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[str] = []

    def no_such_name(name: str, *args: Any, **kwargs: Any) -> Any:
        # Stands in for the resolver, so that the test sends no DNS query off this machine.
        looked_up.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    with pytest.raises(Unreachable) as caught:
        SSHExecutor(connect_timeout=5).connect(host("no-such-alias", lab_config))
    assert str(caught.value) == (
        f"cannot resolve no-such-alias: Name or service not known (not a Host of {lab_config}; "
        "check ansible_host or add a Host entry)"
    )
    assert looked_up == ["no-such-alias"]


# --- jump hosts, ProxyCommand, passwords and certificates: two labs of their own ----------------------------


@dataclass(frozen=True)
class Jumps:
    """Lab A (login JUMP_USER): bastion and hop2; lab B (login FIRST_HOP_USER): first; the target, an extra
    sshd with lab A's configuration that also takes passwords and certificates of ``ca``."""

    a: Lab
    b: Lab
    config: Path
    target_port: int
    directory: Path

    @property
    def target(self) -> tuple[str, int]:
        return TARGET_ADDRESS, self.target_port


@contextlib.contextmanager
def extra_sshd(lab: Lab, address: str, port: int, *options: str) -> Iterator[None]:
    """One more sshd with the lab's sshd_config and lab1's host key, on ``address:port``, with ``options``."""
    pid_file = lab.directory / "sshd" / f"extra-{port}.pid"
    log = lab.directory / "sshd" / f"extra-{port}.log"
    command = [lab.sshd, "-f", str(lab.config_file), "-D", "-h", str(lab.host_key("lab1")), "-E", str(log),
               "-o", f"ListenAddress={address}:{port}", "-o", f"PidFile={pid_file}"]  # fmt: skip
    for option in options:
        command += ["-o", option]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        # sshd writes its pid file once it listens.
        wait_until(lambda: pid_file.exists() or process.poll() is not None, 10, "the extra sshd to listen")
        assert process.poll() is None, log.read_text()
        yield
    finally:
        process.terminate()
        process.wait(5)


@contextlib.contextmanager
def only_reachable_by(address: str, port: int, user: str) -> Iterator[None]:
    """TCP to ``address:port`` is rejected for every process not running as ``user`` while this lasts."""
    assert IPTABLES is not None
    uid = str(pwd.getpwnam(user).pw_uid)
    rule = ["OUTPUT", "-o", "lo", "-p", "tcp", "-d", address, "--dport", str(port), "-m", "owner", "!",
            "--uid-owner", uid, "-m", "comment", "--comment", "maint-test-ssh-config", "-j", "REJECT",
            "--reject-with", "tcp-reset"]  # fmt: skip
    subprocess.run([IPTABLES, "-I", *rule], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run([IPTABLES, "-D", *rule], check=False, capture_output=True)


@pytest.fixture(scope="module")
def jumps() -> Iterator[Jumps]:
    base = Path(tempfile.mkdtemp(prefix="maint-ssh-config-"))
    base.chmod(0o711)  # the labs' accounts reach their homes below it
    try:
        with (
            user_lab(JUMP_USER, "127.0.30.2", hosts=2, base=base) as a,
            user_lab(FIRST_HOP_USER, "127.0.31.2", base=base) as b,
        ):
            subprocess.run(["chpasswd"], input=f"{JUMP_USER}:{PASSWORD}\n", text=True, check=True)
            ca = base / "ca"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ca)], check=True)
            target_port = free_port(1, TARGET_ADDRESS)
            known = base / "known_hosts"
            target_key = " ".join(Path(f"{a.host_key('lab1')}.pub").read_text().split()[:2])
            known.write_text(a.known_hosts.read_text() + b.known_hosts.read_text()
                             + f"[{TARGET_ADDRESS}]:{target_port} {target_key}\n")  # fmt: skip
            bastion, hop2 = a.hosts
            (first,) = b.hosts
            config = base / "ssh_config"
            config.write_text(
                f"""\
Host bastion
    HostName {bastion.address}
    Port {bastion.port}
    User {JUMP_USER}
    IdentityFile {a.key_file}

Host hop2
    HostName {hop2.address}
    Port {hop2.port}
    User {JUMP_USER}
    IdentityFile {a.key_file}

Host first
    HostName {first.address}
    Port {first.port}
    User {FIRST_HOP_USER}
    IdentityFile {b.key_file}

Host dead-hop
    HostName 127.0.30.20
    Port {free_port(1, "127.0.30.20")}

Host target target-*
    HostName {TARGET_ADDRESS}
    Port {target_port}
    User {JUMP_USER}

Host target
    IdentityFile {a.key_file}
    ProxyJump bastion

Host target-two-hops
    IdentityFile {a.key_file}
    ProxyJump first,hop2

Host target-proxycommand
    IdentityFile {a.key_file}
    ProxyCommand ssh -F {config} -W %h:%p bastion

Host target-broken-proxy
    ProxyCommand sh -c 'echo "bastion says no" >&2; exit 7'

Host target-dead-hop
    ProxyJump dead-hop

Host target-hung-bastion
    IdentityFile {a.key_file}
    ProxyJump bastion

Host *
    UserKnownHostsFile {known}
    StrictHostKeyChecking yes
    BatchMode yes
"""
            )
            options = ("PasswordAuthentication=yes", f"TrustedUserCAKeys={ca}.pub", "SetEnv=MAINT_LAB_HOST=target")
            with extra_sshd(a, TARGET_ADDRESS, target_port, *options):
                yield Jumps(a, b, config, target_port, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def tunnel_transports(connection: SSHConnection) -> list[paramiko.Transport]:
    return [carrier for carrier in connection.tunnel if isinstance(carrier, paramiko.Transport)]


@needs_iptables
def test_proxyjump_through_a_bastion_to_a_host_that_takes_no_direct_connection(jumps: Jumps) -> None:
    with only_reachable_by(*jumps.target, JUMP_USER):
        with pytest.raises(Unreachable, match=rf"^connection to {TARGET_ADDRESS}:{jumps.target_port} refused$"):
            SSHExecutor(connect_timeout=5).connect(host("target", jumps.config, "-o ProxyJump=none"))
        with connected("target", jumps.config) as connection:
            assert run(connection, "id -un; echo $MAINT_LAB_HOST") == f"{JUMP_USER}\ntarget"
            (bastion,) = tunnel_transports(connection)
            assert bastion.is_active()
        # Closing the connection closes the jump host's transport with it.
        assert not bastion.is_active()


@needs_iptables
def test_proxyjump_through_two_hops_each_reachable_only_through_the_one_before(jumps: Jumps) -> None:
    hop2 = jumps.a.hosts[1]
    with only_reachable_by(*jumps.target, JUMP_USER), only_reachable_by(hop2.address, hop2.port, FIRST_HOP_USER):
        for alias in ("hop2", "target"):  # neither hop2 nor the target takes maint's direct connection
            with pytest.raises(Unreachable, match="refused"):
                SSHExecutor(connect_timeout=5).connect(host(alias, jumps.config, "-o ProxyJump=none"))
        # first (lab B's user) reaches hop2 but not the target: the chain must go first -> hop2 -> target.
        with pytest.raises(Unreachable, match=r"jump host first .* could not connect to 127\.0\.30\.9"):
            SSHExecutor(connect_timeout=5).connect(host("target", jumps.config, "-J first"))
        with connected("target-two-hops", jumps.config) as connection:
            assert run(connection, "echo $MAINT_LAB_HOST") == "target"
            hops = tunnel_transports(connection)
            assert [transport.getpeername()[0] for transport in hops[:1]] == ["127.0.31.2"]
            assert len(hops) == 2 and all(transport.is_active() for transport in hops)
        assert not any(transport.is_active() for transport in hops)


@needs_iptables
def test_proxycommand_ssh_w_through_the_bastion(jumps: Jumps) -> None:
    with only_reachable_by(*jumps.target, JUMP_USER), connected("target-proxycommand", jumps.config) as connection:
        assert run(connection, "echo $MAINT_LAB_HOST") == "target"
        (proxy,) = connection.tunnel
        process = proxy.process  # type: ignore[attr-defined]
    # The ProxyCommand (a real ssh -W) ends with the connection.
    assert process.poll() is not None


def test_a_proxycommand_that_fails_gives_its_status_and_first_stderr_line(jumps: Jumps) -> None:
    with pytest.raises(Unreachable) as caught:
        SSHExecutor(connect_timeout=5).connect(host("target-broken-proxy", jumps.config))
    assert str(caught.value) == (
        "ProxyCommand of target-broken-proxy (sh -c 'echo \"bastion says no\" >&2; exit 7') "
        "exited with status 7: bastion says no"
    )


def test_a_jump_host_that_refuses_is_named(jumps: Jumps) -> None:
    refused = r"^cannot reach jump host dead-hop \(127\.0\.30\.20:\d+\): connection refused$"
    with pytest.raises(Unreachable, match=refused):
        SSHExecutor(connect_timeout=5).connect(host("target-dead-hop", jumps.config))


def test_a_hung_jump_host_costs_the_connect_timeout_not_more(jumps: Jumps) -> None:
    with broken(jumps.a, "lab1", "hang"):
        started = time.monotonic()
        with pytest.raises(Unreachable, match=r"^cannot reach jump host bastion \(127\.0\.30\.2:\d+\): no SSH banner"):
            SSHExecutor(connect_timeout=1).connect(host("target-hung-bastion", jumps.config))
        assert time.monotonic() - started < 3


def test_password_login_and_the_password_is_never_shown(jumps: Jumps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAINT_TEST_SSH_PASSWORD", PASSWORD)
    # No key configured: the password alone.
    with connected("target-password", jumps.config, ansible_password="env:MAINT_TEST_SSH_PASSWORD") as connection:
        assert run(connection, "id -un") == JUMP_USER
    # A key the host does not take first, then the password.
    wrong_key = jumps.b.key_file
    with connected("target-password", jumps.config, f"-i {wrong_key}", ansible_ssh_pass=PASSWORD) as connection:
        assert run(connection, "id -un") == JUMP_USER
    with pytest.raises(Unreachable) as caught:
        SSHExecutor(connect_timeout=5).connect(host("target-password", jumps.config, ansible_password="not it"))
    assert str(caught.value) == (
        f"authentication as {JUMP_USER} failed (tried password; check ansible_password, or set "
        "ansible_ssh_private_key_file)"
    )


def test_a_user_certificate_logs_in_where_the_plain_key_does_not(jumps: Jumps) -> None:
    key = jumps.directory / "certified"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with pytest.raises(Unreachable, match=rf"tried {key};"):
        SSHExecutor(connect_timeout=5).connect(host("target-password", jumps.config, f"-i {key}"))
    subprocess.run(["ssh-keygen", "-q", "-s", str(jumps.directory / "ca"), "-I", "maint-test", "-n", JUMP_USER,
                    f"{key}.pub"], check=True, capture_output=True)  # fmt: skip
    with connected("target-password", jumps.config, f"-i {key}") as connection:
        assert run(connection, "id -un") == JUMP_USER
    # A CertificateFile elsewhere is paired with the key it certifies.
    elsewhere = jumps.directory / "elsewhere-cert.pub"
    os.replace(f"{key}-cert.pub", elsewhere)
    with connected("target-password", jumps.config, f"-i {key}", f"-o CertificateFile={elsewhere}") as connection:
        assert run(connection, "id -un") == JUMP_USER


# --- maint run, end to end ----------------------------------------------------------------------------------


def test_maint_run_reaches_a_host_through_its_ssh_config_alias(
    lab: Lab, lab_config: Path, run_maint: Any, tmp_path: Path
) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"web ansible_host=web-alias ansible_ssh_common_args='-F {lab_config}'\n")
    book = tmp_path / "book.yml"
    book.write_text('steps:\n  - id: where\n    type: command\n    command: echo "on $MAINT_LAB_HOST"\n')
    done = run_maint("run", book, "-i", inventory, "--format", "json",
                     env={"MAINT_DB": f"sqlite:///{tmp_path / 'maint.db'}"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert (result["host"], result["status"]) == ("web", "ok")


def test_keyboard_interactive_answers_the_password_prompt_only(jumps: Jumps) -> None:
    # An sshd that takes passwords through PAM's prompts only (keyboard-interactive), as many fleets are set up.
    port = free_port(1, TARGET_ADDRESS, start=jumps.target_port + 1)
    options = ("UsePAM=yes", "PasswordAuthentication=no", "KbdInteractiveAuthentication=yes",
               "AuthenticationMethods=keyboard-interactive")  # fmt: skip
    args = (f"-p {port}", "-o StrictHostKeyChecking=no")  # another port: not in known_hosts
    with extra_sshd(jumps.a, TARGET_ADDRESS, port, *options):
        with connected("target-password", jumps.config, *args, ansible_password=PASSWORD) as connection:
            assert run(connection, "id -un") == JUMP_USER
        wrong = "wrong-Secret-9"
        with pytest.raises(Unreachable) as caught:
            SSHExecutor(connect_timeout=10).connect(
                host("target-password", jumps.config, *args, ansible_password=wrong)
            )
        assert "tried keyboard-interactive" in str(caught.value) and wrong not in str(caught.value)
