"""The native SSH executor against real sshd: the shell session protocol and its edge cases.

Each test runs commands through one connection, as the engine does, in both modes: the default
shell session (all commands through one /bin/sh) and one channel per command.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from maint.executors import HostHung, Unreachable
from maint.executors import session as session_module
from maint.executors.ssh import SSHConnection, SSHExecutor
from maint.inventory import Host, load_inventory
from maint.lab import Lab
from maint.testing import broken

pytestmark = pytest.mark.lab


def lab_host(lab: Lab, name: str, **extra_vars: object) -> Host:
    host = load_inventory([str(lab.inventory)]).select(name)[0]
    if not extra_vars:
        return host
    return Host(
        name=host.name, address=host.address, port=host.port, user=host.user, key_file=host.key_file,
        known_hosts=host.known_hosts, strict_host_key_checking=host.strict_host_key_checking,
        vars={**host.vars, **extra_vars}, groups=host.groups,
    )  # fmt: skip


@pytest.fixture(params=["shell-session", "channel-per-command"])
def connection(request: pytest.FixtureRequest, lab: Lab) -> Iterator[SSHConnection]:
    session = request.param == "shell-session"
    host = lab_host(lab, "lab1", maint_shell_session=session)
    opened = SSHExecutor(connect_timeout=5).connect(host)
    assert opened._shell_session is session
    yield opened
    opened.close()


def test_exit_codes_and_streams(connection: SSHConnection) -> None:
    result = connection.run("echo out; echo err >&2; exit 3", timeout=10)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.timed_out


def test_state_does_not_leak_between_commands(connection: SSHConnection) -> None:
    assert connection.run("cd /tmp && X=1 && pwd", timeout=10).stdout == "/tmp\n"
    second = connection.run('pwd; echo "x=${X:-unset}"', timeout=10)
    assert second.stdout.splitlines()[1] == "x=unset"
    assert second.stdout.splitlines()[0] != "/tmp"


def test_syntax_error_is_that_commands_failure_only(connection: SSHConnection) -> None:
    broken_command = connection.run('echo "unterminated', timeout=10)
    assert broken_command.exit_code == 2
    assert broken_command.stderr
    assert connection.run("echo next", timeout=10).stdout == "next\n"


def test_stdin_is_empty_and_output_without_newline(connection: SSHConnection) -> None:
    result = connection.run("cat; printf 'no newline'", timeout=10)
    assert result.exit_code == 0
    assert result.stdout == "no newline"


def test_heredoc_quotes_and_forged_markers(connection: SSHConnection) -> None:
    command = "cat <<'EOF'\nit's \"quoted\" $HOME\n__maint_end_0000_rc=0\nEOF"
    result = connection.run(command, timeout=10)
    assert result.exit_code == 0
    assert result.stdout == "it's \"quoted\" $HOME\n__maint_end_0000_rc=0\n"


def test_large_output_on_both_streams(connection: SSHConnection) -> None:
    result = connection.run("head -c 3000000 /dev/zero | tr '\\0' a; head -c 3000000 /dev/zero | tr '\\0' b >&2",
                            timeout=30)
    assert result.exit_code == 0
    # Output beyond the capture limit is dropped from the head; the end is kept.
    assert 1_000_000 <= len(result.stdout) <= 1_100_000
    assert set(result.stdout) == {"a"}
    assert set(result.stderr) == {"b"}


def test_timeout_then_the_connection_goes_on(connection: SSHConnection) -> None:
    started = time.monotonic()
    result = connection.run("sleep 10", timeout=1)
    assert result.timed_out
    assert result.exit_code is None
    assert time.monotonic() - started < 5
    assert connection.run("echo again", timeout=10).stdout == "again\n"


def test_killed_shell_is_replaced(connection: SSHConnection) -> None:
    # $$ is the shell running the commands (the session's /bin/sh, or the channel's login shell).
    result = connection.run("kill -9 $$; sleep 1", timeout=10)
    assert result.exit_code is None or result.exit_code != 0
    assert connection.run("echo fresh", timeout=10).stdout == "fresh\n"


def test_down_host_is_unreachable(lab: Lab) -> None:
    with broken(lab, "lab4", "down"), pytest.raises(Unreachable, match="refused"):
        SSHExecutor(connect_timeout=2).connect(lab_host(lab, "lab4"))


def test_frozen_host_mid_run_raises_host_hung(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    # A frozen host answers neither the signals' graces nor the probe: shorter waits reach the same verdict
    # (the defaults would add 9 s).
    monkeypatch.setattr(session_module, "TERM_GRACE", 0.5)
    monkeypatch.setattr(session_module, "KILL_GRACE", 0.5)
    monkeypatch.setattr(session_module, "PROBE_TIMEOUT", 1.0)
    connection = SSHExecutor(connect_timeout=2).connect(lab_host(lab, "lab5"))
    try:
        assert connection.run("echo up", timeout=5).exit_code == 0
        # Freeze every sshd process of the host, the session's too: the host stops answering.
        with broken(lab, "lab5", "hang"), pytest.raises(HostHung, match="stopped responding"):
            connection.run("echo never", timeout=1)
    finally:
        connection.close()


def test_stdin_reaches_the_command_and_no_command_line(connection: SSHConnection) -> None:
    # "[h]unter2-xyz" does not match itself: grep's own command line never counts, whenever it starts.
    command = 'read -r token; echo "got $token"; ps -eo args | grep -c "[h]unter2-xyz" || true'
    result = connection.run(command, timeout=10, stdin="hunter2-xyz\n")
    lines = result.stdout.splitlines()
    assert lines[0] == "got hunter2-xyz"
    # The secret, sent on stdin, is on no process's command line.
    assert lines[1] == "0"
