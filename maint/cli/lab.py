"""``maint lab``: the local demo fleet of real sshd hosts on loopback (a thin layer over maint.lab)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from maint import lab as lab_library
from maint.cli.options import echo_json, format_option

directory_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=lab_library.DEFAULT_DIRECTORY,
    show_default=True,
    help="Directory of the lab: keys, inventory, sshd config, logs and state.",
)


@click.group()
def lab() -> None:
    """A local fleet of real OpenSSH hosts on loopback, for demos, tests and benchmarks.

    Each host lab1..labN is its own sshd on consecutive loopback addresses from 127.0.0.2, all on one
    port; `lab up` writes an Ansible inventory (DIR/inventory.ini) that maint and ansible-playbook can
    use as they are.
    """


@lab.command()
@click.option(
    "--hosts",
    "count",
    type=click.IntRange(1, lab_library.MAX_HOSTS),
    required=True,
    help="Number of hosts (lab1..labN).",
)
@directory_option
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=lab_library.DEFAULT_PORT,
    show_default=True,
    help="TCP port of every host.",
)
@click.option(
    "--first-address",
    default=lab_library.DEFAULT_FIRST_ADDRESS,
    show_default=True,
    help="Loopback address of lab1; the next hosts follow, skipping addresses ending in .0 or .255.",
)
@click.option(
    "--user",
    metavar="NAME",
    help="Create the Unix account NAME (root only) and log in to every host as NAME; `lab down` removes it.",
)
@click.option(
    "--sudo",
    type=click.Choice(lab_library.SUDO_MODES),
    help="With --user: a sudoers drop-in letting NAME run anything with a password (LAB/become-password), "
    "without one (nopasswd), or none.  [default: none]",
)
@click.option("--requiretty", is_flag=True, help="With --sudo password or nopasswd: sudo asks NAME for a tty.")
def up(
    count: int, directory: Path, port: int, first_address: str, user: str | None, sudo: str | None, requiretty: bool
) -> None:
    """Start the lab: one sshd per host, on loopback addresses."""
    if user is None and (sudo is not None or requiretty):
        raise click.UsageError("--sudo and --requiretty go with --user")
    started = time.monotonic()
    result = lab_library.up(
        directory, count, port=port, first_address=first_address, user=user, sudo=sudo or "none", requiretty=requiretty
    )
    elapsed = time.monotonic() - started
    first, last = result.hosts[0], result.hosts[-1]
    names = first.name if first is last else f"{first.name}..{last.name}"
    addresses = first.address if first is last else f"{first.address}..{last.address}"
    click.echo(f"lab: {len(result.hosts)} hosts up in {elapsed:.1f} s: {names} on {addresses} port {result.port}")
    click.echo(f"inventory: {result.inventory}")
    if result.account is not None:
        account = result.account
        made = [f"user {account.name} (uid {account.uid}, home {account.home})"]
        if account.sudoers_file is not None:
            made.append(f"sudoers {account.sudoers_file}")
        if account.password_file is not None:
            made.append(f"sudo password in {account.password_file}")
        click.echo(f"made: {', '.join(made)}")
    click.echo(
        f"try: ssh -i {result.key_file} -o UserKnownHostsFile={result.known_hosts} "
        f"-p {result.port} {result.user}@{first.address} uptime"
    )


@lab.command()
@directory_option
def down(directory: Path) -> None:
    """Stop every sshd of the lab (only the processes the lab started); remove the account of `up --user`."""
    account = lab_library.recorded_account(directory)
    stopped = lab_library.down(directory)
    if stopped:
        click.echo(f"lab: stopped {stopped} sshd process{'es' if stopped != 1 else ''}")
    else:
        click.echo("lab: nothing was running")
    if account is not None:
        click.echo(f"lab: removed user {account.name} and what the lab made for it")


@lab.command()
@directory_option
@format_option
def status(directory: Path, output_format: str) -> None:
    """Show each host: address, sshd pid and state (up, down, hang, or dead if its sshd vanished)."""
    hosts = lab_library.status(directory)
    if output_format == "json":
        echo_json([dict(host.to_json(), endpoint=host.endpoint) for host in hosts])
        return
    name_width = max(4, *(len(host.name) for host in hosts))
    endpoint_width = max(7, *(len(host.endpoint) for host in hosts))
    click.echo(f"{'HOST':<{name_width}}  {'ADDRESS':<{endpoint_width}}  {'PID':>7}  {'STATE':<5}  FAULTS")
    for host in hosts:
        pid = str(host.pid) if host.pid is not None else "-"
        faults = ",".join(host.faults) or "-"
        click.echo(f"{host.name:<{name_width}}  {host.endpoint:<{endpoint_width}}  {pid:>7}  {host.state:<5}  {faults}")
    counts: dict[str, int] = {}
    for host in hosts:
        counts[host.state] = counts.get(host.state, 0) + 1
    summary = ", ".join(f"{number} {state}" for state, number in sorted(counts.items()))
    click.echo(f"{len(hosts)} hosts: {summary}")


def _faults_help() -> str:
    lines = ["\b", "Faults:"]
    lines += [f"  {name:<8} {fault.description}" for name, fault in sorted(lab_library.faults().items())]
    return "\n".join(lines)


@lab.command(name="break", epilog=_faults_help())
@click.argument("host")
@click.argument("fault")
@directory_option
def break_command(host: str, fault: str, directory: Path) -> None:
    """Break HOST with FAULT; `maint lab fix HOST` undoes it."""
    result = lab_library.break_host(directory, host, fault)
    description = lab_library.faults()[fault].description
    click.echo(f"lab: {result.name} has fault {fault} ({description}); state {result.state}")


@lab.command()
@click.argument("host")
@directory_option
def fix(host: str, directory: Path) -> None:
    """Undo every fault of HOST and make sure its sshd runs."""
    result = lab_library.fix_host(directory, host)
    click.echo(f"lab: {result.name} is {result.state} (pid {result.pid})")
