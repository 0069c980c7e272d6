"""``maint config``: show and validate maint.yml, and say which files and settings are in use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from maint.cli.options import echo_json, format_option
from maint.terminal import styled


@click.group()
def config() -> None:
    """Show and validate maint.yml (the one --config, $MAINT_CONFIG or discovery finds; see 'config show')."""


@config.command("validate")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def validate(path: Path | None) -> int:
    """Check maint.yml and print every problem with its line (exit 3 when there is one), a ticket backend whose
    client library is not installed included."""
    from maint import config as config_module
    from maint.config.tickets import missing_libraries
    from maint.errors import ExitCode

    try:
        loaded = config_module.load(path=path)
    except config_module.ConfigError as error:
        for problem in error.errors:
            styled(f"maint: error: {problem}", fg="red")
        return int(ExitCode.BAD_INPUT)
    missing = missing_libraries(loaded.backends)
    for problem in missing:
        styled(f"maint: error: {loaded.path}: {problem}", fg="red")
    if missing:
        return int(ExitCode.BAD_INPUT)
    where = loaded.path or "no maint.yml (defaults)"
    notifiers = len(loaded.data.get("notify") or [])
    click.echo(f"{where}: valid ({len(loaded.backends)} ticket backends, {notifiers} notifiers)")
    return 0


@config.command("show")
@format_option
def show(output_format: str) -> None:
    """The effective configuration: which maint.yml is used and why, the project directory, the store and where
    its URL comes from, the settings of Ansible's configuration maint honours, then every option of maint.yml
    with its value and what it means."""
    from maint import ansible_config
    from maint import config as config_module
    from maint.config.discovery import describe_source
    from maint.notify.notifications import masked, masked_url
    from maint.secrets import mask_url_credentials
    from maint.store import locate

    found = config_module.discover()
    loaded = config_module.load(path=found.path)
    store = locate(None, loaded)
    ansible = ansible_config.read()
    in_use: dict[str, Any] = {
        "config": str(found.path) if found.path else None,
        "source": found.source,
        "project_dir": str(found.project_dir),
        "state_dir": str(found.state_dir),
        "store": {"url": mask_url_credentials(store.url), "origin": store.origin},
        "ansible": {"file": ansible.file, "settings": {
            name: {"value": setting.value, "origin": setting.origin} for name, setting in ansible.settings.items()
        }},
    }  # fmt: skip
    data = dict(loaded.data)
    data["notify"] = masked(data.get("notify"))
    data["pings"] = {event: masked_url(url) if url else url for event, url in (data.get("pings") or {}).items()}
    if output_format == "json":
        echo_json({"path": str(loaded.path) if loaded.path else None, "in_use": in_use, **data})
        return
    click.echo(f"# maint.yml: {found.path or 'none'} ({found.source}: {describe_source(found)})")
    click.echo(f"# project directory: {found.project_dir}")
    click.echo(f"# state directory: {found.state_dir}")
    click.echo(f"# store: {in_use['store']['url']} ({store.origin})")
    click.echo(f"# ansible.cfg: {ansible.file or 'none'}")
    for name, setting in ansible.settings.items():
        click.echo(f"#   {name} = {json.dumps(setting.value)} (from {setting.origin}): {ansible_config.MEANING[name]}")
    for path, help_text, _default in config_module.describe():
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        click.echo(f"{path} = {json.dumps(value, default=str)}")
        click.echo(f"    {help_text}")
