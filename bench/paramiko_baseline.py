"""The floor for the fleet benchmark: a plain paramiko script, written the way people write one.

Per host, one ``paramiko.SSHClient`` (host keys from known_hosts, RejectPolicy, one key file, no agent, no
key discovery), the six commands one after another with ``exec_command`` (reading stdout and the exit
status), then close; 50 hosts at a time in a thread pool.

Targets come from a JSON file with ``user``, ``key_file``, ``known_hosts`` and ``hosts`` (a list of
``{"address", "port"}``; the lab's ``lab.json`` has exactly that shape), or from the command line::

    python bench/paramiko_baseline.py LAB_DIR/lab.json
    python bench/paramiko_baseline.py --user root --key K --known-hosts KH 127.0.0.2:23000 127.0.0.3:23000

Prints one line ``baseline: commands_ok=X hosts_ok=Y hosts=N nodelay=B sudo=B`` and exits 0 only if every
command on every host exited 0.

``--sudo-password-file FILE`` runs every command as root, the way a script that needs root is usually
written: each one as ``sudo -S -p '' sh -c 'COMMAND'``, the password (the file's first line) written to the
channel's stdin, so sudo authenticates once per command. ``test -d /etc`` is then ``test "$(id -u)" = 0``,
which fails unless the command did run as root::

    python bench/paramiko_baseline.py LAB_DIR/lab.json --sudo-password-file LAB_DIR/become-password

Two choices, both reported by the bench:

- ``--nodelay`` hands ``connect`` a socket with TCP_NODELAY set (``sock=``). Off by default, because a
  plain ``SSHClient.connect`` does not set it; without it each command round trip waits for a delayed
  ACK (about 40 ms on loopback).
- known_hosts is parsed once and each client is given its host's entries. ``--per-client-known-hosts``
  calls ``client.load_host_keys(path)`` in every client instead, as the shortest script would; paramiko
  then parses the whole file per connection, about 70 ms of CPU for a 1000-line file, which makes the
  script's cost grow with the square of the fleet and would no longer be a floor.
"""

from __future__ import annotations

