"""``maint inventory``: show an inventory the way maint (and Ansible) reads it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from maint.cli.completion import host_patterns
from maint.cli.options import inventory_option, remember_format
from maint.inventory import Host, Inventory, load_inventory, resolve_sources


def _load(inventories: Sequence[str]) -> Inventory:
    from maint import config

    return load_inventory(resolve_sources(inventories), config.load().inventory_timeout)


def _ansible_json(data: Any) -> str:
    """JSON laid out as ansible-inventory lays it out (its encoder writes non-ASCII text as is)."""
    return json.dumps(data, sort_keys=True, indent=4, ensure_ascii=False)


@click.group()
def inventory() -> None:
    """Show Ansible inventories as maint reads them (same output as ansible-inventory)."""


@inventory.command("list")
@inventory_option
@click.option("-l", "--limit", default=None, metavar="PATTERN", shell_complete=host_patterns,
              help="Only hosts matching this pattern.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    is_eager=True,
    callback=remember_format,
    help="json prints exactly what 'ansible-inventory --list' prints (an error: maint's error document).",
)
def list_hosts(inventory: tuple[str, ...], limit: str | None, output_format: str) -> None:
    """List the inventory's hosts: name, address:port and groups (or ansible-inventory --list JSON)."""
    loaded = _load(inventory)
    if output_format == "json":
        click.echo(_ansible_json(loaded.ansible_list(limit=limit)))
        return
    rows = [_row(host) for host in loaded.select("all", limit=limit)]
    widths = [max((len(row[column]) for row in rows), default=0) for column in range(2)]
    for name, address, groups in rows:
        click.echo(f"{name:<{widths[0]}}  {address:<{widths[1]}}  {groups}".rstrip())


def _row(host: Host) -> tuple[str, str, str]:
    address = f"[{host.address}]" if ":" in host.address else host.address
    return host.name, f"{address}:{host.port}", ",".join(host.groups) or "-"


@inventory.command("host")
@click.argument("name", shell_complete=host_patterns)
@inventory_option
def show_host(name: str, inventory: tuple[str, ...]) -> None:
    """Print a host's variables as JSON (what 'ansible-inventory --host NAME' prints)."""
    click.echo(_ansible_json(_load(inventory).host_vars(name)))


@inventory.command("graph")
@click.argument("pattern", default="all", shell_complete=host_patterns)
@inventory_option
def graph(pattern: str, inventory: tuple[str, ...]) -> None:
    """Print the group tree from GROUP down (what 'ansible-inventory --graph GROUP' prints)."""
    click.echo(_load(inventory).graph(pattern))