import argparse
import json
import shlex
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMMANDS = ("df -P /", "uptime", "cat /proc/loadavg", "test -d /etc", "dpkg -l | wc -l", "uname -r")
# With sudo, ``test -d /etc`` gives way to a command that fails unless it runs as root.
ROOT_CHECK = 'test "$(id -u)" = 0'
THREADS = 50
TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    """Where and how to log in: one host of the fleet."""

    address: str
    port: int
    user: str
    key_file: str
    known_hosts: str

    @property
    def host_key_name(self) -> str:
        """The name known_hosts uses for this host (``[address]:port`` unless the port is 22)."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


def commands(become: bool) -> tuple[str, ...]:
    """The six commands; with ``become``, the root check instead of ``test -d /etc``."""
    if not become:
        return COMMANDS
    return tuple(ROOT_CHECK if command == "test -d /etc" else command for command in COMMANDS)


def sudo_command(command: str) -> str:
    """``command`` run as root by sudo, the password read on stdin (``-S``) without a prompt (``-p ''``)."""
    return f"sudo -S -p '' sh -c {shlex.quote(command)}"


def read_password(path: str) -> str:
    """The first line of the password file ``path``, without its line end."""
    lines = Path(path).read_text().splitlines()
    return lines[0] if lines else ""


def parse_endpoint(text: str) -> tuple[str, int]:
    """``ADDRESS:PORT`` (or ``ADDRESS``, port 22) as a tuple."""
    address, sep, port = text.rpartition(":")
    if not sep:
        return text, 22
    try:
        return address, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not ADDRESS:PORT: {text!r}") from None


def targets_from_json(data: dict[str, Any]) -> list[Target]:
    """The targets of a lab.json-shaped mapping (``user``, ``key_file``, ``known_hosts``, ``hosts``)."""
    return [
        Target(str(host["address"]), int(host["port"]), str(data["user"]), str(data["key_file"]),
               str(data["known_hosts"]))
        for host in data["hosts"]
    ]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(description="Run six read-only commands on every host with paramiko.")
    parser.add_argument("targets", nargs="+", metavar="LAB_JSON | ADDRESS:PORT")
    parser.add_argument("--user", help="login user (with ADDRESS:PORT targets)")
    parser.add_argument("--key", help="private key file (with ADDRESS:PORT targets)")
    parser.add_argument("--known-hosts", help="known_hosts file (with ADDRESS:PORT targets)")
    parser.add_argument("--threads", type=int, default=THREADS, help=f"hosts at once (default {THREADS})")
    parser.add_argument("--nodelay", action="store_true", help="connect over a socket with TCP_NODELAY set")
    parser.add_argument(
        "--per-client-known-hosts",
        action="store_true",
        help="every client parses the whole known_hosts file (load_host_keys) instead of sharing one parse",
    )
    parser.add_argument(
        "--sudo-password-file",
        metavar="FILE",
        help="run every command as root with sudo -S, writing this file's first line to its stdin",
    )
    return parser


def parse_targets(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Target]:
    """The targets named on the command line: one JSON file, or ADDRESS:PORT with --user/--key/--known-hosts."""
    if len(args.targets) == 1 and args.targets[0].endswith(".json"):
        return targets_from_json(json.loads(Path(args.targets[0]).read_text()))
    if not (args.user and args.key and args.known_hosts):
        parser.error("ADDRESS:PORT targets need --user, --key and --known-hosts")
    targets = []
    for text in args.targets:
        try:
            address, port = parse_endpoint(text)
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
        targets.append(Target(address, port, args.user, args.key, args.known_hosts))
    return targets


def check_host(target: Target, host_keys: Any, nodelay: bool, password: str | None = None) -> int:
    """Connect, run the six commands (as root through sudo with ``password``, if given), close; return how
    many commands exited 0."""
    import paramiko

    client = paramiko.SSHClient()
    if host_keys is None:
        client.load_host_keys(target.known_hosts)
    else:
        for key_type, key in (host_keys.lookup(target.host_key_name) or {}).items():
            client.get_host_keys().add(target.host_key_name, key_type, key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    sock = None
    if nodelay:
        sock = socket.create_connection((target.address, target.port), timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ok = 0
    try:
        client.connect(
            target.address,
            port=target.port,
            username=target.user,
            key_filename=target.key_file,
            look_for_keys=False,
            allow_agent=False,
            timeout=TIMEOUT,
            sock=sock,
        )
        for command in commands(password is not None):
            if password is None:
                _stdin, stdout, _stderr = client.exec_command(command, timeout=TIMEOUT)
            else:
                stdin, stdout, _stderr = client.exec_command(sudo_command(command), timeout=TIMEOUT)
                stdin.write(password + "\n")
                stdin.flush()
                stdin.channel.shutdown_write()
            stdout.read()
            if stdout.channel.recv_exit_status() == 0:
                ok += 1
    except Exception as error:
        print(f"baseline: {target.address}:{target.port}: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        client.close()
        if sock is not None:
            sock.close()
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the baseline; 0 if every command on every host exited 0, else 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    targets = parse_targets(args, parser)
    password = None
    if args.sudo_password_file is not None:
        try:
            password = read_password(args.sudo_password_file)
        except OSError as error:
            parser.error(f"cannot read the sudo password: {error}")
    import paramiko

    host_keys = None
    if not args.per_client_known_hosts:
        host_keys = paramiko.HostKeys()
        for path in sorted({target.known_hosts for target in targets}):
            host_keys.load(path)
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        counts = list(pool.map(lambda target: check_host(target, host_keys, args.nodelay, password), targets))
    commands_ok = sum(counts)
    hosts_ok = sum(1 for count in counts if count == len(COMMANDS))
    print(
        f"baseline: commands_ok={commands_ok} hosts_ok={hosts_ok} hosts={len(targets)} nodelay={args.nodelay} "
        f"sudo={password is not None}"
    )
    return 0 if hosts_ok == len(targets) else 1


if __name__ == "__main__":
    sys.exit(main())
